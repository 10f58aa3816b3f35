"""KubeClusterGateway against the sandbox's Kubernetes API emulator, over real HTTP.

The emulator is started in-process with an empty store; each test creates the Kafka CR and pods
with Strimzi's labels itself (docs/strimzi.md §1-§2), so what is asserted is exactly what was written.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from aiohttp import web

from bot.kube import KubeClusterGateway, KubeError, KubeNotFound, KubeUnavailable, load_api_client
from bot.kube.gateway import ROLL_ANNOTATION
from bot.sandbox.kube import ObjectStore, create_app, start_server, write_kubeconfig
from handlers.ports import BrokerPod, ClusterRef
from tests.fixtures.waiting import wait_for

if TYPE_CHECKING:  # a runtime import would stop pytest from rewriting the plugin's asserts
    from tests.fixtures.sandbox import SandboxInfo


NS = "kafka"
STRIMZI = "kafka.strimzi.io"
CLUSTER = ClusterRef(name="prod", namespace=NS, kafka="prod")


@dataclass
class Kube:
    store: ObjectStore
    gateway: KubeClusterGateway
    url: str


async def _serve(tmp_path: Path, store: ObjectStore, app: web.Application | None = None) -> AsyncIterator[Kube]:
    runner, url = await start_server(store, app=app)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url, namespace=NS, context_name="test")
    gateway = KubeClusterGateway(load_api_client(str(kubeconfig)))
    try:
        yield Kube(store, gateway, url)
    finally:
        gateway.close()
        await runner.cleanup()


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[Kube]:
    async for k in _serve(tmp_path, ObjectStore()):
        yield k


@pytest.fixture
async def old_strimzi(tmp_path: Path) -> AsyncIterator[Kube]:
    """An API server like Strimzi <= 0.48: ``kafka.strimzi.io`` served only as ``v1beta2``."""
    store = ObjectStore()
    app = create_app(store)

    @web.middleware
    async def v1beta2_only(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.rstrip("/") == f"/apis/{STRIMZI}":
            version = {"groupVersion": f"{STRIMZI}/v1beta2", "version": "v1beta2"}
            return web.json_response({
                "kind": "APIGroup", "apiVersion": "v1", "name": STRIMZI,
                "versions": [version], "preferredVersion": version,
            })
        if request.path.startswith(f"/apis/{STRIMZI}/v1/"):
            return web.json_response(
                {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                 "message": "the server could not find the requested resource", "code": 404},
                status=404,
            )
        response: web.StreamResponse = await handler(request)
        return response

    app.middlewares.append(v1beta2_only)
    async for k in _serve(tmp_path, store, app):
        yield k


def create_kafka(
    store: ObjectStore,
    *,
    name: str = "prod",
    conditions: list[dict[str, Any]] | None = None,
    observed_generation: int | None = 1,
    annotations: dict[str, str] | None = None,
    status_extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    store.create(STRIMZI, "kafkas", NS, {
        "apiVersion": f"{STRIMZI}/v1", "kind": "Kafka",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"kafka": {"version": "4.3.1", "metadataVersion": "4.3-IV0",
                           "listeners": [{"name": "plain", "port": 9092, "type": "internal", "tls": False}]}},
    })
    status: dict[str, Any] = {
        "conditions": conditions if conditions is not None else [{"type": "Ready", "status": "True"}],
        "kafkaVersion": "4.2.2",
        "kafkaMetadataVersion": "4.2-IV1",
        "operatorLastSuccessfulVersion": "1.2.0",
        "listeners": [
            {"name": "plain", "bootstrapServers": f"{name}-kafka-bootstrap.{NS}.svc:9092"},
            {"name": "tls", "bootstrapServers": f"{name}-kafka-bootstrap.{NS}.svc:9093"},
        ],
        **(status_extra or {}),
    }
    if observed_generation is not None:
        status["observedGeneration"] = observed_generation
    return store.merge_patch(STRIMZI, "kafkas", NS, name, {"status": status}, subresource="status")


def create_pod(
    store: ObjectStore,
    name: str,
    *,
    cluster: str = "prod",
    pool: str = "brokers",
    broker: bool = True,
    ready: bool = True,
    restarts: int = 0,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {
            "strimzi.io/cluster": cluster, "strimzi.io/kind": "Kafka", "strimzi.io/name": f"{cluster}-kafka",
            "strimzi.io/pool-name": pool, "strimzi.io/broker-role": str(broker).lower(),
            "strimzi.io/controller-role": "true", "strimzi.io/pod-name": name,
        },
    }
    if annotations is not None:  # None: a pod with no annotations map at all
        metadata["annotations"] = annotations
    store.create("", "pods", NS, {
        "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
        "spec": {"containers": [{"name": "kafka", "image": "quay.io/strimzi/kafka:1.2.0-kafka-4.3.1"}]},
    })
    return store.merge_patch("", "pods", NS, name, {"status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": [{"name": "kafka", "ready": ready, "restartCount": restarts}],
    }}, subresource="status")


def annotations_of(store: ObjectStore, pod: str) -> dict[str, str]:
    return dict(store.get("", "pods", NS, pod)["metadata"].get("annotations") or {})


# -- kafka_status ----------------------------------------------------------------------------


async def test_kafka_status_ready(kube: Kube) -> None:
    """A Ready Kafka CR reports ready, versions, the first listener's bootstrap and a settled generation."""
    create_kafka(kube.store)
    status = await kube.gateway.kafka_status(CLUSTER)
    assert status.ready and status.settled and not status.paused
    assert (status.generation, status.observed_generation) == (1, 1)
    assert status.kafka_version == "4.2.2" and status.metadata_version == "4.2-IV1"
    assert status.spec_kafka_version == "4.3.1" and status.spec_metadata_version == "4.3-IV0"
    assert status.operator_version == "1.2.0"
    assert status.bootstrap_servers == f"prod-kafka-bootstrap.{NS}.svc:9092"
    assert status.warnings == ()
    assert await kube.gateway.strimzi_api_version() == "v1"


