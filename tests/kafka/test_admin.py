"""KafkaAdminAdapter: pure parsing rules, then the real thing against the session sandbox.

The broker tests share the session's sandbox (three dual-role Kafka nodes behind the simulated
Strimzi operator). The kill test waits until the killed broker is back in every ISR before it
ends, so the sandbox is left healthy for whoever comes next.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from bot.kafka import KafkaAdminAdapter, KafkaUnavailable
from bot.kafka.parse import partitions_from, quorum_from, topic_min_isr
from handlers.ports import ClusterRef
from runbooks.rules.health import ClusterSnapshot, offline, under_replicated
from tests.fixtures.waiting import wait_for, wait_until

if TYPE_CHECKING:  # a runtime import would stop pytest from rewriting the plugin's asserts
    from tests.fixtures.sandbox import SandboxInfo


REF = ClusterRef(name="test", namespace="kafka", kafka="test")
ORDERS = "kafka-admin-test-orders"
EVENTS = "kafka-admin-test-events"
# Fencing takes broker.session.timeout.ms (9 s): 30 s down leaves a wide window to observe it.
DOWN_FOR_S = 30


# -- parsing (no broker) ---------------------------------------------------------------------


def test_partitions_carry_reassignment_and_no_leader() -> None:
    """Leader -1 becomes None; adding/removing replicas come from ListPartitionReassignments."""
    topics = [{"name": "t", "partitions": [
        {"partition_index": 1, "leader_id": -1, "replica_nodes": [1, 2], "isr_nodes": []},
        {"partition_index": 0, "leader_id": 1, "replica_nodes": [1, 2, 3, 4], "isr_nodes": [1, 2, 3]},
    ]}]
    moving = {TopicPartition("t", 0): {"replicas": [1, 2, 3, 4], "adding_replicas": [4],
                                       "removing_replicas": [3]}}
    p0, p1 = partitions_from(topics, moving)
    assert (p0.partition, p0.leader, p0.adding, p0.removing, p0.effective_rf) == (0, 1, (4,), (3,), 3)
    assert (p1.partition, p1.leader, p1.adding) == (1, None, ())


def test_quorum_unknown_catch_up_is_none() -> None:
    """A voter that never caught up (-1 on the wire) has last_caught_up_ms None; leader -1 is None."""
    quorum = quorum_from({"topics": [{"topic_name": "__cluster_metadata", "partitions": [{
        "leader_id": -1, "error": None,
        "current_voters": [{"replica_id": 2, "log_end_offset": 5, "last_caught_up_timestamp": -1},
                           {"replica_id": 1, "log_end_offset": 7, "last_caught_up_timestamp": 100}],
    }]}]})
    assert quorum is not None and quorum.leader_id is None
    assert [(v.id, v.last_caught_up_ms) for v in quorum.voters] == [(1, 100), (2, None)]


def test_topic_min_isr_skips_unreadable_values() -> None:
    """Effective min.insync.replicas per topic; a topic without a readable value falls back to the default."""
    described = {"topic": {"a": {"min.insync.replicas": {"value": "3"}}, "b": {}}}
    assert topic_min_isr(described) == {"a": 3}


def _io_threads(client_id: str) -> list[threading.Thread]:
    """kafka-python's per-client I/O threads are named after the client id."""
    return [t for t in threading.enumerate() if client_id in t.name]


async def test_unreachable_bootstrap_is_kafka_unavailable_and_leaks_nothing() -> None:
    """No broker at the bootstrap: KafkaUnavailable in bounded time, and no I/O thread leaked per attempt."""
    adapter = KafkaAdminAdapter(client_id="unreachable-probe", request_timeout_ms=1000, call_deadline_s=2)
    try:
        for _ in range(2):
            with pytest.raises(KafkaUnavailable, match=r"cannot bootstrap from 127\.0\.0\.1:1"):
                await asyncio.wait_for(adapter.snapshot(REF, "127.0.0.1:1"), timeout=10)
        assert _io_threads("unreachable-probe") == []
    finally:
        await adapter.close()


# -- against the session sandbox (3 dual-role nodes behind the simulated Strimzi operator) ----


