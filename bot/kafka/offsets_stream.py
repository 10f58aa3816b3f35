"""Committed offsets by streaming ``__consumer_offsets`` (Burrow's design; issue #17 §1): one
``AIOKafkaConsumer`` per cluster, assigned every partition of the topic, reads it from the
beginning, then follows it. Every commit, deletion and expiry the group coordinators make is a
record there, so the bot knows every group's committed offsets without asking any coordinator.

State, in memory: ``offsets[group][topic][partition] = offset`` (plain dicts of ints, the names
interned: one dict slot and one int per group-partition, about 80 bytes a pair), which groups are
on the consumer protocol (KIP-848) as seen from their records, and each live offset key's bytes
pointing at its partitions' dict (about 120 bytes a pair more: a commit of a known group-partition
then costs a dict lookup and two struct reads instead of a decode), and when each group's offsets
last changed (so a lag evaluation skips the groups that only committed where they already were).

- The topic is read with ``read_committed``: a transactional commit (exactly-once producers commit
  offsets inside their transaction) counts once its transaction commits, as OffsetFetch shows it.
- An offset tombstone deletes that group-partition: DeleteGroups, DeleteOffsets and the expiry of
  an empty group's offsets all write one per partition. A group metadata tombstone alone does not
  delete offsets: Kafka writes one when it converts a classic group to the consumer protocol
  (KIP-848's online upgrade) and the offsets stay.
- ``caught_up`` turns true once the consumer has reached, on every partition of the topic, the end
  offsets read when it started: before that the state is a replay in progress (minutes on a busy
  cluster, docs/kafka-ops.md §1.2) and the lag reader keeps using the admin API.
- Any failure (the bot may not read the internal topic: an ACL, a managed Kafka; the topic does
  not exist yet; the cluster is down) ends the stream: ``failure`` says why, the lag reader falls
  back to the admin API, and the stream starts again from the beginning after ``retry_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.client import AIOKafkaClient

from bot.kafka.client_security import PLAINTEXT_SECURITY, KafkaClientSecurity
from bot.kafka.offsets_topic import GroupRecord, OffsetCommit, UnknownRecord, decode

log = logging.getLogger(__name__)

OFFSETS_TOPIC = "__consumer_offsets"
_I32, _I64 = struct.Struct(">i"), struct.Struct(">q")
BATCH_RECORDS = 20_000


class OffsetsState:
    """What the stream knows: every group's committed offsets, and the groups on the consumer protocol."""

    __slots__ = ("_known", "_slots", "changed", "classic_protocols", "consumer_protocol", "names", "offsets", "records",
                 "skipped")

    def __init__(self) -> None:
        self.offsets: dict[str, dict[str, dict[int, int]]] = {}
        self.consumer_protocol: set[str] = set()
        self.classic_protocols: dict[str, str] = {}  # classic group -> its protocol type (consumer, connect, ...)
        self.names: dict[str, str] = {}
        self.records = 0
        self.skipped = 0  # records of a version this decoder does not know, or cut short
        # When each group's offsets last changed (the record count then): a reader hands back what
        # it built before for a group that has not changed since (``StreamingLagReader``).
        self.changed: dict[str, int] = {}
        # An offset key -> its group-topic's partitions dict and the group (one tuple per group-topic).
        self._known: dict[bytes, tuple[dict[int, int], str]] = {}
        self._slots: dict[tuple[str, str], tuple[dict[int, int], str]] = {}

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        self.records += 1
        # The hot path: a commit of a group-partition seen before. Its key bytes are the same every
        # time, so they lead straight to the partition's dict; the offset is the int64 after the
        # value's version in every known version (0..4).
        if value is not None and key is not None and len(value) >= 10 and value[0] == 0 and value[1] <= 4:
            known = self._known.get(key)
            if known is not None:
                partitions, group = known
                partition, offset = _I32.unpack_from(key, len(key) - 4)[0], _I64.unpack_from(value, 2)[0]
                if partitions.get(partition) != offset:  # a group committing where it was changes nothing
                    partitions[partition] = offset
                    self.changed[group] = self.records
                return
        try:
            record = decode(key, value, self.names)
        except (UnknownRecord, struct.error, IndexError, UnicodeDecodeError):
            self.skipped += 1
            return
        if isinstance(record, OffsetCommit):
            if record.offset is not None:
                topics = self.offsets.get(record.group)
                if topics is None:
                    topics = self.offsets[record.group] = {}
                slot = self._slots.get((record.group, record.topic))
                if slot is None:
                    slot = (topics.setdefault(record.topic, {}), record.group)
                    self._slots[(record.group, record.topic)] = slot
                slot[0][record.partition] = record.offset
                self.changed[record.group] = self.records
                if key is not None:
                    self._known[key] = slot
                return
            if key is not None:
                self._known.pop(key, None)
            topics = self.offsets.get(record.group)
            left = topics.get(record.topic) if topics is not None else None
            if left is None or topics is None:
                return
            left.pop(record.partition, None)
            self.changed[record.group] = self.records
            if not left:
                del topics[record.topic]
                self._slots.pop((record.group, record.topic), None)
                if not topics:
                    del self.offsets[record.group]
                    del self.changed[record.group]  # a version the readers never saw (0) stands for "gone"
        elif isinstance(record, GroupRecord) and record.consumer_protocol:
            if record.protocol_type is None:
                self.consumer_protocol.discard(record.group)
            else:
                self.consumer_protocol.add(record.group)
        elif isinstance(record, GroupRecord):
            if record.protocol_type is None:
                self.classic_protocols.pop(record.group, None)
            else:
                self.classic_protocols[record.group] = record.protocol_type

    def protocol_type(self, group: str) -> str:
        """As ListGroups says it: "consumer" for a group with members' metadata, "" for one that only
        commits offsets (no group metadata record at all), or the classic group's own type."""
        if group in self.consumer_protocol:
            return "consumer"
        return self.classic_protocols.get(group, "")

    def group_offsets(self, group: str) -> dict[str, dict[int, int]]:
        """A copy: the stream keeps changing the state between a poll's awaits."""
        return {topic: dict(partitions) for topic, partitions in self.offsets.get(group, {}).items()}

    def pairs(self) -> int:
        return sum(len(p) for topics in self.offsets.values() for p in topics.values())


