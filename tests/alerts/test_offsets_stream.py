"""Committed offsets streamed from ``__consumer_offsets`` (``bot.kafka.lag_stream``) against the
admin API's (OffsetFetch through ``KafkaLagReader``), on the session sandbox's real brokers: for
every group and partition, after commits, after DeleteOffsets and DeleteGroups, after a
restart that replays the topic from the beginning (tombstones included), and across an aborted
transaction's offset commit (exactly-once producers), live and replayed. A classic group and a
group on the consumer protocol (KIP-848, a Java consumer with ``group.protocol=consumer``) are
both seen, with their members, while they consume.

Offset expiry and a stream started after the log cleaner compacted the topic need broker and topic
settings this shared sandbox does not have (a one-minute retention checked every second, segments
rolled within a second): tests/alerts/test_offsets_expiry_compaction.py covers them on a broker of
its own."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.structs import OffsetAndMetadata

from bot.kafka.admin import KafkaAdminAdapter
from bot.kafka.lag import KafkaLagReader
from bot.kafka.lag_stream import StreamingLagReader
from bot.sandbox.jars import libs_dir, require_java
from handlers.ports import ClusterRef
from tests.alerts.harness import commit, create_topic, produce
from tests.fixtures.sandbox import SandboxInfo

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(180)]

PARTITIONS = 3
RECORDS = 20


def ref(sandbox: SandboxInfo) -> ClusterRef:
    return ClusterRef(name=sandbox.cluster, namespace=sandbox.namespace, kafka=sandbox.cluster)


@pytest.fixture(scope="module")
def topic(sandbox: SandboxInfo) -> str:
    name = f"stream-{secrets.token_hex(3)}"
    create_topic(sandbox.bootstrap_servers, name, partitions=PARTITIONS)
    for p in range(PARTITIONS):
        produce(sandbox.bootstrap_servers, name, RECORDS, partition=p)
    return name


@asynccontextmanager
async def stream_and_admin_readers() -> AsyncIterator[tuple[StreamingLagReader, KafkaLagReader]]:
    """The streaming reader under test and the admin API's reader it is held to."""
    adapters = [KafkaAdminAdapter(client_id=name, call_deadline_s=20) for name in ("test-admin-truth", "test-stream")]
    admin = KafkaLagReader(adapters[0])
    streaming = StreamingLagReader(KafkaLagReader(adapters[1]), groups_refresh_s=0.0)
    try:
        yield streaming, admin
    finally:
        await streaming.close()
        await admin.close()
        for adapter in adapters:  # the readers close their consumers; the admin clients are the owner's
            await adapter.close()


@pytest.fixture
async def readers(sandbox: SandboxInfo) -> AsyncIterator[tuple[StreamingLagReader, KafkaLagReader]]:
    async with stream_and_admin_readers() as pair:
        yield pair


async def caught_up(reader: StreamingLagReader, sandbox: SandboxInfo, within_s: float = 60) -> None:
    await reader.committed_offsets(ref(sandbox), sandbox.bootstrap_servers, [])  # starts the stream
    deadline = time.monotonic() + within_s
    while not reader.streaming(sandbox.cluster):
        assert time.monotonic() < deadline, f"the stream did not catch up: {reader.source(sandbox.cluster)}"
        await asyncio.sleep(0.2)


async def commits_of(reader: StreamingLagReader | KafkaLagReader, sandbox: SandboxInfo,
                     groups: list[str]) -> dict[str, dict[str, dict[int, int]]]:
    found = await reader.committed_offsets(ref(sandbox), sandbox.bootstrap_servers, groups)
    assert all(c.error is None for c in found), found
    return {c.group: c.offsets for c in found}


async def agree(streaming: StreamingLagReader, admin: KafkaLagReader, sandbox: SandboxInfo, groups: list[str],
                within_s: float = 15) -> dict[str, dict[str, dict[int, int]]]:
    """The stream's offsets equal OffsetFetch's for every group (the stream lags a commit by a
    fetch round trip, so this waits for it); returns them."""
    deadline = time.monotonic() + within_s
    while True:
        truth = await commits_of(admin, sandbox, groups)
        streamed = await commits_of(streaming, sandbox, groups)
        if streamed == truth or time.monotonic() > deadline:
            assert streaming.source(sandbox.cluster) == "stream"
            assert streamed == truth
            return truth
        await asyncio.sleep(0.2)


def delete_offsets(bootstrap: str, group: str, topic: str, partition: int) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_group_offsets(group, [TopicPartition(topic, partition)])
    finally:
        admin.close()