@pytest.fixture(scope="module")
def cluster(sandbox: SandboxInfo) -> Iterator[SandboxInfo]:
    """The shared sandbox plus this module's topics (names prefixed so no other test minds them)."""
    admin = KafkaAdminClient(bootstrap_servers=sandbox.bootstrap_servers, request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(ORDERS, 3, 3, topic_configs={"min.insync.replicas": "3"}),
            NewTopic(EVENTS, 2, 3),
        ]
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            admin.create_topics(missing)
        # FindCoordinator creates __consumer_offsets: an internal topic for the snapshot to see.
        wait_until(lambda: _describes_group(admin), timeout=60, interval=0.5,
                   message="the group coordinator (__consumer_offsets) exists")
    finally:
        admin.close()
    yield sandbox


def _describes_group(admin: KafkaAdminClient) -> bool:
    try:
        admin.describe_groups(["kafka-admin-test-probe"])
    except Exception:
        return False
    return True


@pytest.fixture
async def adapter() -> AsyncIterator[KafkaAdminAdapter]:
    a = KafkaAdminAdapter(request_timeout_ms=5000, call_deadline_s=15)
    try:
        yield a
    finally:
        await a.close()


def _fully_replicated(snapshot: ClusterSnapshot) -> bool:
    return bool(snapshot.partitions) and all(
        len(p.isr) == len(p.replicas) == 3 for p in snapshot.partitions
    )


@pytest.mark.sandbox
async def test_snapshot_of_a_healthy_cluster(cluster: SandboxInfo, adapter: KafkaAdminAdapter) -> None:
    """Three unfenced brokers, a quorum leader with three caught-up voters, ISR 3/3 and the min ISR per topic."""
    snap = await wait_healthy(adapter, cluster)
    assert [(b.id, b.fenced) for b in snap.brokers] == [(0, False), (1, False), (2, False)]
    assert all(b.host == "127.0.0.1" and b.port > 0 for b in snap.brokers)
    assert snap.quorum is not None and snap.quorum.leader_id in (0, 1, 2)
    assert [v.id for v in snap.quorum.voters] == [0, 1, 2]
    assert all(v.last_caught_up_ms for v in snap.quorum.voters)
    assert snap.controller_id == snap.quorum.leader_id
    topics = {p.topic for p in snap.partitions}
    assert {ORDERS, EVENTS, "__consumer_offsets"} <= topics
    assert len([p for p in snap.partitions if p.topic == ORDERS]) == 3
    assert snap.min_isr[ORDERS] == 3  # the topic's override
    # Without an override a topic's effective value is the broker's default (Strimzi's spec.kafka.config).
    assert snap.min_isr[EVENTS] == snap.default_min_isr == snap.min_isr["__consumer_offsets"]
    assert snap.default_min_isr in (1, 2)
    assert under_replicated(snap) == [] and offline(snap) == []


async def _healthy_snapshot(adapter: KafkaAdminAdapter, cluster: SandboxInfo) -> ClusterSnapshot | None:
    snap = await adapter.snapshot(REF, cluster.bootstrap_servers)
    return snap if _fully_replicated(snap) else None


async def wait_healthy(adapter: KafkaAdminAdapter, cluster: SandboxInfo, within: float = 60) -> ClusterSnapshot:
    snap = await wait_for(lambda: _healthy_snapshot(adapter, cluster), timeout=within, interval=0.5,
                          message="every partition ISR 3/3")
    assert snap is not None
    return snap


@pytest.mark.sandbox
async def test_preferred_election_on_a_balanced_cluster_moves_nothing(
    cluster: SandboxInfo, adapter: KafkaAdminAdapter
) -> None:
    """Every leader already preferred: "election not needed" everywhere is no error, and 0 moved."""
    await wait_healthy(adapter, cluster)
    # An earlier test on the shared sandbox may have restarted a broker, which leaves leaders off their
    # preferred replica until auto.leader.rebalance (5 min): balance first, then elect again.
    await adapter.elect_preferred_leaders(REF, cluster.bootstrap_servers)

    async def balanced() -> bool:
        snap = await adapter.snapshot(REF, cluster.bootstrap_servers)
        return all(p.leader == p.replicas[0] for p in snap.partitions)

    await wait_for(balanced, timeout=30, interval=0.5, message="every leader on its preferred replica")
    assert await adapter.elect_preferred_leaders(REF, cluster.bootstrap_servers) == 0