class OffsetsStream:
    """One cluster's stream; ``start()`` it, read ``state`` once ``caught_up``, ``stop()`` it."""

    def __init__(self, bootstrap: str, *, client_id: str = "kafka-chatops-offsets", retry_s: float = 300.0,
                 security: KafkaClientSecurity = PLAINTEXT_SECURITY) -> None:
        self.bootstrap = bootstrap
        self.security = security
        self._client_id = client_id
        self._retry_s = retry_s
        self._config = security.aiokafka_config()
        self.state = OffsetsState()
        self.caught_up = False
        self.failure: str | None = None
        self.started_at: float | None = None
        self.caught_up_after_s: float | None = None  # how long the replay took
        self._task: asyncio.Task[None] | None = None
        self._consumer: AIOKafkaConsumer | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"offsets-stream {self.bootstrap}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.caught_up = False

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failure = f"{type(exc).__name__}: {exc}"[:300]
                self.caught_up = False
                log.warning("streaming %s from %s failed (%s): committed offsets come from the admin API; "
                            "trying again in %.0f s", OFFSETS_TOPIC, self.bootstrap, self.failure, self._retry_s)
            await asyncio.sleep(self._retry_s)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, client_id=self._client_id, group_id=None, enable_auto_commit=False,
            isolation_level="read_committed", auto_offset_reset="earliest", max_partition_fetch_bytes=1 << 20,
            exclude_internal_topics=False,
            request_timeout_ms=15_000, **self._config,
        )
        await consumer.start()
        try:
            await self._read(consumer)
        finally:
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def _partitions(self) -> set[int] | None:
        """The topic's partitions, from a metadata request of every topic (the consumer's own
        metadata only covers what it is assigned, and hides internal topics)."""
        client = AIOKafkaClient(bootstrap_servers=self.bootstrap, client_id=self._client_id, **self._config)
        try:
            await client.bootstrap()
            metadata = await client.fetch_all_metadata()
            partitions = metadata.partitions_for_topic(OFFSETS_TOPIC)
            return set(partitions) if partitions else None
        finally:
            with contextlib.suppress(Exception):
                await client.close()

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        partitions = await self._partitions()
        if not partitions:
            raise LookupError(f"no {OFFSETS_TOPIC} topic visible to the bot (not created yet, or no Describe ACL)")
        tps = [TopicPartition(OFFSETS_TOPIC, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        targets = await consumer.end_offsets(tps)  # read_committed: the last stable offsets
        state, started = OffsetsState(), time.monotonic()
        self.started_at, self.caught_up = started, False
        pending = {tp for tp in tps if targets.get(tp, 0) > 0}
        while True:
            batch = await consumer.getmany(timeout_ms=500, max_records=BATCH_RECORDS)
            for records in batch.values():
                for record in records:
                    state.apply(record.key, record.value)
            if pending:
                for tp in list(pending):
                    if await consumer.position(tp) >= targets[tp]:
                        pending.discard(tp)
            if not pending and not self.caught_up:
                self.state, self.caught_up, self.failure = state, True, None
                self.caught_up_after_s = time.monotonic() - started
                log.info("%s of %s replayed in %.1f s: %d records, %d group-partitions", OFFSETS_TOPIC,
                         self.bootstrap, self.caught_up_after_s, state.records, state.pairs())
