"""The Secret half of ``KubeClusterGateway``: read one Secret by name, for the Kafka client's
credentials and trust (``bot.kafka.security``): the cluster CA (``<kafka>-cluster-ca-cert``) and
KafkaUser Secrets. The RBAC this needs: get on those Secrets, by name.

The values are decoded here and handed on as bytes; they are never logged, and the errors the
gateway raises name the Secret and the HTTP status only.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from bot.kube.errors import KubeError, KubeNotFound
from bot.kube.resources import ResourceCalls
from handlers.ports import ClusterRef, SecretLookup


class SecretCalls:
    """Mixed into ``KubeClusterGateway``, which provides ``_call`` and ``_resources``."""

    _resources: ResourceCalls

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def read_secret(self, cluster: ClusterRef, name: str) -> dict[str, bytes]:
        """The Secret ``name`` in the cluster's namespace, its keys decoded."""
        what = f"get Secret {cluster.namespace}/{name}"
        body = await self._call(what, self._resources.read_namespaced_secret, name, cluster.namespace)
        data = (body.get("data") if isinstance(body, dict) else None) or {}
        try:
            return {str(key): base64.b64decode(value, validate=True) for key, value in data.items()}
        except (binascii.Error, TypeError, ValueError):
            raise KubeError(f"Kubernetes API: {what}: a value is not base64 (is this a Secret?)") from None

    async def secret_keys(self, cluster: ClusterRef, name: str) -> SecretLookup:
        """Whether the Secret ``name`` is in the cluster's namespace, and its keys' names: the values
        are read (a get by name is all the bot's Role allows) and dropped here."""
        try:
            body = await self._call(f"get Secret {cluster.namespace}/{name}", self._resources.read_namespaced_secret,
                                    name, cluster.namespace)
        except KubeNotFound:
            return SecretLookup(name=name, found=False)
        except KubeError as exc:
            if exc.status == 403:
                return SecretLookup(name=name, found=False, forbidden=str(exc)[:300])
            raise
        data = (body.get("data") if isinstance(body, dict) else None) or {}
        return SecretLookup(name=name, found=True, keys=tuple(sorted(str(key) for key in data)))