@pytest.mark.sandbox
async def test_killed_broker_shows_fenced_with_urp_then_election_restores_leaders(
    cluster: SandboxInfo, adapter: KafkaAdminAdapter
) -> None:
    """SIGKILLed quorum leader: fenced or gone, URP > 0, new leader; once back, preferred election moves > 0."""
    before = await wait_healthy(adapter, cluster)
    # The quorum leader is the hardest victim: the quorum fails over as well as the partitions.
    assert before.quorum is not None and before.quorum.leader_id is not None
    victim_id = before.quorum.leader_id
    # SIGKILL; the twin holds the pod down for a while (a crash loop), then Strimzi-style restarts it.
    cluster.cli("kill-broker", str(victim_id), "--down-for", str(DOWN_FOR_S))
    # Until broker.session.timeout.ms (9 s) fences it, the victim is registered and unfenced; the
    # replica layout already calls it not alive, because it does not answer, so a run checking its
    # moves pauses at once instead of after a 25 s read (or never, if the broker is back by then).
    layout = await adapter.replica_layout(REF, cluster.bootstrap_servers)
    early = await adapter.snapshot(REF, cluster.bootstrap_servers)
    assert [b.alive for b in layout.brokers if b.id == victim_id] == [False]
    assert [b.fenced for b in early.brokers if b.id == victim_id] == [False], "the layout was read before fencing"

    async def victim_down() -> ClusterSnapshot | None:
        snap = await adapter.snapshot(REF, cluster.bootstrap_servers)
        gone = victim_id not in snap.live_broker_ids
        return snap if gone and under_replicated(snap) else None

    # Fenced after broker.session.timeout.ms (9 s); out of ISR at the same time in KRaft.
    down = await wait_for(victim_down, timeout=60, interval=0.5, message=f"broker {victim_id} fenced, URP > 0")
    assert down is not None
    snap = down
    assert [b.fenced for b in snap.brokers if b.id == victim_id] in ([True], [])
    assert offline(snap) == []  # RF 3: every partition still has a leader
    assert all(p.leader != victim_id for p in snap.partitions)
    assert snap.quorum is not None and snap.quorum.leader_id not in (None, victim_id)

    await wait_healthy(adapter, cluster, within=DOWN_FOR_S + 120)  # the victim back in every ISR

    moved = await adapter.elect_preferred_leaders(REF, cluster.bootstrap_servers)
    assert moved > 0  # the victim is the preferred leader of some partitions and now leads none

    async def all_preferred() -> bool:
        snap = await adapter.snapshot(REF, cluster.bootstrap_servers)
        return all(p.leader == p.replicas[0] for p in snap.partitions)

    # The controller commits the elections at once; brokers' metadata follows within milliseconds.
    await wait_for(all_preferred, timeout=15, message="every partition led by its preferred replica")
    # Leave the shared sandbox as we found it: the operator marks the Kafka NotReady while a pod
    # crash-loops, until a reconciliation after its return.
    await wait_for(lambda: cluster.status()["ready"], timeout=120, interval=1.0,
                   message="the Kafka resource Ready again")


@pytest.mark.sandbox
async def test_client_is_cached_per_bootstrap_and_closed(cluster: SandboxInfo) -> None:
    """Calls for one bootstrap string share one admin client; close() stops its I/O thread."""
    adapter = KafkaAdminAdapter(client_id="cache-probe")
    try:
        await adapter.snapshot(REF, cluster.bootstrap_servers)
        await adapter.elect_preferred_leaders(REF, cluster.bootstrap_servers)
        await adapter.snapshot(REF, cluster.bootstrap_servers)
        assert len(_io_threads("cache-probe")) == 1
    finally:
        await adapter.close()
    await wait_for(lambda: not _io_threads("cache-probe"), timeout=10, message="the I/O thread stopped")
