"""One contract for the ``KafkaRebalances`` port, held by the in-memory fake (``tests.fakes.rebalances``)
and by the real adapter (``bot.kube.rebalances``) against the sandbox's Kubernetes API emulator, which
serves KafkaRebalance from bot/sandbox/strimzi-crds.yaml. No Kafka broker is needed: the emulator runs
alone, and each case plays the operator's part itself (status through ``/status``, the annotation it
acted on removed). List and get by the cluster label, the check-and-write annotate (refused when the
state moved on, when another action is pending, when the resource is gone), the progress ConfigMap."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pytest
from kubernetes import client

from handlers.ports import ClusterRef
from handlers.rebalances import KafkaRebalances, RebalanceGone, RebalanceMoved
from runbooks.rules.rebalance import OptimizationSummary, RebalanceAction, RebalanceState, wants_card
from tests.fakes.rebalances import FakeRebalances
from tests.sandbox.conftest import RunningEmulator

pytestmark = pytest.mark.timeout(60)
GROUP, VERSION, PLURAL = "kafka.strimzi.io", "v1", "kafkarebalances"
RESULT = {"numReplicaMovements": 42, "numLeaderMovements": 7, "dataToMoveMB": 1234,
          "onDemandBalancednessScoreBefore": 71.25, "onDemandBalancednessScoreAfter": 94.5}
SINCE = datetime(2026, 12, 7, 3, 30, tzinfo=UTC)


class World(Protocol):
    """What the operator and the people around the bot do, on either side."""

    port: KafkaRebalances
    ns: str

    def create(self, name: str, *, cluster: str, annotations: dict[str, str] | None = None) -> str: ...

    def move(self, name: str, state: RebalanceState) -> None: ...

    def set_progress(self, name: str, percent: float, eta: float) -> None: ...

    def delete(self, name: str) -> None: ...


class FakeWorld:
    def __init__(self, namespace: str) -> None:
        self.ns = namespace
        self.fake = FakeRebalances()
        self.port: KafkaRebalances = self.fake

    def create(self, name: str, *, cluster: str, annotations: dict[str, str] | None = None) -> str:
        return self.fake.create(self.ns, name, cluster=cluster, mode="remove-brokers", brokers=(3,),
                                annotations=annotations).uid

    def move(self, name: str, state: RebalanceState) -> None:
        self.fake.operator_moves(self.ns, name, state, at=SINCE, optimization=OptimizationSummary.from_status(RESULT))

    def set_progress(self, name: str, percent: float, eta: float) -> None:
        self.fake.set_progress(self.ns, name, percent, eta)

    def delete(self, name: str) -> None:
        self.fake.delete(self.ns, name)


class RealWorld:
    def __init__(self, namespace: str, api: client.ApiClient) -> None:
        from bot.kube.rebalances import KubeRebalances

        async def v1() -> str:
            return VERSION

        self.ns = namespace
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.adapter = KubeRebalances(api, strimzi_version=v1)
        self.port: KafkaRebalances = self.adapter

    def create(self, name: str, *, cluster: str, annotations: dict[str, str] | None = None) -> str:
        metadata: dict[str, Any] = {"name": name, "labels": {"strimzi.io/cluster": cluster}}
        if annotations:
            metadata["annotations"] = annotations
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KafkaRebalance", "metadata": metadata,
                "spec": {"mode": "remove-brokers", "brokers": [3]}}
        created = self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, body)
        return str(created["metadata"]["uid"])

    def move(self, name: str, state: RebalanceState) -> None:
        current = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name)
        if "strimzi.io/rebalance" in (current["metadata"].get("annotations") or {}):
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.ns, PLURAL, name,
                [{"op": "remove", "path": "/metadata/annotations/strimzi.io~1rebalance"}])
        status = {"conditions": [{"type": state.value, "status": "True",
                                  "lastTransitionTime": SINCE.strftime("%Y-%m-%dT%H:%M:%SZ")}],
                  "optimizationResult": RESULT}
        self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, self.ns, PLURAL, name, {"status": status})

    def set_progress(self, name: str, percent: float, eta: float) -> None:
        self.core.create_namespaced_config_map(self.ns, {"metadata": {"name": name}, "data": {
            "completedByteMovementPercentage": str(percent), "estimatedTimeToCompletionInMinutes": str(eta)}})

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name)


@pytest.fixture(scope="module")
def emulator_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.ApiClient]:
    emulator = RunningEmulator().start()
    api = emulator.api_client(Path(tmp_path_factory.mktemp("kube")))
    try:
        yield api
    finally:
        api.close()
        emulator.stop()


@pytest.fixture(params=["fake", "real"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    if request.param == "fake":
        yield FakeWorld(namespace)
        return
    real = RealWorld(namespace, request.getfixturevalue("emulator_api"))
    try:
        yield real
    finally:
        real.adapter.close()


def ref(world: World, cluster: str = "east") -> ClusterRef:
    return ClusterRef(name=cluster, namespace=world.ns, kafka=cluster)


async def test_list_and_get_read_the_clusters_rebalances(world: World) -> None:
    uid = world.create("drain-3", cluster="east")
    world.create("elsewhere", cluster="west")
    world.move("drain-3", RebalanceState.PROPOSAL_READY)
    listed = await world.port.list_rebalances(ref(world))
    assert [r.name for r in listed] == ["drain-3"]
    (found,) = listed
    assert (found.uid, found.cluster_label, found.mode, found.brokers) == (uid, "east", "remove-brokers", (3,))
    assert found.state is RebalanceState.PROPOSAL_READY and found.state_since == SINCE
    assert found.optimization == OptimizationSummary.from_status(RESULT)
    assert found.resource_version and not found.pending_action
    assert await world.port.get_rebalance(ref(world), "drain-3") == found
    assert await world.port.get_rebalance(ref(world), "elsewhere") is None  # another cluster's
    assert await world.port.get_rebalance(ref(world), "missing") is None


async def test_annotate_writes_the_value_in_the_expected_state_only(world: World) -> None:
    uid = world.create("drain-3", cluster="east", annotations={"team": "platform"})
    world.move("drain-3", RebalanceState.PROPOSAL_READY)
    with pytest.raises(RebalanceMoved, match="is now ProposalReady, not Rebalancing"):
        await world.port.annotate(ref(world), "drain-3", RebalanceAction.STOP,
                                  expected_state=RebalanceState.REBALANCING, expected_uid=uid)
    unchanged = await world.port.get_rebalance(ref(world), "drain-3")
    assert unchanged is not None and unchanged.pending_action == ""

    written = await world.port.annotate(ref(world), "drain-3", RebalanceAction.APPROVE,
                                        expected_state=RebalanceState.PROPOSAL_READY, expected_uid=uid)
    assert written.pending_action == "approve"
    assert written.annotations == {"team": "platform", "strimzi.io/rebalance": "approve"}  # no auto-approval
    read = await world.port.get_rebalance(ref(world), "drain-3")
    assert read is not None and read.annotations == written.annotations
    with pytest.raises(RebalanceMoved, match=r"already carries strimzi\.io/rebalance=approve"):
        await world.port.annotate(ref(world), "drain-3", RebalanceAction.REFRESH,
                                  expected_state=RebalanceState.PROPOSAL_READY, expected_uid=uid)


async def test_annotate_a_resource_without_annotations_or_gone(world: World) -> None:
    uid = world.create("drain-3", cluster="east")
    world.move("drain-3", RebalanceState.REBALANCING)
    written = await world.port.annotate(ref(world), "drain-3", RebalanceAction.STOP,
                                        expected_state=RebalanceState.REBALANCING, expected_uid=uid)
    assert written.annotations == {"strimzi.io/rebalance": "stop"}
    with pytest.raises(RebalanceGone):
        await world.port.annotate(ref(world), "drain-3", RebalanceAction.STOP,
                                  expected_state=RebalanceState.REBALANCING, expected_uid="another-uid")
    world.delete("drain-3")
    with pytest.raises(RebalanceGone):
        await world.port.annotate(ref(world), "drain-3", RebalanceAction.STOP,
                                  expected_state=RebalanceState.REBALANCING, expected_uid=uid)


async def test_progress_comes_from_the_configmap_named_after_the_rebalance(world: World) -> None:
    world.create("drain-3", cluster="east")
    world.move("drain-3", RebalanceState.REBALANCING)
    rebalance = await world.port.get_rebalance(ref(world), "drain-3")
    assert rebalance is not None
    assert await world.port.progress(ref(world), rebalance) is None
    world.set_progress("drain-3", 37.5, 12)
    progress = await world.port.progress(ref(world), rebalance)
    assert progress is not None and (progress.completed_percent, progress.eta_minutes) == (37.5, 12)


async def test_create_makes_one_labelled_rebalance_without_annotations(world: World) -> None:
    """What --engine cruise-control creates: mode and brokers, the cluster label and the run's (so no
    rebalance card: the run's card approves it), no annotation (never auto-approval); asked again (a
    resumed run) it returns the same resource; a name another cluster's rebalance holds is refused,
    not taken over."""
    name = "east-kco-r-0000abcd-drain"
    made = await world.port.create_rebalance(ref(world), name, mode="remove-brokers", brokers=(3,),
                                             run_id="r-0000abcd")
    assert (made.name, made.namespace, made.cluster_label, made.run_id) == (name, world.ns, "east", "r-0000abcd")
    assert not wants_card(made.model_copy(update={"state": RebalanceState.PROPOSAL_READY}))  # the run's card asks
    assert (made.mode, made.brokers, made.annotations, made.state) == ("remove-brokers", (3,), {}, None)
    again = await world.port.create_rebalance(ref(world), name, mode="remove-brokers", brokers=(3,),
                                              run_id="r-0000abcd")
    assert again.uid == made.uid and again.run_id == "r-0000abcd"
    listed = await world.port.list_rebalances(ref(world))
    assert [r.run_id for r in listed] == ["r-0000abcd"]
    assert [r.name for r in await world.port.list_rebalances(ref(world))] == [name]
    world.create("taken", cluster="west")
    with pytest.raises(RebalanceMoved, match="exists for cluster west, not east"):
        await world.port.create_rebalance(ref(world), "taken", mode="full")
