"""One contract for the cluster ports (ClusterGateway, KafkaAdmin), held by the in-memory fake
(``tests.fakes.FakeStrimzi``) and by the real adapters against the session sandbox (real Kafka
brokers, the Kubernetes API emulator). Read-only checks plus refused writes (a pod roll for a uid
the pod no longer has, a spec patch at a stale generation), so the shared sandbox is left as found.
Marked ``sandbox``: ``make test`` runs them, ``make test-fast`` does not (the fake's side of each
case is still in the id, ``[fake]``, and runs wherever the sandbox does)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from handlers.ports import ClusterGateway, ClusterRef, KafkaAdmin, KafkaSpecEdit, PatchRejected
from runbooks.rules.health import under_replicated
from runbooks.rules.node_pools import NodePool
from tests.fakes import FakeStrimzi

if TYPE_CHECKING:
    from tests.fixtures.sandbox import SandboxInfo

# The real adapters live on the module's event loop (the Kafka admin client is cached per loop).
pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(180), pytest.mark.asyncio(loop_scope="module")]
THREADS = "num.io.threads"


@dataclass
class Cluster:
    ref: ClusterRef
    gateway: ClusterGateway
    admin: KafkaAdmin
    bootstrap: str
    brokers: int
    version: str


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["fake", "real"])
async def cluster(request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    sandbox: SandboxInfo = request.getfixturevalue("sandbox")
    if request.param == "fake":
        fake = FakeStrimzi(sandbox.cluster, version=sandbox.kafka_version, zookeeper=False, brokers=sandbox.brokers)
        fake.add_pool("dual-role", ("controller", "broker"), list(range(sandbox.brokers)))  # the sandbox's pool
        ref = ClusterRef(name=fake.name, namespace="kafka", kafka=fake.name)
        yield Cluster(ref, fake, fake, f"{fake.name}:9092", sandbox.brokers, sandbox.kafka_version)
        return
    from bot.kafka import KafkaAdminAdapter
    from bot.kube import KubeClusterGateway

    api = sandbox.api_client()
    admin = KafkaAdminAdapter(request_timeout_ms=5000, call_deadline_s=15)
    try:
        yield Cluster(ClusterRef(name=sandbox.cluster, namespace=sandbox.namespace, kafka=sandbox.cluster),
                      KubeClusterGateway(api), admin, sandbox.bootstrap_servers, sandbox.brokers, sandbox.kafka_version)
    finally:
        await admin.close()
        api.close()


async def test_a_healthy_cluster_is_ready_settled_on_its_version(cluster: Cluster) -> None:
    status = await cluster.gateway.kafka_status(cluster.ref)
    assert status.ready and status.settled, status
    assert status.kafka_version == status.spec_kafka_version == cluster.version
    assert status.metadata_version and status.bootstrap_servers
    pods = await cluster.gateway.broker_pods(cluster.ref)
    assert sorted(p.node_id for p in pods) == list(range(cluster.brokers))
    assert all(p.ready and not p.terminating and p.kafka_version == cluster.version for p in pods), pods
    assert len({p.uid for p in pods}) == len({p.name for p in pods}) == cluster.brokers


async def test_the_snapshot_sees_every_broker_a_controller_and_no_under_replication(cluster: Cluster) -> None:
    pods = await cluster.gateway.broker_pods(cluster.ref)
    snap = await cluster.admin.snapshot(cluster.ref, cluster.bootstrap)
    assert sorted(b.id for b in snap.brokers) == sorted(p.node_id for p in pods)
    assert snap.controller_id in {b.id for b in snap.brokers}
    assert snap.quorum is not None and snap.quorum.leader_id in {b.id for b in snap.brokers}
    assert under_replicated(snap) == []


async def test_a_thread_pool_resize_is_judged_as_a_broker_judges_it(cluster: Cluster) -> None:
    """Kafka's DynamicThreadPool: at most double (or half) the current size at a time; validate-only
    changes nothing."""
    current = await cluster.admin.describe_broker_configs(cluster.ref, cluster.bootstrap, [0], [THREADS])
    entry = current[0][THREADS]
    assert entry.value is not None and entry.value.isdigit() and not entry.read_only, entry
    now = int(entry.value)
    verdicts = await cluster.admin.validate_broker_configs(cluster.ref, cluster.bootstrap, [0, 1],
                                                           {THREADS: str(now * 2 + 1)})
    assert set(verdicts) == {0, 1}
    said = f"value should not be greater than double the current value {now}"
    assert all(v is not None and said in v for v in verdicts.values()), verdicts
    assert (await cluster.admin.validate_broker_configs(cluster.ref, cluster.bootstrap, [0],
                                                        {THREADS: str(now * 2)})) == {0: None}
    after = await cluster.admin.describe_broker_configs(cluster.ref, cluster.bootstrap, [0], [THREADS])
    assert after[0][THREADS].value == entry.value


async def test_a_roll_for_a_replaced_pod_and_a_patch_at_a_stale_generation_change_nothing(cluster: Cluster) -> None:
    """The preconditions that keep a retried step from acting twice: a pod roll only for the uid the
    step saw, a spec patch only at the generation the plan saw."""
    pods = await cluster.gateway.broker_pods(cluster.ref)
    pod = pods[0]
    assert not await cluster.gateway.request_pod_roll(cluster.ref, pod.name, f"{pod.uid}-replaced")
    assert not await cluster.gateway.request_pod_roll(cluster.ref, f"{cluster.ref.name}-nosuchpod-9", pod.uid)
    status = await cluster.gateway.kafka_status(cluster.ref)
    with pytest.raises(PatchRejected):
        await cluster.gateway.patch_kafka_spec(
            cluster.ref, [KafkaSpecEdit(path=("config", "log.retention.ms"), value=3600000)],
            expected_generation=status.generation - 1)
    with pytest.raises(PatchRejected):
        await cluster.gateway.patch_kafka_spec(
            cluster.ref, [KafkaSpecEdit(path=("config", "log.retention.ms"), value=3600000)],
            expect=[KafkaSpecEdit(path=("version",), value="0.0.1")])
    after = await cluster.gateway.kafka_status(cluster.ref)
    assert after.generation == status.generation and after.spec == status.spec
    assert [(p.name, p.uid) for p in await cluster.gateway.broker_pods(cluster.ref)] == [(p.name, p.uid) for p in pods]


def pool_shape(pools: list[NodePool]) -> list[tuple[str, frozenset[str], int, tuple[int, ...]]]:
    return [(p.name, frozenset(p.roles), p.replicas, p.node_ids) for p in pools]


async def test_node_pools_are_listed_with_their_roles_replicas_and_node_ids(cluster: Cluster) -> None:
    pools = await cluster.gateway.node_pools(cluster.ref)
    assert pool_shape(pools) == [("dual-role", frozenset({"controller", "broker"}), cluster.brokers,
                                  tuple(range(cluster.brokers)))]


async def test_a_node_pool_patch_at_a_stale_replica_count_is_refused_and_changes_nothing(cluster: Cluster) -> None:
    before = await cluster.gateway.node_pools(cluster.ref)
    with pytest.raises(PatchRejected):
        await cluster.gateway.patch_node_pool(cluster.ref, "dual-role", replicas=cluster.brokers + 1,
                                              expected_replicas=cluster.brokers + 5,
                                              annotations={"strimzi.io/next-node-ids": "[10]"})
    after = await cluster.gateway.node_pools(cluster.ref)
    assert after == before


async def test_a_pod_and_pvc_replacement_for_a_stale_uid_changes_nothing(cluster: Cluster) -> None:
    pods = await cluster.gateway.broker_pods(cluster.ref)
    assert await cluster.gateway.request_pod_and_pvc_replacement(cluster.ref, pods[0].name, "not-its-uid") is False
    assert await cluster.gateway.request_pod_and_pvc_replacement(cluster.ref, "no-such-pod", pods[0].uid) is False
    assert [(p.name, p.uid) for p in await cluster.gateway.broker_pods(cluster.ref)] == [(p.name, p.uid) for p in pods]
