"""The KafkaMirrorMaker2 half of ``KubeClusterGateway``: the ``MirrorMakers`` port.

A mirror lives in its target cluster's namespace. ``status.connectors`` is the raw Connect REST
status of each connector, read into ``ConnectorStatus`` as it is: Strimzi's Ready condition stays
True next to a FAILED task (Strimzi issue #5715), so the callers judge the connectors themselves.
Writes are JSON patches whose first operation tests the resourceVersion read, so a change someone
made in between is judged again, never overwritten unseen. The RBAC this needs:
get/list/create/patch/delete on ``kafkamirrormaker2s``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from bot.kube.errors import KubeError, KubeNotFound
from bot.kube.versions import GROUP
from handlers.mirror_ports import AutoRestartStatus, ConnectorStatus, MirrorMakerGone, MirrorMakerStatus, TaskStatus
from handlers.ports import ClusterRef, PatchRejected

log = logging.getLogger(__name__)

PLURAL = "kafkamirrormaker2s"
_JSON_PATCH = "application/json-patch+json"
_ATTEMPTS = 3


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def connector_status_from(item: Mapping[str, Any]) -> ConnectorStatus:
    raw = item.get("connector")
    own: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    tasks = tuple(
        TaskStatus(id=int(t.get("id") or 0), state=_text(t.get("state")), worker_id=_text(t.get("worker_id")),
                   trace=_text(t.get("trace")))
        for t in item.get("tasks") or [] if isinstance(t, Mapping))
    return ConnectorStatus(name=_text(item.get("name")), state=_text(own.get("state")),
                           worker_id=_text(own.get("worker_id")), trace=_text(own.get("trace")),
                           type=_text(item.get("type")), tasks=tuple(sorted(tasks, key=lambda t: t.id)))


def mirror_maker_from(item: Mapping[str, Any]) -> MirrorMakerStatus:
    metadata = item.get("metadata") or {}
    status = item.get("status") or {}
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, Mapping)]
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    trouble = next((c for c in conditions if c.get("type") == "NotReady" and c.get("status") == "True"), None)
    restarts = tuple(
        AutoRestartStatus(connector=_text(r.get("connectorName")), count=int(r.get("count") or 0),
                          last_restart=_text(r.get("lastRestartTimestamp")))
        for r in status.get("autoRestartStatuses") or [] if isinstance(r, Mapping))
    return MirrorMakerStatus(
        name=_text(metadata.get("name")), namespace=_text(metadata.get("namespace")), uid=_text(metadata.get("uid")),
        ready=ready, reason=_text((trouble or {}).get("reason")), message=_text((trouble or {}).get("message")),
        generation=int(metadata.get("generation") or 0), observed_generation=int(status.get("observedGeneration") or 0),
        url=_text(status.get("url")), spec=dict(item.get("spec") or {}),
        labels={str(k): str(v) for k, v in (metadata.get("labels") or {}).items()},
        annotations={str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()},
        connectors=tuple(connector_status_from(c) for c in status.get("connectors") or [] if isinstance(c, Mapping)),
        auto_restarts=restarts)


def annotation_patch(found: Mapping[str, Any], annotations: Mapping[str, str | None]) -> list[dict[str, Any]]:
    metadata = found.get("metadata") or {}
    ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/resourceVersion",
                                  "value": metadata.get("resourceVersion", "")}]
    present = metadata.get("annotations")
    if not isinstance(present, dict):
        if not any(v is not None for v in annotations.values()):
            return ops
        ops.append({"op": "add", "path": "/metadata/annotations", "value": {}})
        present = {}
    for key, value in annotations.items():
        path = "/metadata/annotations/" + _escape(key)
        if value is None:
            if key in present:
                ops.append({"op": "remove", "path": path})
        elif present.get(key) != value:
            ops.append({"op": "add", "path": path, "value": value})
    return ops


class MirrorMakerCalls:
    """Mixed into ``KubeClusterGateway``, which provides the calls below."""

    _custom: Any

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def strimzi_api_version(self, cluster: ClusterRef | None = None, *, refresh: bool = False) -> str:
        raise NotImplementedError

    async def _get_raw(self, cluster: ClusterRef, name: str) -> dict[str, Any] | None:
        version = await self.strimzi_api_version(cluster)
        try:
            found = await self._call(f"get KafkaMirrorMaker2 {cluster.namespace}/{name}",
                                     self._custom.get_namespaced_custom_object, GROUP, version, cluster.namespace,
                                     PLURAL, name)
        except KubeNotFound:
            return None
        return dict(found or {})

    async def list_mirror_makers(self, cluster: ClusterRef) -> list[MirrorMakerStatus]:
        version = await self.strimzi_api_version(cluster)
        body = await self._call(f"list KafkaMirrorMaker2s {cluster.namespace}",
                                self._custom.list_namespaced_custom_object, GROUP, version, cluster.namespace, PLURAL)
        found = [mirror_maker_from(item) for item in (body or {}).get("items") or [] if isinstance(item, Mapping)]
        return sorted(found, key=lambda m: m.name)

    async def get_mirror_maker(self, cluster: ClusterRef, name: str) -> MirrorMakerStatus | None:
        found = await self._get_raw(cluster, name)
        return None if found is None else mirror_maker_from(found)

    async def create_mirror_maker(
        self, cluster: ClusterRef, name: str, spec: Mapping[str, Any], *, labels: Mapping[str, str] | None = None,
    ) -> MirrorMakerStatus:
        version = await self.strimzi_api_version(cluster)
        what = f"create KafkaMirrorMaker2 {cluster.namespace}/{name}"
        body = {"apiVersion": f"{GROUP}/{version}", "kind": "KafkaMirrorMaker2",
                "metadata": {"name": name, "namespace": cluster.namespace, "labels": dict(labels or {})},
                "spec": dict(spec)}
        try:
            created = await self._call(what, self._custom.create_namespaced_custom_object, GROUP, version,
                                       cluster.namespace, PLURAL, body)
        except KubeError as exc:
            if exc.status != 409:
                raise
            existing = await self.get_mirror_maker(cluster, name)
            if existing is None:
                raise
            if existing.spec != dict(spec):
                raise PatchRejected(f"a KafkaMirrorMaker2 {cluster.namespace}/{name} exists already with "
                                    "another spec") from None
            return existing
        log.info("%s", what)
        return mirror_maker_from(created or body)

    async def patch_mirror_maker_spec(
        self, cluster: ClusterRef, name: str, spec: Mapping[str, Any], *, expected_generation: int | None = None,
    ) -> MirrorMakerStatus:
        what = f"KafkaMirrorMaker2 {cluster.namespace}/{name}"
        version = await self.strimzi_api_version(cluster)
        last_error = ""
        for _ in range(_ATTEMPTS):
            found = await self._get_raw(cluster, name)
            if found is None:
                raise MirrorMakerGone(f"{what} does not exist")
            generation = int((found.get("metadata") or {}).get("generation") or 0)
            if expected_generation is not None and generation != expected_generation:
                raise PatchRejected(f"{what} is at generation {generation}, the plan was made at "
                                    f"{expected_generation}: someone changed its spec since")
            if dict(found.get("spec") or {}) == dict(spec):
                return mirror_maker_from(found)
            ops = [{"op": "test", "path": "/metadata/resourceVersion",
                    "value": (found.get("metadata") or {}).get("resourceVersion", "")},
                   {"op": "add", "path": "/spec", "value": dict(spec)}]
            try:
                body = await self._call(f"patch {what}", self._custom.patch_namespaced_custom_object, GROUP,
                                        version, cluster.namespace, PLURAL, name, ops, _content_type=_JSON_PATCH)
            except KubeError as exc:
                if exc.status not in (409, 422):
                    raise
                last_error = str(exc)
                continue
            log.info("patched the spec of %s", what)
            return mirror_maker_from(body or {})
        raise KubeError(f"could not patch {what} after {_ATTEMPTS} attempts: {last_error}")

    async def delete_mirror_maker(self, cluster: ClusterRef, name: str) -> bool:
        version = await self.strimzi_api_version(cluster)
        try:
            await self._call(f"delete KafkaMirrorMaker2 {cluster.namespace}/{name}",
                             self._custom.delete_namespaced_custom_object, GROUP, version, cluster.namespace,
                             PLURAL, name)
        except KubeNotFound:
            return False
        log.info("deleted KafkaMirrorMaker2 %s/%s", cluster.namespace, name)
        return True

    async def annotate_mirror_maker(
        self, cluster: ClusterRef, name: str, annotations: Mapping[str, str | None],
    ) -> MirrorMakerStatus:
        what = f"KafkaMirrorMaker2 {cluster.namespace}/{name}"
        version = await self.strimzi_api_version(cluster)
        last_error = ""
        for _ in range(_ATTEMPTS):
            found = await self._get_raw(cluster, name)
            if found is None:
                raise MirrorMakerGone(f"{what} does not exist")
            ops = annotation_patch(found, annotations)
            if len(ops) == 1:
                return mirror_maker_from(found)
            try:
                body = await self._call(f"annotate {what}", self._custom.patch_namespaced_custom_object, GROUP,
                                        version, cluster.namespace, PLURAL, name, ops, _content_type=_JSON_PATCH)
            except KubeError as exc:
                if exc.status not in (409, 422):
                    raise
                last_error = str(exc)
                continue
            log.info("annotated %s: %s", what, ", ".join(annotations))
            return mirror_maker_from(body or {})
        raise KubeError(f"could not annotate {what} after {_ATTEMPTS} attempts: {last_error}")
