"""Committed offsets streamed from ``__consumer_offsets`` against the admin API's (OffsetFetch), on
real brokers, in the two cases tests/alerts/test_offsets_stream.py cannot reach on the session
sandbox: the broker expiring an empty group's offsets, and a stream started from scratch after
Kafka's log cleaner really compacted the topic (commits superseded, a deleted group's commits
gone, its tombstones left).

Both need broker settings the session sandbox does not have, so this module starts one broker of
its own and sets them through ``spec.kafka.config`` as a user would (the operator rolls the broker):
offsets expire one minute (Kafka's minimum) after a group's last commit or after it became empty,
checked every second, and the log cleaner looks for work every 200 ms instead of every 15 s.
``__consumer_offsets`` itself gets the topic settings that let the cleaner act within a second
(segments rolled after 100 ms; ``segment.bytes`` cannot go below 1 MiB in Kafka 4)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.structs import OffsetAndMetadata

from bot.kafka.admin import KafkaAdminAdapter
from bot.kafka.lag import KafkaLagReader
from bot.kafka.lag_stream import StreamingLagReader
from tests.alerts.harness import commit, create_topic, produce
from tests.alerts.test_offsets_stream import agree, caught_up, commits_of, delete_group, stream_and_admin_readers
from tests.fixtures.sandbox import SandboxInfo
from tests.sandbox.cluster_helpers import StrimziCluster

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(240)]

OFFSETS_TOPIC = "__consumer_offsets"
PARTITIONS = 3
RECORDS = 20
RETENTION_S = 60
BROKER_CONFIG = {
    "offsets.retention.minutes": "1",
    "offsets.retention.check.interval.ms": "1000",
    "log.cleaner.backoff.ms": "200",
}
# Kafka rolls a segment when a record arrives more than segment.ms after the segment's first one;
# the cleaner then compacts every segment but the active one once any of it is dirty.
OFFSETS_TOPIC_CONFIG = {"segment.ms": "100", "min.cleanable.dirty.ratio": "0.01", "min.compaction.lag.ms": "0"}


def broker_config(bootstrap: str, keys: list[str]) -> dict[str, str | None]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        found = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "0", dict.fromkeys(keys))],
                                       config_filter="all")
    finally:
        admin.close()
    configs = found["broker"]["0"]
    return {k: configs[k]["value"] if k in configs else None for k in keys}


@pytest.fixture(scope="module")
def expiring_sandbox(sandbox_factory: Callable[..., SandboxInfo]) -> Iterator[SandboxInfo]:
    """One broker with BROKER_CONFIG, stopped when the module ends."""
    info = sandbox_factory(f"offsets-expiry-{secrets.token_hex(2)}", brokers=1)
    try:
        api = info.api_client()
        try:
            cluster = StrimziCluster(api, info.namespace, info.cluster)
            generation = cluster.patch_kafka({"spec": {"kafka": {"config": BROKER_CONFIG}}})
            cluster.wait_reconciled(generation, timeout=120)
        finally:
            api.close()
        effective = broker_config(info.bootstrap_servers, list(BROKER_CONFIG))
        assert effective == BROKER_CONFIG, f"the broker did not take spec.kafka.config: {effective}"
        yield info
    finally:
        info.down()


@pytest.fixture(scope="module")
def topic(expiring_sandbox: SandboxInfo) -> str:
    name = f"expiry-{secrets.token_hex(3)}"
    create_topic(expiring_sandbox.bootstrap_servers, name, partitions=PARTITIONS, replication=1)
    for p in range(PARTITIONS):
        produce(expiring_sandbox.bootstrap_servers, name, RECORDS, partition=p)
    return name


@pytest.fixture
async def readers(expiring_sandbox: SandboxInfo) -> AsyncIterator[tuple[StreamingLagReader, KafkaLagReader]]:
    async with stream_and_admin_readers() as pair:
        yield pair


def member(bootstrap: str, group: str, topic: str) -> KafkaConsumer:
    """A classic consumer that has joined ``group`` and been assigned every partition of ``topic``
    (it stays a member while open: its heartbeats come from a thread of their own)."""
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    deadline = time.monotonic() + 30
    while len(consumer.assignment()) < PARTITIONS:
        if time.monotonic() > deadline:
            consumer.close()
            raise AssertionError(f"{group} was assigned only {consumer.assignment()}")
        consumer.poll(timeout_ms=200, max_records=1)
    return consumer


def commit_as(consumer: KafkaConsumer, topic: str, offsets: dict[int, int]) -> None:
    consumer.commit({TopicPartition(topic, p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()})


async def test_expired_offsets_leave_the_stream_as_they_leave_the_admin_api(
    expiring_sandbox: SandboxInfo, topic: str, readers: tuple[StreamingLagReader, KafkaLagReader],
) -> None:
    """A group that only ever committed through the admin API (no members) and a classic group
    whose consumer committed and left both lose every offset a retention period later: the
    broker writes a tombstone per partition, the running stream drops those pairs, a stream
    started afterwards never shows them, and a group that kept its member keeps its offsets."""
    streaming, admin = readers
    sandbox, bootstrap = expiring_sandbox, expiring_sandbox.bootstrap_servers
    standalone, left, kept = (f"{kind}-{secrets.token_hex(3)}" for kind in ("standalone", "left", "kept"))
    groups = [standalone, left, kept]
    for p in range(PARTITIONS):
        commit(bootstrap, standalone, topic, 3 + p, partition=p)
    leaving = member(bootstrap, left, topic)
    commit_as(leaving, topic, {0: 4, 1: 5})
    leaving.close()  # LeaveGroup: the group is Empty from now on, its offsets expire a retention later
    staying = member(bootstrap, kept, topic)
    try:
        commit_as(staying, topic, {0: 7, 1: 8, 2: 9})
        committed_at = time.monotonic()

        await caught_up(streaming, sandbox)
        before = await agree(streaming, admin, sandbox, groups)
        assert before == {standalone: {topic: {0: 3, 1: 4, 2: 5}}, left: {topic: {0: 4, 1: 5}},
                          kept: {topic: {0: 7, 1: 8, 2: 9}}}

        deadline = committed_at + RETENTION_S + 30  # a retention, then the next 1 s check, then slack
        while True:
            truth = await commits_of(admin, sandbox, groups)
            if truth[standalone] == {} and truth[left] == {}:
                break
            assert time.monotonic() < deadline, (
                f"the broker did not expire the offsets {RETENTION_S + 30} s after the commits: {truth}")
            await asyncio.sleep(1.0)
        after = await agree(streaming, admin, sandbox, groups)
        assert after == {standalone: {}, left: {}, kept: before[kept]}
        state = streaming.streams[sandbox.cluster].state
        assert standalone not in state.offsets and left not in state.offsets, state.offsets
        assert state.group_offsets(kept) == before[kept]
        await agree(streaming, admin, sandbox, sorted(set(state.offsets) | set(groups)))  # every pair it knows

        # A bot starting now replays the commits and then the expiry's tombstones.
        restarted = KafkaAdminAdapter(client_id="test-restart", call_deadline_s=20)
        fresh = StreamingLagReader(KafkaLagReader(restarted))
        try:
            await caught_up(fresh, sandbox)
            assert await agree(fresh, admin, sandbox, groups) == after
            replayed = fresh.streams[sandbox.cluster].state
            assert standalone not in replayed.offsets and left not in replayed.offsets, replayed.offsets
        finally:
            await fresh.close()
            await restarted.close()
    finally:
        staying.close()


def java_string_hash(text: str) -> int:
    """``String.hashCode()`` of an ASCII string (Java hashes UTF-16 units; ASCII has one a character)."""
    assert text.isascii(), text
    value = 0
    for char in text:
        value = (31 * value + ord(char)) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def coordinator_partition(group: str, partitions: int) -> int:
    """The partition of ``__consumer_offsets`` holding ``group`` (Kafka: ``Utils.abs(groupId.hashCode())
    % partitions``, where ``Utils.abs(Integer.MIN_VALUE)`` is 0)."""
    value = java_string_hash(group)
    return (0 if value == -(1 << 31) else abs(value)) % partitions


def offsets_topic_partitions(bootstrap: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, exclude_internal_topics=False)
    try:
        return len(consumer.partitions_for_topic(OFFSETS_TOPIC) or ())
    finally:
        consumer.close()


def alter_offsets_topic(bootstrap: str, configs: dict[str, str]) -> None:
    """IncrementalAlterConfigs: the topic's own settings (cleanup.policy=compact among them) stay."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        result = admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, OFFSETS_TOPIC, configs)],
                                     incremental=True)
    finally:
        admin.close()
    assert result == {"topic": {OFFSETS_TOPIC: "OK"}}, f"altering {OFFSETS_TOPIC} failed: {result}"