async def test_kafka_status_not_ready_carries_reason_and_message(kube: Kube) -> None:
    """A NotReady condition's reason (the operator's exception class) and message come through."""
    create_kafka(kube.store, conditions=[{
        "type": "NotReady", "status": "True", "reason": "KafkaUpgradeException",
        "message": "The current metadata version 4.2-IV1 is not supported",
    }])
    status = await kube.gateway.kafka_status(CLUSTER)
    assert not status.ready and not status.settled
    assert status.reason == "KafkaUpgradeException"
    assert "4.2-IV1" in status.message


async def test_kafka_status_warnings_and_pause(kube: Kube) -> None:
    """Warning conditions become text next to a Ready state, and the pause annotation is read."""
    create_kafka(
        kube.store,
        annotations={"strimzi.io/pause-reconciliation": "true"},
        conditions=[
            {"type": "Warning", "status": "True", "reason": "KafkaMetadataVersion",
             "message": "Metadata version is older than the Kafka version"},
            {"type": "Warning", "status": "True", "reason": "KafkaMinInsyncReplicas"},
            {"type": "Ready", "status": "True"},
        ],
    )
    status = await kube.gateway.kafka_status(CLUSTER)
    assert status.ready and status.paused
    assert status.warnings == (
        "KafkaMetadataVersion: Metadata version is older than the Kafka version",
        "KafkaMinInsyncReplicas",
    )


async def test_kafka_status_generation_lag_is_not_settled(kube: Kube) -> None:
    """A spec change bumps metadata.generation; until the operator observes it, the CR is not settled."""
    create_kafka(kube.store)
    kube.store.merge_patch(STRIMZI, "kafkas", NS, "prod", {"spec": {"kafka": {"config": {"x": "1"}}}})
    status = await kube.gateway.kafka_status(CLUSTER)
    assert status.ready
    assert (status.generation, status.observed_generation) == (2, 1)
    assert not status.settled


async def test_kafka_status_without_any_status(kube: Kube) -> None:
    """A CR the operator has not reconciled yet is not ready and says so."""
    kube.store.create(STRIMZI, "kafkas", NS, {"apiVersion": f"{STRIMZI}/v1", "kind": "Kafka",
                                               "metadata": {"name": "prod"}, "spec": {"kafka": {}}})
    status = await kube.gateway.kafka_status(CLUSTER)
    assert not status.ready and status.reason == "NoStatus"
    assert status.observed_generation == 0 and status.bootstrap_servers is None


