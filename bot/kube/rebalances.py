"""``KubeRebalances``: the ``KafkaRebalances`` port over the unmodified ``kubernetes`` client.

As ``bot.kube.gateway``: blocking calls in the adapter's own threads with a (connect, read) timeout,
raw JSON (Strimzi CRs have no generated models), errors translated by ``bot.kube.errors``. The
``kafka.strimzi.io`` version is the gateway's (``v1`` or ``v1beta2``, discovered once).

The one write is the ``strimzi.io/rebalance`` annotation, as a JSON patch whose first operations
``test`` the uid and the resourceVersion read: the state check and the write are one step, and a
change in between (the operator moved the resource on) is refused by the server and judged again.
Nothing here sets ``strimzi.io/rebalance-auto-approval``. RBAC: get/list/patch/create on
``kafkarebalances`` (create: the runbooks' ``--engine cruise-control``), get on ``configmaps`` (the
progress ConfigMap).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bot.kube.errors import KubeError, KubeNotFound, from_api_exception, from_transport_error
from bot.kube.resources import ResourceCalls
from bot.kube.versions import GROUP
from handlers.ports import ClusterRef
from handlers.rebalances import RebalanceGone, RebalanceMoved
from runbooks.rules.rebalance import (
    REBALANCE_ANNOTATION,
    RUN_LABEL,
    KafkaRebalanceView,
    OptimizationSummary,
    RebalanceAction,
    RebalanceProgress,
    RebalanceState,
)

log = logging.getLogger(__name__)

PLURAL = "kafkarebalances"
CLUSTER_LABEL = "strimzi.io/cluster"
_JSON_PATCH = "application/json-patch+json"
_ANNOTATION_PATH = "/metadata/annotations/" + REBALANCE_ANNOTATION.replace("~", "~0").replace("/", "~1")
_PATCH_ATTEMPTS = 3
_STATES = {s.value: s for s in RebalanceState}


def _time(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def rebalance_from(obj: dict[str, Any]) -> KafkaRebalanceView:
    """Read one KafkaRebalance: its state is the type of the one True condition naming a state."""
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    current = next((c for c in conditions if c.get("type") in _STATES and str(c.get("status")).lower() == "true"),
                   None)
    brokers = tuple(int(b) for b in spec.get("brokers") or [] if isinstance(b, int) and not isinstance(b, bool))
    progress = status.get("progress") or {}
    return KafkaRebalanceView(
        name=str(metadata.get("name", "")), namespace=str(metadata.get("namespace", "")),
        uid=str(metadata.get("uid", "")), cluster_label=str((metadata.get("labels") or {}).get(CLUSTER_LABEL, "")),
        mode=str(spec.get("mode") or "full"), brokers=brokers,
        state=_STATES[current["type"]] if current else None,
        state_since=_time(current.get("lastTransitionTime")) if current else None,
        reason=str((current or {}).get("reason") or ""), message=str((current or {}).get("message") or ""),
        optimization=OptimizationSummary.from_status(status.get("optimizationResult")),
        annotations={str(k): str(v) for k, v in (metadata.get("annotations") or {}).items()},
        generation=int(metadata.get("generation") or 0), resource_version=str(metadata.get("resourceVersion", "")),
        progress_config_map=str(progress.get("rebalanceProgressConfigMap") or "") if isinstance(progress, dict)
        else "",
        run_id=str((metadata.get("labels") or {}).get(RUN_LABEL, "")),
    )


def progress_from(config_map: dict[str, Any]) -> RebalanceProgress:
    data = config_map.get("data") or {}

    def number(key: str) -> float | None:
        try:
            return float(data[key])
        except (KeyError, TypeError, ValueError):
            return None

    return RebalanceProgress(completed_percent=number("completedByteMovementPercentage"),
                             eta_minutes=number("estimatedTimeToCompletionInMinutes"))


class KubeRebalances:
    def __init__(self, api_client: client.ApiClient, *, strimzi_version: Callable[[], Awaitable[str]],
                 connect_timeout: float = 5.0, read_timeout: float = 15.0) -> None:
        self._custom = client.CustomObjectsApi(api_client)
        self._resources = ResourceCalls(api_client)  # the progress ConfigMap
        self._version = strimzi_version
        self._timeout = (connect_timeout, read_timeout)
        self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kco-rebalance")

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        def run() -> Any:
            response = fn(*args, _preload_content=False, _request_timeout=self._timeout, **kwargs)
            return json.loads(response.data or b"null")

        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads, run)
        except ApiException as exc:
            raise from_api_exception(exc, what) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise from_transport_error(exc, what) from None
        except json.JSONDecodeError as exc:
            raise KubeError(f"Kubernetes API: {what}: unreadable response ({exc})") from None

    async def list_rebalances(self, cluster: ClusterRef) -> list[KafkaRebalanceView]:
        selector = f"{CLUSTER_LABEL}={cluster.kafka}"
        body = await self._call(f"list KafkaRebalances {cluster.namespace} -l {selector}",
                                self._custom.list_namespaced_custom_object, GROUP, await self._version(),
                                cluster.namespace, PLURAL, label_selector=selector)
        found = [rebalance_from(item) for item in (body or {}).get("items") or [] if isinstance(item, dict)]
        return sorted(found, key=lambda r: r.name)

    async def _get(self, cluster: ClusterRef, name: str) -> dict[str, Any] | None:
        try:
            body = await self._call(f"get KafkaRebalance {cluster.namespace}/{name}",
                                    self._custom.get_namespaced_custom_object, GROUP, await self._version(),
                                    cluster.namespace, PLURAL, name)
        except KubeNotFound:
            return None
        return body if isinstance(body, dict) else None

    async def get_rebalance(self, cluster: ClusterRef, name: str) -> KafkaRebalanceView | None:
        body = await self._get(cluster, name)
        if body is None:
            return None
        found = rebalance_from(body)
        return found if found.cluster_label == cluster.kafka else None

    async def create_rebalance(
        self, cluster: ClusterRef, name: str, *, mode: str, brokers: tuple[int, ...] = (), run_id: str = "",
    ) -> KafkaRebalanceView:
        version = await self._version()
        labels = {CLUSTER_LABEL: cluster.kafka, **({RUN_LABEL: run_id} if run_id else {})}
        spec: dict[str, Any] = {"mode": mode}
        if brokers:
            spec["brokers"] = list(brokers)
        body = {"apiVersion": f"{GROUP}/{version}", "kind": "KafkaRebalance",
                "metadata": {"name": name, "namespace": cluster.namespace, "labels": labels},
                "spec": spec}
        try:
            created = await self._call(f"create KafkaRebalance {cluster.namespace}/{name}",
                                       self._custom.create_namespaced_custom_object, GROUP, version,
                                       cluster.namespace, PLURAL, body)
        except KubeError as exc:
            if exc.status != 409:
                raise
            existing = await self._get(cluster, name)  # created before a crash: the same step asked again
            if existing is None:
                raise
            found = rebalance_from(existing)
            if found.cluster_label != cluster.kafka:
                raise RebalanceMoved(f"KafkaRebalance {cluster.namespace}/{name} exists for cluster "
                                     f"{found.cluster_label or '(none)'}, not {cluster.kafka}", found) from None
            return found
        log.info("created KafkaRebalance %s/%s (%s %s)", cluster.namespace, name, mode, list(brokers))
        return rebalance_from(created)

    async def annotate(
        self, cluster: ClusterRef, name: str, action: RebalanceAction, *, expected_state: RebalanceState,
        expected_uid: str,
    ) -> KafkaRebalanceView:
        what = f"annotate KafkaRebalance {cluster.namespace}/{name}"
        last_error = ""
        for _ in range(_PATCH_ATTEMPTS):
            body = await self._get(cluster, name)
            current = rebalance_from(body) if body is not None else None
            if current is None or current.uid != expected_uid or current.cluster_label != cluster.kafka:
                raise RebalanceGone(f"KafkaRebalance {cluster.namespace}/{name} is gone")
            if current.state is not expected_state:
                now = current.state.value if current.state else "without a status"
                raise RebalanceMoved(f"KafkaRebalance {cluster.namespace}/{name} is now {now}, not "
                                     f"{expected_state.value}.", current)
            if current.pending_action:
                raise RebalanceMoved(f"KafkaRebalance {cluster.namespace}/{name} already carries "
                                     f"{REBALANCE_ANNOTATION}={current.pending_action}.", current)
            metadata = (body or {}).get("metadata") or {}
            patch: list[dict[str, Any]] = [
                {"op": "test", "path": "/metadata/uid", "value": expected_uid},
                {"op": "test", "path": "/metadata/resourceVersion", "value": current.resource_version},
            ]
            if isinstance(metadata.get("annotations"), dict):
                patch.append({"op": "add", "path": _ANNOTATION_PATH, "value": action.value})
            else:
                patch.append({"op": "add", "path": "/metadata/annotations", "value": {REBALANCE_ANNOTATION:
                                                                                      action.value}})
            try:
                written = await self._call(what, self._custom.patch_namespaced_custom_object, GROUP,
                                           await self._version(), cluster.namespace, PLURAL, name, patch,
                                           _content_type=_JSON_PATCH)
            except KubeNotFound:
                raise RebalanceGone(f"KafkaRebalance {cluster.namespace}/{name} is gone") from None
            except KubeError as exc:
                if exc.status not in (409, 422):
                    raise
                last_error = str(exc)  # changed under us: read again and judge the new state
                continue
            log.info("%s: %s=%s", what, REBALANCE_ANNOTATION, action.value)
            return rebalance_from(written)
        raise KubeError(f"could not {what} after {_PATCH_ATTEMPTS} attempts: {last_error}")

    async def progress(self, cluster: ClusterRef, rebalance: KafkaRebalanceView) -> RebalanceProgress | None:
        name = rebalance.progress_config_map or rebalance.name  # Strimzi names it after the resource
        try:
            body = await self._call(f"get ConfigMap {cluster.namespace}/{name}",
                                    self._resources.read_namespaced_config_map, name, cluster.namespace)
        except KubeNotFound:
            return None
        return progress_from(body) if isinstance(body, dict) else None