def read_partition(bootstrap: str, partition: int) -> tuple[list[tuple[bytes, bytes | None]], int]:
    """Every record left in one partition of ``__consumer_offsets`` (key, value), and its end offset
    (how many offsets were ever written to it)."""
    tp = TopicPartition(OFFSETS_TOPIC, partition)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             exclude_internal_topics=False)
    try:
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        records: list[tuple[bytes, bytes | None]] = []
        deadline = time.monotonic() + 30
        while consumer.position(tp) < end:
            assert time.monotonic() < deadline, f"read {len(records)} records of {tp} by offset {end}"
            for batch in consumer.poll(timeout_ms=500).values():
                records += [(r.key, r.value) for r in batch]
        return records, end
    finally:
        consumer.close()


def group_of(key: bytes) -> str:
    """The group an offset commit key (types 0 and 1: int16 type, int16-length group, ...) is about."""
    length = int.from_bytes(key[2:4], "big")
    return key[4:4 + length].decode() if int.from_bytes(key[:2], "big") in (0, 1) else ""


def end_offsets_sum(bootstrap: str, partitions: int) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, exclude_internal_topics=False)
    try:
        tps = [TopicPartition(OFFSETS_TOPIC, p) for p in range(partitions)]
        return sum(consumer.end_offsets(tps).values())
    finally:
        consumer.close()