async def test_kafka_status_missing_cr_is_not_found(kube: Kube) -> None:
    """Reading a Kafka that does not exist raises KubeNotFound naming it."""
    with pytest.raises(KubeNotFound, match=f"{NS}/prod"):
        await kube.gateway.kafka_status(CLUSTER)


async def test_kafka_status_on_a_v1beta2_only_server(old_strimzi: Kube) -> None:
    """On a server that serves only v1beta2 (Strimzi <= 0.48) the gateway detects it and reads through it."""
    create_kafka(old_strimzi.store)
    assert await old_strimzi.gateway.strimzi_api_version() == "v1beta2"
    status = await old_strimzi.gateway.kafka_status(CLUSTER)
    assert status.ready and status.kafka_version == "4.2.2"


# -- broker_pods -----------------------------------------------------------------------------


async def test_broker_pods_selects_this_clusters_brokers(kube: Kube) -> None:
    """Only pods labelled as brokers of this cluster come back, sorted by the node id from the name."""
    create_pod(kube.store, "prod-brokers-10", ready=False, restarts=3,
               annotations={"strimzi.io/kafka-version": "4.3.1"})
    create_pod(kube.store, "prod-brokers-2", annotations={"strimzi.io/kafka-version": "4.2.2"})
    create_pod(kube.store, "prod-controllers-0", pool="controllers", broker=False)
    create_pod(kube.store, "other-brokers-0", cluster="other")
    pods = await kube.gateway.broker_pods(CLUSTER)
    assert [(p.node_id, p.name, p.ready, p.restart_count, p.kafka_version) for p in pods] == [
        (2, "prod-brokers-2", True, 0, "4.2.2"),
        (10, "prod-brokers-10", False, 3, "4.3.1"),
    ]
    assert all(p.pool == "brokers" and p.phase == "Running" and p.uid for p in pods)


# -- request_pod_roll ------------------------------------------------------------------------


async def test_request_pod_roll_annotates_once(kube: Kube) -> None:
    """The annotation is added next to existing ones; a repeat call changes nothing and still says True."""
    pod = create_pod(kube.store, "prod-brokers-1", annotations={"strimzi.io/kafka-version": "4.3.1"})
    uid = pod["metadata"]["uid"]
    assert await kube.gateway.request_pod_roll(CLUSTER, "prod-brokers-1", uid) is True
    after_first = kube.store.get("", "pods", NS, "prod-brokers-1")["metadata"]
    assert after_first["annotations"] == {"strimzi.io/kafka-version": "4.3.1", ROLL_ANNOTATION: "true"}
    assert await kube.gateway.request_pod_roll(CLUSTER, "prod-brokers-1", uid) is True
    after_second = kube.store.get("", "pods", NS, "prod-brokers-1")["metadata"]
    assert after_second["resourceVersion"] == after_first["resourceVersion"]  # no second write


async def test_request_pod_roll_creates_a_missing_annotations_map(kube: Kube) -> None:
    """A pod without any annotations map gets one holding just the roll annotation."""
    pod = create_pod(kube.store, "prod-brokers-1", annotations=None)
    assert "annotations" not in pod["metadata"]
    assert await kube.gateway.request_pod_roll(CLUSTER, "prod-brokers-1", pod["metadata"]["uid"])
    assert annotations_of(kube.store, "prod-brokers-1") == {ROLL_ANNOTATION: "true"}


async def test_request_pod_roll_refuses_a_replaced_pod(kube: Kube) -> None:
    """A pod recreated under the same name (new uid) is not annotated: the roll already happened."""
    old_uid = create_pod(kube.store, "prod-brokers-1", annotations={})["metadata"]["uid"]
    kube.store.delete("", "pods", NS, "prod-brokers-1")
    create_pod(kube.store, "prod-brokers-1", annotations={})
    assert await kube.gateway.request_pod_roll(CLUSTER, "prod-brokers-1", old_uid) is False
    assert ROLL_ANNOTATION not in annotations_of(kube.store, "prod-brokers-1")


async def test_request_pod_roll_missing_pod(kube: Kube) -> None:
    """A pod that is gone yields False, not an error."""
    assert await kube.gateway.request_pod_roll(CLUSTER, "prod-brokers-7", "no-such-uid") is False


