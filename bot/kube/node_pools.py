"""The KafkaNodePool half of ``KubeClusterGateway``: read a cluster's pools, patch one's replicas.

A pool belongs to a cluster by its ``strimzi.io/cluster`` label (docs/strimzi.md §6). The patch is a
JSON patch whose first operation tests the resourceVersion read, so the check of spec.replicas and
the write are one step: a pool someone scaled meanwhile is judged again, never overwritten unseen.
The RBAC this needs: get/list/patch on kafkanodepools.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from bot.kube.errors import KubeError
from bot.kube.versions import GROUP
from handlers.ports import ClusterRef, PatchRejected
from runbooks.rules.node_pools import NodePool

log = logging.getLogger(__name__)

_JSON_PATCH = "application/json-patch+json"
_ATTEMPTS = 3


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def node_pool_from(item: Mapping[str, Any]) -> NodePool:
    metadata = item.get("metadata") or {}
    spec = item.get("spec") or {}
    status = item.get("status") or {}
    roles = tuple(str(r) for r in spec.get("roles") or status.get("roles") or ())
    annotations = {str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()}
    return NodePool(name=str(metadata.get("name", "")), roles=roles, replicas=int(spec.get("replicas") or 0),
                    node_ids=tuple(sorted(int(i) for i in status.get("nodeIds") or ())), annotations=annotations)


def pool_patch(pool: Mapping[str, Any], replicas: int, annotations: Mapping[str, str | None]) -> list[dict[str, Any]]:
    metadata = pool.get("metadata") or {}
    ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/resourceVersion",
                                  "value": metadata.get("resourceVersion", "")}]
    present = metadata.get("annotations")
    if annotations and not isinstance(present, dict):
        ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
        present = {}
    for key, value in annotations.items():
        path = "/metadata/annotations/" + _escape(key)
        if value is None:
            if isinstance(present, dict) and key in present:
                ops.append({"op": "remove", "path": path})
        elif not isinstance(present, dict) or present.get(key) != value:
            ops.append({"op": "add", "path": path, "value": value})
    if int((pool.get("spec") or {}).get("replicas") or 0) != replicas:
        ops.append({"op": "add", "path": "/spec/replicas", "value": replicas})
    return ops


class NodePoolCalls:
    """Mixed into ``KubeClusterGateway``, which provides the calls below."""

    _custom: Any

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def strimzi_api_version(self, *, refresh: bool = False) -> str:
        raise NotImplementedError

    async def node_pools(self, cluster: ClusterRef) -> list[NodePool]:
        selector = f"strimzi.io/cluster={cluster.kafka}"
        version = await self.strimzi_api_version()
        body = await self._call(f"list KafkaNodePools {cluster.namespace} -l {selector}",
                                self._custom.list_namespaced_custom_object, GROUP, version, cluster.namespace,
                                "kafkanodepools", label_selector=selector)
        pools = [node_pool_from(item) for item in (body or {}).get("items") or []]
        return sorted(pools, key=lambda p: p.name)

    async def patch_node_pool(self, cluster: ClusterRef, pool: str, *, replicas: int, expected_replicas: int,
                              annotations: Mapping[str, str | None] | None = None) -> None:
        what = f"KafkaNodePool {cluster.namespace}/{pool}"
        version = await self.strimzi_api_version()
        last_error = ""
        for _ in range(_ATTEMPTS):
            found = await self._call(f"get {what}", self._custom.get_namespaced_custom_object, GROUP, version,
                                     cluster.namespace, "kafkanodepools", pool)
            have = int(((found or {}).get("spec") or {}).get("replicas") or 0)
            if have not in (expected_replicas, replicas):
                raise PatchRejected(f"{what} has spec.replicas {have}, the plan expected {expected_replicas}: "
                                    "someone scaled it since")
            ops = pool_patch(found or {}, replicas, annotations or {})
            if len(ops) == 1:
                return
            try:
                await self._call(f"patch {what}", self._custom.patch_namespaced_custom_object, GROUP, version,
                                 cluster.namespace, "kafkanodepools", pool, ops, _content_type=_JSON_PATCH)
            except KubeError as exc:
                if exc.status not in (409, 422):
                    raise
                last_error = str(exc)
                continue
            log.info("%s: replicas %d -> %d", what, have, replicas)
            return
        raise KubeError(f"could not patch {what} after {_ATTEMPTS} attempts: {last_error}")
