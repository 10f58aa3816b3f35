"""The replica-move half of the KafkaAdmin port (layout, throttles, reassignments, progress), held by
the fake (``tests.fakes.FakeStrimzi``, via ``tests.fakes.replicas``) and by the real adapter against
the session sandbox's brokers. Each side gets a topic of its own, RF 2 over three partitions laid out
by hand (0 -> [0, 1], 1 -> [1, 2], 2 -> [2, 0]), with a few MB in partition 0 so a throttled copy
stays in flight; every test leaves the topic as it found it and the cluster without throttles.
Marked ``sandbox`` like the other contract tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from bot.kafka.errors import KafkaUnavailable
from handlers.ports import ClusterRef, KafkaAdmin
from handlers.replica_moves import ReplicaTarget, ReplicationThrottle
from runbooks.rules.reassignment import PartitionMove
from tests.fakes import FakeStrimzi

if TYPE_CHECKING:
    from tests.fixtures.sandbox import SandboxInfo

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]
TOPIC = "contract-moves"
LAYOUT = {0: [0, 1], 1: [1, 2], 2: [2, 0]}
BIG = 3 * 1024 * 1024  # partition 0: more than one follower fetch (replica.fetch.max.bytes, 1 MiB)
SMALL = 3 * 8192  # whole records of 8 KiB: the log holds at least this much
SLOW = 10_000  # bytes/s: the 3 MiB of partition 0 take minutes to copy at this rate


@dataclass
class Cluster:
    ref: ClusterRef
    admin: KafkaAdmin
    bootstrap: str
    # Lets time pass for a move: real time on the sandbox, the fake's clock on the fake.
    wait: Callable[[float], Awaitable[None]]


def _create_real_topic(bootstrap: str) -> None:
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        if TOPIC in admin.list_topics():
            admin.delete_topics([TOPIC])
            time.sleep(2)
        admin.create_topics({TOPIC: {"assignments": LAYOUT}}, wait_for_metadata=True)
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024)
    try:
        record = b"x" * 8192
        for _ in range(BIG // len(record)):
            producer.send(TOPIC, record, partition=0)
        for partition in (1, 2):
            for _ in range(SMALL // len(record)):
                producer.send(TOPIC, record, partition=partition)
        producer.flush(timeout=60)
    finally:
        producer.close()


def _delete_real_topic(bootstrap: str) -> None:
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        admin.delete_topics([TOPIC])
    finally:
        admin.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["fake", "real"])
async def cluster(request: pytest.FixtureRequest) -> AsyncIterator[Cluster]:
    sandbox: SandboxInfo = request.getfixturevalue("sandbox")
    if request.param == "fake":
        fake = FakeStrimzi(sandbox.cluster, version=sandbox.kafka_version, zookeeper=False, brokers=sandbox.brokers)
        fake.create_topic(TOPIC, LAYOUT, {0: BIG, 1: SMALL, 2: SMALL})

        async def advance(seconds: float) -> None:
            fake.advance_moves(seconds)

        yield Cluster(ClusterRef(name=fake.name, namespace="kafka", kafka=fake.name), fake, f"{fake.name}:9092",
                      advance)
        return
    from bot.kafka import KafkaAdminAdapter

    await asyncio.to_thread(_create_real_topic, sandbox.bootstrap_servers)
    admin = KafkaAdminAdapter(request_timeout_ms=5000, call_deadline_s=15)
    try:
        yield Cluster(ClusterRef(name=sandbox.cluster, namespace=sandbox.namespace, kafka=sandbox.cluster), admin,
                      sandbox.bootstrap_servers, asyncio.sleep)
    finally:
        await admin.close()
        await asyncio.to_thread(_delete_real_topic, sandbox.bootstrap_servers)


async def _settled(cluster: Cluster, partition: int, replicas: tuple[int, ...], *, within_s: float = 40.0) -> None:
    """Wait until nothing of ``partition`` is in flight and the metadata shows ``replicas``: the broker
    answering Metadata can list the dropped replica a moment after the controller finished the move."""
    deadline = time.monotonic() + within_s
    while await cluster.admin.reassignments_in_flight(cluster.ref, cluster.bootstrap, [(TOPIC, partition)]) or [
            p.replicas for p in (await cluster.admin.replica_layout(cluster.ref, cluster.bootstrap)).partitions
            if p.topic == TOPIC and p.partition == partition] != [replicas]:
        assert time.monotonic() < deadline, f"{TOPIC}-{partition} not settled at {replicas} after {within_s} s"
        await cluster.wait(0.5)


async def test_the_layout_has_every_broker_and_each_replica_with_its_size(cluster: Cluster) -> None:
    """What the planner needs: brokers alive, replicas in Kafka's order, the leader, and sizes read
    per replica from the brokers' log dirs (the leader's log is what a new replica copies)."""
    layout = await cluster.admin.replica_layout(cluster.ref, cluster.bootstrap)
    assert [(b.id, b.alive) for b in layout.brokers] == [(0, True), (1, True), (2, True)]
    mine = {p.partition: p for p in layout.partitions if p.topic == TOPIC}
    assert {i: list(p.replicas) for i, p in mine.items()} == LAYOUT
    for i, p in mine.items():
        assert p.leader in p.replicas and set(p.isr) == set(p.replicas), p
        assert set(p.sizes) == set(LAYOUT[i]), p
    assert mine[0].size_bytes >= BIG and SMALL <= mine[1].size_bytes < BIG, mine
    request = layout.request(drain=frozenset({2}))
    drained = {p.name: p for p in request.partitions}
    assert drained[f"{TOPIC}-0"].size_bytes == mine[0].size_bytes and request.drain == {2}


async def test_a_replica_moves_to_another_broker_and_back(cluster: Cluster) -> None:
    """AlterPartitionReassignments with a full target; when done, the layout shows the target in its
    order and the new replica holds the data; moving back restores the layout."""
    assert await cluster.admin.submit_reassignments(
        cluster.ref, cluster.bootstrap, [ReplicaTarget(topic=TOPIC, partition=1, replicas=(1, 0))]) == {}
    await _settled(cluster, 1, (1, 0))
    moved = {p.partition: p for p in (await cluster.admin.replica_layout(cluster.ref, cluster.bootstrap)).partitions
             if p.topic == TOPIC}
    assert moved[1].replicas == (1, 0) and set(moved[1].sizes) == {0, 1}, moved[1]
    assert moved[1].sizes[0] == moved[1].sizes[1] >= SMALL, moved[1]
    assert moved[0].replicas == (0, 1) and moved[2].replicas == (2, 0)  # nothing else moved
    progress = await cluster.admin.reassignment_progress(cluster.ref, cluster.bootstrap, [(TOPIC, 1)])
    assert [(p.in_flight, p.bytes_left) for p in progress] == [(False, 0)]

    assert await cluster.admin.submit_reassignments(
        cluster.ref, cluster.bootstrap, [ReplicaTarget(topic=TOPIC, partition=1, replicas=(1, 2))]) == {}
    await _settled(cluster, 1, (1, 2))
    back = {p.partition: p for p in (await cluster.admin.replica_layout(cluster.ref, cluster.bootstrap)).partitions
            if p.topic == TOPIC}
    assert back[1].replicas == (1, 2) and set(back[1].sizes) == {1, 2}, back[1]


async def test_throttles_are_set_on_the_moving_replicas_only_read_back_and_removed(cluster: Cluster) -> None:
    """IncrementalAlterConfigs: rates on the brokers involved, the moving partition's current replicas
    in the leader list and its new replica in the follower list, nothing of other partitions; a
    second set changes nothing, another batch's set adds to the lists (APPEND, not SET); removal
    leaves no throttle anywhere, and removing again is fine."""
    move = PartitionMove(topic=TOPIC, partition=0, old=(0, 1), new=(0, 2), leader=0, size_bytes=BIG)
    throttle = ReplicationThrottle.for_moves([move], SLOW)
    assert throttle.brokers == (0, 1, 2)
    try:
        await cluster.admin.set_replication_throttles(cluster.ref, cluster.bootstrap, throttle)
        await cluster.admin.set_replication_throttles(cluster.ref, cluster.bootstrap, throttle)
        present = await cluster.admin.replication_throttles(cluster.ref, cluster.bootstrap)
        rates = {"leader.replication.throttled.rate": str(SLOW), "follower.replication.throttled.rate": str(SLOW)}
        assert present.brokers == {0: rates, 1: rates, 2: rates}
        assert present.topics == {TOPIC: {"leader.replication.throttled.replicas": "0:0,0:1",
                                          "follower.replication.throttled.replicas": "0:2"}}
        # A second batch of the same topic adds its entries and keeps the first batch's.
        other = PartitionMove(topic=TOPIC, partition=2, old=(2, 0), new=(2, 1), leader=2, size_bytes=SMALL)
        await cluster.admin.set_replication_throttles(cluster.ref, cluster.bootstrap,
                                                      ReplicationThrottle.for_moves([other], SLOW))
        both = await cluster.admin.replication_throttles(cluster.ref, cluster.bootstrap)
        assert both.topics == {TOPIC: {"leader.replication.throttled.replicas": "0:0,0:1,2:0,2:2",
                                       "follower.replication.throttled.replicas": "0:2,2:1"}}
    finally:
        await cluster.admin.remove_replication_throttles(cluster.ref, cluster.bootstrap, [0, 1, 2], [TOPIC])
    assert (await cluster.admin.replication_throttles(cluster.ref, cluster.bootstrap)).empty
    await cluster.admin.remove_replication_throttles(cluster.ref, cluster.bootstrap, [0, 1, 2], [TOPIC])


async def test_a_throttled_move_is_in_flight_with_bytes_left_and_a_cancel_reverts_it(cluster: Cluster) -> None:
    """Under a small follower throttle the 3 MiB copy stays in flight: ListPartitionReassignments shows
    the adding and removing replicas, progress shows bytes left; a cancel (null replicas) puts the
    partition back on its old brokers; a second cancel is harmless."""
    move = PartitionMove(topic=TOPIC, partition=0, old=(0, 1), new=(0, 2), leader=0, size_bytes=BIG)
    await cluster.admin.set_replication_throttles(cluster.ref, cluster.bootstrap, ReplicationThrottle.for_moves(
        [move], SLOW))
    await cluster.wait(1.0)  # every broker has applied the throttle from the metadata log before the move starts
    try:
        assert await cluster.admin.submit_reassignments(
            cluster.ref, cluster.bootstrap, [ReplicaTarget(topic=TOPIC, partition=0, replicas=move.new)]) == {}
        await cluster.wait(2.0)
        flight = await cluster.admin.reassignments_in_flight(cluster.ref, cluster.bootstrap)
        mine = [m for m in flight if m.topic == TOPIC]
        assert [(m.partition, m.adding, m.removing, set(m.replicas)) for m in mine] == [(0, (2,), (1,), {0, 1, 2})]
        [progress] = await cluster.admin.reassignment_progress(cluster.ref, cluster.bootstrap, [(TOPIC, 0)])
        assert progress.in_flight and progress.adding == (2,) and progress.leader_bytes >= BIG, progress
        assert 0 < progress.bytes_left <= progress.leader_bytes, progress
        assert progress.bytes_left == progress.leader_bytes - progress.copied[2]

        assert await cluster.admin.cancel_reassignments(cluster.ref, cluster.bootstrap, [(TOPIC, 0)]) == {}
        await _settled(cluster, 0, (0, 1))
        layout = await cluster.admin.replica_layout(cluster.ref, cluster.bootstrap)
        [p0] = [p for p in layout.partitions if p.topic == TOPIC and p.partition == 0]
        assert p0.replicas == (0, 1), p0
        assert await cluster.admin.cancel_reassignments(cluster.ref, cluster.bootstrap, [(TOPIC, 0)]) == {}
    finally:
        await cluster.admin.cancel_reassignments(cluster.ref, cluster.bootstrap, [(TOPIC, 0)])
        await cluster.admin.remove_replication_throttles(cluster.ref, cluster.bootstrap, [0, 1, 2], [TOPIC])


async def test_bad_targets_are_refused_per_partition_and_change_nothing(cluster: Cluster) -> None:
    """A target on a broker that does not exist is refused by the controller for that partition,
    with its error named; throttling a topic that does not exist raises KafkaUnavailable naming it."""
    refused = await cluster.admin.submit_reassignments(
        cluster.ref, cluster.bootstrap, [ReplicaTarget(topic=TOPIC, partition=2, replicas=(2, 7))])
    assert list(refused) == [f"{TOPIC}-2"] and "InvalidReplicationAssignment" in refused[f"{TOPIC}-2"], refused
    assert await cluster.admin.reassignments_in_flight(cluster.ref, cluster.bootstrap, [(TOPIC, 2)]) == []
    bogus = PartitionMove(topic="no-such-topic", partition=0, old=(0, 1), new=(0, 2), leader=0, size_bytes=1)
    with pytest.raises(KafkaUnavailable, match="no-such-topic"):
        await cluster.admin.set_replication_throttles(cluster.ref, cluster.bootstrap,
                                                      ReplicationThrottle.for_moves([bogus], SLOW))
    await cluster.admin.remove_replication_throttles(cluster.ref, cluster.bootstrap, [0, 1, 2], [])
    assert (await cluster.admin.replication_throttles(cluster.ref, cluster.bootstrap)).empty