async def test_request_pod_roll_uid_test_guards_the_write(kube: Kube) -> None:
    """The uid ``test`` inside the patch is what protects the write: a replacement between read and patch loses."""
    old_uid = create_pod(kube.store, "prod-brokers-1", annotations={})["metadata"]["uid"]
    gateway = kube.gateway
    real_read: Any = gateway._resources.read_namespaced_pod
    loop = asyncio.get_running_loop()

    async def replace_pod() -> None:
        kube.store.delete("", "pods", NS, "prod-brokers-1")
        create_pod(kube.store, "prod-brokers-1", annotations={})

    def read_then_replace(*args: Any, **kwargs: Any) -> Any:
        response = real_read(*args, **kwargs)  # the gateway sees the old pod...
        if json.loads(response.data)["metadata"]["uid"] == old_uid:
            # ...which is replaced before the patch (on the loop: the store belongs to it).
            asyncio.run_coroutine_threadsafe(replace_pod(), loop).result(timeout=5)
        return response

    gateway._resources.read_namespaced_pod = read_then_replace  # type: ignore[method-assign]
    assert await gateway.request_pod_roll(CLUSTER, "prod-brokers-1", old_uid) is False
    assert ROLL_ANNOTATION not in annotations_of(kube.store, "prod-brokers-1")


# -- errors ----------------------------------------------------------------------------------


async def test_unreachable_api_server_is_kube_unavailable(tmp_path: Path) -> None:
    """A dead API server surfaces as KubeUnavailable naming the call, with no token in the message."""
    kubeconfig = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:1", namespace=NS, context_name="x")
    gateway = KubeClusterGateway(load_api_client(str(kubeconfig)), connect_timeout=1, read_timeout=2)
    try:
        with pytest.raises(KubeUnavailable) as caught:
            await gateway.broker_pods(CLUSTER)
    finally:
        gateway.close()
    assert "list pods" in str(caught.value)
    assert "kafka-chatops-sandbox" not in str(caught.value)  # the kubeconfig's token


async def test_missing_kubeconfig_is_a_clear_error(tmp_path: Path) -> None:
    """A kubeconfig path that does not exist fails with KubeError naming the path."""
    with pytest.raises(KubeError, match="nope"):
        load_api_client(str(tmp_path / "nope"))


# -- against the sandbox's simulated Strimzi operator ------------------------------------------


@pytest.mark.sandbox
async def test_operator_rolls_the_pod_the_gateway_annotated(sandbox: SandboxInfo) -> None:
    """End to end: the operator replaces the pod the gateway annotated (new uid, Ready); the old uid is refused."""
    cluster = ClusterRef(name=sandbox.name, namespace=sandbox.namespace, kafka=sandbox.cluster)
    gateway = KubeClusterGateway.from_kubeconfig(sandbox.kubeconfig)

    async def settled() -> bool:
        status = await gateway.kafka_status(cluster)
        return status.ready and status.settled and all(p.ready for p in await gateway.broker_pods(cluster))

    try:
        # The sandbox is shared: a test before this one may have left a broker restarting.
        await wait_for(settled, timeout=180, interval=1.0, message="the shared sandbox Ready before the test")
        status = await gateway.kafka_status(cluster)
        assert status.ready and status.settled and not status.paused
        assert status.bootstrap_servers == sandbox.bootstrap_servers
        pods = await gateway.broker_pods(cluster)
        nodes = sorted(sandbox.status()["nodes"], key=lambda n: n["id"])
        assert [(p.node_id, p.name, p.uid) for p in pods] == [(n["id"], n["pod"], n["uid"]) for n in nodes]
        target = pods[1]
        assert await gateway.request_pod_roll(cluster, target.name, target.uid) is True

        async def replaced() -> BrokerPod | None:
            now = {p.name: p for p in await gateway.broker_pods(cluster)}.get(target.name)
            return now if now is not None and now.uid != target.uid and now.ready else None

        # The twin reconciles every few seconds and restarts one JVM: well under a minute on 2 cores.
        new = await wait_for(replaced, timeout=180, interval=1.0, message=f"{target.name} replaced and Ready")
        assert new is not None and new.node_id == target.node_id
        assert await gateway.request_pod_roll(cluster, target.name, target.uid) is False

        # Leave the shared sandbox as we found it.
        await wait_for(settled, timeout=120, interval=1.0, message="the Kafka CR Ready and every broker pod Ready")
    finally:
        gateway.close()