def delete_group(bootstrap: str, group: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_groups([group])
    finally:
        admin.close()


async def test_streamed_offsets_agree_with_the_admin_api_through_commits_deletions_and_a_restart(
    sandbox: SandboxInfo, topic: str, readers: tuple[StreamingLagReader, KafkaLagReader],
) -> None:
    streaming, admin = readers
    bootstrap = sandbox.bootstrap_servers
    kept, trimmed, deleted = (f"{kind}-{secrets.token_hex(3)}" for kind in ("kept", "trimmed", "deleted"))
    for group in (kept, trimmed, deleted):
        for p in range(PARTITIONS):
            commit(bootstrap, group, topic, 5 + p, partition=p)
    groups = [kept, trimmed, deleted]

    assert streaming.source(sandbox.cluster) == "admin (stream not started)"
    await caught_up(streaming, sandbox)
    before = await agree(streaming, admin, sandbox, groups)
    assert before[kept] == {topic: {0: 5, 1: 6, 2: 7}}

    commit(bootstrap, kept, topic, 17, partition=1)  # a new commit replaces the old one
    delete_offsets(bootstrap, trimmed, topic, 2)  # DeleteOffsets: a tombstone for one partition
    delete_group(bootstrap, deleted)  # DeleteGroups: a tombstone for each of its partitions
    after = await agree(streaming, admin, sandbox, groups)
    assert after[kept] == {topic: {0: 5, 1: 17, 2: 7}}
    assert after[trimmed] == {topic: {0: 5, 1: 6}}
    assert after[deleted] == {}

    # A bot restarting mid-stream replays the topic from its start, tombstones included.
    restarted = KafkaAdminAdapter(client_id="test-restart", call_deadline_s=20)
    fresh = StreamingLagReader(KafkaLagReader(restarted))
    try:
        await caught_up(fresh, sandbox)
        assert await agree(fresh, admin, sandbox, groups) == after
    finally:
        await fresh.close()
        await restarted.close()


@pytest.fixture
def kip848_consumer(sandbox: SandboxInfo, topic: str) -> Iterator[str]:
    """A Java consumer on the consumer protocol (KIP-848), consuming ``topic`` and committing every
    200 ms until the test ends."""
    group = f"kip848-{secrets.token_hex(3)}"
    cmd = [require_java(), "-Xmx128m", "-XX:TieredStopAtLevel=1", "-cp", f"{libs_dir(sandbox.kafka_version)}/*",
           "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", sandbox.bootstrap_servers,
           "--topic", topic, "--group", group, "--from-beginning", "--timeout-ms", "120000",
           "--consumer-property", "group.protocol=consumer",
           "--consumer-property", "auto.commit.interval.ms=200"]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield group
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_a_consumer_protocol_group_and_a_classic_group_are_both_seen_with_their_members(
    sandbox: SandboxInfo, topic: str, readers: tuple[StreamingLagReader, KafkaLagReader], kip848_consumer: str,
) -> None:
    streaming, admin = readers
    classic_group = f"classic-{secrets.token_hex(3)}"
    classic = KafkaConsumer(topic, bootstrap_servers=sandbox.bootstrap_servers, group_id=classic_group,
                            auto_offset_reset="earliest", enable_auto_commit=False)
    try:
        await caught_up(streaming, sandbox)
        consumed = 0
        deadline = time.monotonic() + 60
        while consumed < PARTITIONS * RECORDS:
            assert time.monotonic() < deadline, f"the classic consumer read {consumed} records"
            consumed += sum(len(r) for r in classic.poll(timeout_ms=500).values())
        classic.commit()
        wanted = {topic: {p: RECORDS for p in range(PARTITIONS)}}
        deadline = time.monotonic() + 60
        while True:  # the Java consumer starts, joins, reads everything and commits
            groups = {g.group: g for g in await streaming.consumer_groups(ref(sandbox), sandbox.bootstrap_servers)}
            streamed = await commits_of(streaming, sandbox, [kip848_consumer, classic_group])
            members = {name: len(groups[name].members) if name in groups else 0
                       for name in (kip848_consumer, classic_group)}
            if all(streamed[g] == wanted for g in streamed) and all(members.values()):
                break
            assert time.monotonic() < deadline, f"not seen: offsets {streamed}, members {members}"
            await asyncio.sleep(0.5)
        assert groups[kip848_consumer].protocol_type == "consumer"
        assert kip848_consumer in streaming.streams[sandbox.cluster].state.consumer_protocol
        assert classic_group not in streaming.streams[sandbox.cluster].state.consumer_protocol
        assert await commits_of(admin, sandbox, [kip848_consumer, classic_group]) == streamed
    finally:
        classic.close()


def transactional_commit(bootstrap: str, group: str, topic: str, offset: int, *, abort: bool) -> None:
    """An exactly-once producer's offset commit (TxnOffsetCommit), its transaction then committed or aborted."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"txn-{secrets.token_hex(3)}")
    try:
        producer.init_transactions()
        producer.begin_transaction()
        producer.send_offsets_to_transaction({TopicPartition(topic, 0): OffsetAndMetadata(offset, "", -1)}, group)
        if abort:
            producer.abort_transaction()
        else:
            producer.commit_transaction()
    finally:
        producer.close()


async def test_an_aborted_transactions_offset_commit_never_counts_live_or_replayed(
    sandbox: SandboxInfo, topic: str, readers: tuple[StreamingLagReader, KafkaLagReader],
) -> None:
    """``read_committed``: the stream skips the records of an aborted transaction up to its abort
    marker. The aborted commit comes after a committed one, so a stream that applied it would show
    its offset instead of the committed one."""
    streaming, admin = readers
    bootstrap = sandbox.bootstrap_servers
    group = f"txn-{secrets.token_hex(3)}"
    await caught_up(streaming, sandbox)
    transactional_commit(bootstrap, group, topic, 11, abort=False)
    transactional_commit(bootstrap, group, topic, 4, abort=True)
    # The same group's next commit lands after the abort marker in the same partition of
    # __consumer_offsets: once the stream shows it, the stream has read past the aborted commit.
    commit(bootstrap, group, topic, 2, partition=1)
    assert await agree(streaming, admin, sandbox, [group]) == {group: {topic: {0: 11, 1: 2}}}

    restarted = KafkaAdminAdapter(client_id="test-txn-restart", call_deadline_s=20)
    fresh = StreamingLagReader(KafkaLagReader(restarted))  # a replay from the start meets the same abort
    try:
        await caught_up(fresh, sandbox)
        assert await agree(fresh, admin, sandbox, [group]) == {group: {topic: {0: 11, 1: 2}}}
    finally:
        await fresh.close()
        await restarted.close()
