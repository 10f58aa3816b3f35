"""The operator-Deployment half of ``KubeClusterGateway``: read the Strimzi cluster operator's
Deployment for its image and ``STRIMZI_KAFKA_IMAGES`` (handlers.operator_deployment).

One ``get`` on ``apps/deployments`` by name (``read_namespaced_deployment``, bot.kube.resources), read as raw
JSON like every other call of the gateway. The RBAC this needs: get on that one Deployment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from bot.kube.resources import ResourceCalls
from handlers.operator_deployment import DEFAULT_OPERATOR_DEPLOYMENT, OperatorDeployment
from handlers.ports import ClusterRef
from runbooks.rules.strimzi_releases import KAFKA_IMAGES_ENV


def _operator_container(containers: list[Any]) -> Mapping[str, Any] | None:
    """Strimzi's container is named like its Deployment; else the one that sets STRIMZI_KAFKA_IMAGES."""
    found = [c for c in containers if isinstance(c, dict)]
    for container in found:
        if container.get("name") == DEFAULT_OPERATOR_DEPLOYMENT:
            return container
    for container in found:
        if any(isinstance(e, dict) and e.get("name") == KAFKA_IMAGES_ENV for e in container.get("env") or []):
            return container
    return found[0] if found else None


def operator_deployment_from(body: Mapping[str, Any], namespace: str, name: str) -> OperatorDeployment:
    containers = (((body.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    container = _operator_container(list(containers))
    if container is None:
        return OperatorDeployment(namespace=namespace, name=name)
    images = next((e.get("value") for e in container.get("env") or []
                   if isinstance(e, dict) and e.get("name") == KAFKA_IMAGES_ENV), None)
    image = container.get("image")
    return OperatorDeployment(namespace=namespace, name=name, image=str(image) if image else None,
                              kafka_images=str(images) if isinstance(images, str) else None)


class OperatorDeploymentCalls:
    """Mixed into ``KubeClusterGateway``, which provides ``_call`` and ``_resources``."""

    _resources: ResourceCalls

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def operator_deployment(self, cluster: ClusterRef, namespace: str, name: str) -> OperatorDeployment:
        body = await self._call(f"get Deployment {namespace}/{name}", self._resources.read_namespaced_deployment,
                                name, namespace)
        return operator_deployment_from(body if isinstance(body, dict) else {}, namespace, name)
