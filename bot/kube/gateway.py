"""``KubeClusterGateway``: the ``ClusterGateway`` port over the unmodified ``kubernetes`` client.

Design notes (docs/design.md §2, §4; docs/strimzi.md §1-§3, §9, §10):
- The client is synchronous; every call runs in a thread with a (connect, read) timeout, so a dead
  API server costs seconds, never a hung event loop. The threads are the gateway's own, not the
  event loop's default executor, so neither an unreachable Kafka cluster (bot.kafka.admin has its
  own per-cluster threads) nor anything else queued there delays a Kubernetes read.
- Responses are read as raw JSON (``_preload_content=False``), not as the client's generated
  models: those are strict pydantic models that reject objects missing "required" fields, and
  Strimzi CRs have no models anyway. One shape (dicts) for everything keeps parsing in
  ``bot.kube.parse``.
- The ``kafka.strimzi.io`` version is discovered once per gateway (``v1`` preferred, ``v1beta2``
  for Strimzi <= 0.51) and re-discovered if a read 404s, which is what an operator upgrade that
  drops ``v1beta2`` looks like.
- Reads, one pod annotation, and patches of ``spec.kafka``. Nothing here deletes a pod or a PVC
  (docs/design.md §4); the RBAC this needs is get/list on kafkas and pods, patch on pods and kafkas
  (docs/strimzi.md §10), and get on the operator's Deployment (bot.kube.operator_deployment).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from bot.kube.errors import KubeError, KubeNotFound, from_api_exception, from_transport_error
from bot.kube.mirror_makers import MirrorMakerCalls
from bot.kube.node_pools import NodePoolCalls
from bot.kube.operator_deployment import OperatorDeploymentCalls
from bot.kube.parse import broker_pod_from, kafka_status_from
from bot.kube.resources import ResourceCalls
from bot.kube.secrets import SecretCalls
from bot.kube.versions import GROUP, choose_version
from handlers.ports import BrokerPod, ClusterRef, KafkaResourceStatus, KafkaSpecEdit, PatchRejected

log = logging.getLogger(__name__)

ROLL_ANNOTATION = "strimzi.io/manual-rolling-update"
DELETE_POD_AND_PVC_ANNOTATION = "strimzi.io/delete-pod-and-pvc"
_JSON_PATCH = "application/json-patch+json"
_PATCH_ATTEMPTS = 3
_THREADS = 8  # Kubernetes calls in flight at once; a read takes milliseconds on a healthy API server


def _pointer(*parts: str) -> str:
    """A JSON pointer (RFC 6901): '~' and '/' inside a key (config names may hold neither, but a
    pointer built from user input must be exact) are escaped."""
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _at(node: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def spec_patch(kafka: dict[str, Any], edits: list[KafkaSpecEdit]) -> list[dict[str, Any]]:
    """JSON patch operations turning ``kafka``'s spec.kafka into one with ``edits`` applied, guarded
    by a ``test`` of the resourceVersion the caller read: the check and the write are one step."""
    spec_kafka = ((kafka.get("spec") or {}).get("kafka")) or {}
    ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/resourceVersion",
                                  "value": (kafka.get("metadata") or {}).get("resourceVersion", "")}]
    created: set[tuple[str, ...]] = set()
    for edit in edits:
        parent, key = edit.path[:-1], edit.path[-1]
        if edit.value is None:
            if isinstance(_at(spec_kafka, parent), dict) and key in _at(spec_kafka, parent):
                ops.append({"op": "remove", "path": _pointer("spec", "kafka", *edit.path)})
            continue
        for depth in range(1, len(parent) + 1):  # create missing maps, e.g. spec.kafka.config
            prefix = parent[:depth]
            if _at(spec_kafka, prefix) is None and prefix not in created:
                ops.append({"op": "add", "path": _pointer("spec", "kafka", *prefix), "value": {}})
                created.add(prefix)
        ops.append({"op": "add", "path": _pointer("spec", "kafka", *edit.path), "value": edit.value})
    return ops


def load_api_client(kubeconfig: str | None = None, *, context: str | None = None) -> client.ApiClient:
    """An ``ApiClient`` from a kubeconfig file, else in-cluster config, else the default kubeconfig.

    Each call builds its own ``Configuration`` so two clusters (or a test and the bot) never share
    the library's global default.
    """
    cfg = client.Configuration()
    try:
        if kubeconfig:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=cfg, persist_config=False
            )
        else:
            try:
                config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            except ConfigException:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    context=context, client_configuration=cfg, persist_config=False
                )
    except (ConfigException, OSError) as exc:
        # The loader's own message names the file or the missing variable, not its contents.
        raise KubeError(f"cannot load Kubernetes config ({kubeconfig or 'in-cluster/default'}): {exc}") from exc
    cfg.retries = 2  # urllib3 retries on connection errors: fail fast, the caller retries the step
    return client.ApiClient(configuration=cfg)


class KubeClusterGateway(NodePoolCalls, OperatorDeploymentCalls, SecretCalls, MirrorMakerCalls):
    """Strimzi resources and broker pods of the clusters reachable through one ``ApiClient``
    (``bot.kube.apis.ClusterGateways`` holds one per Kubernetes API)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
    ) -> None:
        self._api = api_client
        self._resources = ResourceCalls(api_client)  # pods, Secrets, the operator's Deployment
        self._custom = client.CustomObjectsApi(api_client)
        self._timeout = (connect_timeout, read_timeout)
        self._version: str | None = None
        self._threads = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="kco-kube")

    @property
    def api_client(self) -> client.ApiClient:
        return self._api

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None = None, **kwargs: float) -> KubeClusterGateway:
        return cls(load_api_client(kubeconfig), **kwargs)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        self._api.close()  # type: ignore[no-untyped-call]

    # -- plumbing ------------------------------------------------------------------------------

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one blocking client call in a thread; return its JSON body; translate its errors."""

        def run() -> Any:
            response = fn(*args, _preload_content=False, _request_timeout=self._timeout, **kwargs)
            return json.loads(response.data or b"null")

        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads, run)
        except ApiException as exc:
            raise from_api_exception(exc, what) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise from_transport_error(exc, what) from None
        except json.JSONDecodeError as exc:  # a body that is not JSON: not a Kubernetes API server
            raise KubeError(f"Kubernetes API: {what}: unreadable response ({exc})") from None

    def _discover(self, **kwargs: Any) -> Any:
        # The client has no typed call for one custom group's discovery document; build it with the
        # client's own serializer so auth (token refresh, client certs) is applied as for any call.
        request = self._api.param_serialize(
            method="GET",
            resource_path=f"/apis/{GROUP}",
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self._api.call_api(*request, _request_timeout=kwargs["_request_timeout"])
        response.read()  # type: ignore[no-untyped-call]
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response

    async def strimzi_api_version(self, cluster: ClusterRef | None = None, *, refresh: bool = False) -> str:
        """The ``kafka.strimzi.io`` version to use (``v1`` or ``v1beta2``), cached per gateway: one
        gateway is one API server, so ``cluster`` (taken as ``ClusterGateways`` routes by it) does
        not change the answer."""
        if self._version is None or refresh:
            try:
                discovery = await self._call(f"discover {GROUP}", self._discover)
            except KubeNotFound as exc:
                raise KubeError(f"{exc} (are the Strimzi CRDs installed?)") from None
            version = choose_version(discovery if isinstance(discovery, dict) else {})
            if version != self._version:
                log.info("using %s/%s", GROUP, version)
            self._version = version
        return self._version

    # -- the port ------------------------------------------------------------------------------

    async def _get_kafka(self, cluster: ClusterRef) -> dict[str, Any]:
        what = f"get Kafka {cluster.namespace}/{cluster.kafka}"
        version = await self.strimzi_api_version()
        try:
            return dict(await self._call(
                what, self._custom.get_namespaced_custom_object,
                GROUP, version, cluster.namespace, "kafkas", cluster.kafka,
            ))
        except KubeNotFound:
            # Either the CR is missing or the operator was upgraded and this version is gone:
            # re-discover once and retry only if the served version changed.
            if await self.strimzi_api_version(refresh=True) == version:
                raise
            return dict(await self._call(
                what, self._custom.get_namespaced_custom_object,
                GROUP, self._version, cluster.namespace, "kafkas", cluster.kafka,
            ))

    async def kafka_status(self, cluster: ClusterRef) -> KafkaResourceStatus:
        return kafka_status_from(await self._get_kafka(cluster), cluster.listener)

    async def patch_kafka_spec(
        self, cluster: ClusterRef, edits: Sequence[KafkaSpecEdit], *, expect: Sequence[KafkaSpecEdit] = (),
        expected_generation: int | None = None,
    ) -> int:
        """Patch spec.kafka only if it still shows ``expect`` (compared as text: YAML may hold 4.2 as a
        number) and, when given, ``expected_generation``. Read, check, then a JSON patch whose first
        operation tests the resourceVersion read: a write in between makes the server refuse (409/422)
        and the loop judges the new object, so nobody's change is overwritten unseen."""
        what = f"patch Kafka {cluster.namespace}/{cluster.kafka}"
        last_error = ""
        for _ in range(_PATCH_ATTEMPTS):
            kafka = await self._get_kafka(cluster)
            spec_kafka = (kafka.get("spec") or {}).get("kafka") or {}
            generation = int((kafka.get("metadata") or {}).get("generation") or 0)
            if expected_generation is not None and generation != expected_generation:
                raise PatchRejected(f"the Kafka resource is at generation {generation}, the plan was made at "
                                    f"{expected_generation}: someone changed its spec since")
            for want in expect:
                have = _at(spec_kafka, want.path)
                if (have is None) != (want.value is None) or (have is not None and _text(have) != _text(want.value)):
                    raise PatchRejected(f"spec.kafka.{'.'.join(want.path)} is {have}, the plan expected {want.value}")
            ops = spec_patch(kafka, list(edits))
            if len(ops) == 1:
                return generation  # nothing to change: every edit is already there
            try:
                body = await self._call(
                    what, self._custom.patch_namespaced_custom_object, GROUP, self._version or "v1",
                    cluster.namespace, "kafkas", cluster.kafka, ops, _content_type=_JSON_PATCH)
            except KubeError as exc:
                if exc.status not in (409, 422):
                    raise
                last_error = str(exc)  # changed under us: read again and judge the new object
                continue
            new_generation = int(((body or {}).get("metadata") or {}).get("generation") or 0)
            log.info("%s: %d operations, generation %d", what, len(ops) - 1, new_generation)
            return new_generation
        raise KubeError(f"could not {what} after {_PATCH_ATTEMPTS} attempts: {last_error}")

    async def broker_pods(self, cluster: ClusterRef) -> list[BrokerPod]:
        selector = f"strimzi.io/cluster={cluster.kafka},strimzi.io/broker-role=true"
        body = await self._call(
            f"list pods {cluster.namespace} -l {selector}",
            self._resources.list_namespaced_pod, cluster.namespace, label_selector=selector,
        )
        pods = [broker_pod_from(item) for item in (body or {}).get("items") or []]
        return sorted((p for p in pods if p is not None), key=lambda p: p.node_id)

    async def request_pod_roll(self, cluster: ClusterRef, pod_name: str, expected_uid: str) -> bool:
        """Ask Strimzi to roll one pod (docs/strimzi.md §3) unless it was already replaced."""
        return await self._annotate_pod(cluster, pod_name, expected_uid, ROLL_ANNOTATION)

    async def request_pod_and_pvc_replacement(self, cluster: ClusterRef, pod_name: str, expected_uid: str) -> bool:
        """Ask Strimzi to delete one pod and its PVC (docs/strimzi.md §7) unless it was already replaced."""
        return await self._annotate_pod(cluster, pod_name, expected_uid, DELETE_POD_AND_PVC_ANNOTATION)

    async def _annotate_pod(self, cluster: ClusterRef, pod_name: str, expected_uid: str, annotation: str) -> bool:
        """Set ``annotation=true`` on the pod while it has ``expected_uid``; False if it is gone or replaced.

        The ``test`` of the uid inside the patch makes the check and the write one atomic step: a
        retried runbook step can never annotate the pod that replaced the one it meant.
        """
        what = f"pod {cluster.namespace}/{pod_name}"
        last_error = ""
        for _ in range(_PATCH_ATTEMPTS):
            try:
                pod = await self._call(
                    f"get {what}", self._resources.read_namespaced_pod, pod_name, cluster.namespace
                )
            except KubeNotFound:
                return False
            metadata = pod.get("metadata") or {}
            if metadata.get("uid") != expected_uid:
                return False
            annotations = metadata.get("annotations")
            if isinstance(annotations, dict) and annotations.get(annotation) == "true":
                return True  # already requested: annotating again would be a no-op at best
            patch: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/uid", "value": expected_uid}]
            if annotations is None:
                # "add" on a missing map creates it, and on a present one would replace it; guard with
                # the resourceVersion so annotations someone adds meanwhile are never wiped.
                patch += [
                    {"op": "test", "path": "/metadata/resourceVersion",
                     "value": metadata.get("resourceVersion", "")},
                    {"op": "add", "path": "/metadata/annotations", "value": {annotation: "true"}},
                ]
            else:
                patch.append({"op": "add", "path": _pointer("metadata", "annotations", annotation), "value": "true"})
            try:
                await self._call(
                    f"annotate {what}", self._resources.patch_namespaced_pod,
                    pod_name, cluster.namespace, patch, _content_type=_JSON_PATCH,
                )
                log.info("set %s on %s (uid %s)", annotation, what, expected_uid)
                return True
            except KubeNotFound:
                return False
            except KubeError as exc:
                # 409/422 = a failed test: the pod was replaced (re-read says so) or changed under us
                # (re-read and try again). Anything else is a real error.
                if exc.status not in (409, 422):
                    raise
                last_error = str(exc)
        raise KubeError(f"could not annotate {what} after {_PATCH_ATTEMPTS} attempts: {last_error}")