async def test_a_stream_started_after_the_log_cleaner_compacted_the_topic_agrees_with_the_admin_api(
    expiring_sandbox: SandboxInfo, topic: str, readers: tuple[StreamingLagReader, KafkaLagReader],
) -> None:
    """The log cleaner compacts ``__consumer_offsets``: a group's superseded commits and a deleted
    group's commits are gone from the log, the deleted group's tombstones stay. A stream replaying
    that log from scratch reads fewer records than were written and still agrees with OffsetFetch
    for every pair."""
    streaming, admin = readers
    sandbox, bootstrap = expiring_sandbox, expiring_sandbox.bootstrap_servers
    churned = f"churned-{secrets.token_hex(3)}"
    churning = member(bootstrap, churned, topic)  # a member: its offsets do not expire during the test
    try:
        partitions = offsets_topic_partitions(bootstrap)  # the group's join created the topic
        assert partitions, f"no {OFFSETS_TOPIC} on the sandbox"
        alter_offsets_topic(bootstrap, OFFSETS_TOPIC_CONFIG)
        # Both groups in one partition of the topic, so the commits after the deletion roll the
        # segment holding the deleted group's records and the cleaner reaches its tombstones.
        target = coordinator_partition(churned, partitions)
        deleted = next(name for name in (f"deleted-{secrets.token_hex(3)}" for _ in range(1000))
                       if coordinator_partition(name, partitions) == target)
        rounds = 60
        for i in range(rounds):  # about 5 ms a commit: the commits span several 100 ms segments
            commit_as(churning, topic, {p: i for p in range(PARTITIONS)})
        for p in range(PARTITIONS):
            commit(bootstrap, deleted, topic, 10 + p, partition=p)
        delete_group(bootstrap, deleted)  # a tombstone for each of its partitions (and its group)
        await asyncio.sleep(0.2)  # past segment.ms: the next commit rolls the segment
        final = {0: RECORDS, 1: RECORDS - 1, 2: RECORDS - 2}
        commit_as(churning, topic, final)

        deadline = time.monotonic() + 45
        while True:
            records, _ = read_partition(bootstrap, target)
            by_group = Counter(group_of(k) for k, _ in records)
            deleted_commits = [v for k, v in records if group_of(k) == deleted and v is not None]
            # The latest commit of each partition stays (not 0: the partition is the groups' own).
            if PARTITIONS <= by_group[churned] < rounds * PARTITIONS and not deleted_commits:
                break
            assert time.monotonic() < deadline, (
                f"the log cleaner did not compact {OFFSETS_TOPIC}-{target} within 45 s: {by_group[churned]} of the "
                f"{(rounds + 1) * PARTITIONS} commits of {churned} left, {len(deleted_commits)} of {deleted}'s")
            await asyncio.sleep(0.5)
        assert by_group[deleted] >= PARTITIONS, "the deleted group's tombstones stay (delete.retention.ms)"

        written = end_offsets_sum(bootstrap, partitions)
        await caught_up(streaming, sandbox)
        truth = await agree(streaming, admin, sandbox, [churned, deleted])
        assert truth == {churned: {topic: final}, deleted: {}}
        state = streaming.streams[sandbox.cluster].state
        assert state.records < written, f"the stream read {state.records} records, {written} were written"
        assert deleted not in state.offsets
        # Every pair the stream knows, whatever group it belongs to, is OffsetFetch's.
        await agree(streaming, admin, sandbox, sorted(state.offsets))
    finally:
        churning.close()
