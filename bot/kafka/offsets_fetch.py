"""Following ``__consumer_offsets`` with Fetch requests on aiokafka's client, each record batch
handed whole to ``OffsetsState.apply_batch`` (issue #17 §3, steady CPU).

aiokafka's consumer turns every record into a ``ConsumerRecord`` (eleven fields and a headers
tuple) before the caller sees it: at 100,000 commits a second that and our work took 20 % of a
core or more, against 5 % here (BENCHMARKS.md, "Reading `__consumer_offsets`"). Here a batch is
read by aiokafka's own record-batch reader (its C extension) and each record's key and value go
straight to the state. What the consumer did for us, this does too:

- one Fetch per partition leader, every leader on its own loop, so a broker with nothing new
  (it answers after ``max_wait_ms``) does not hold up the others;
- ``read_committed``: the broker returns records up to the last stable offset and lists the
  aborted transactions; batches of an aborted transaction are skipped until its abort marker, and
  control batches always are (transactional offset commits count once committed, as OffsetFetch
  shows them);
- every batch's CRC is checked;
- a batch may begin before the fetch offset: its earlier records are skipped. The position moves
  to the batch's next offset even when compaction emptied the batch's end;
- a partition whose leader moved: the metadata is read again and the loops regrouped, the
  positions kept; a partition without a leader for now is looked at again every
  ``leaderless_recheck_s`` while the others go on;
- a position out of range (the log start moved past it): that partition starts again at its log
  start, as the consumer's ``auto_offset_reset="earliest"`` did.

Caught up means: every partition's position has reached the last stable offset its first answer
gave (the end of the topic when the stream started). ``silent(for_s)`` names the partitions no
Fetch has answered for that long (a leader that hangs, or leaders that keep moving): their groups'
commits would look frozen, so the stream does not count as caught up meanwhile
(``bot.kafka.offsets_stream``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import CorruptRecordException, KafkaError, for_code
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.protocol.offset import OffsetRequest
from aiokafka.record.control_record import ABORT_MARKER, ControlRecord
from aiokafka.record.default_records import DefaultRecordBatch
from aiokafka.record.memory_records import MemoryRecords

from bot.kafka.offsets_state import OffsetsState

log = logging.getLogger(__name__)

OFFSETS_TOPIC = "__consumer_offsets"
READ_COMMITTED = 1
EARLIEST = -2
OUT_OF_RANGE = 1
# The partition's leader moved, is being elected, or the broker does not know the partition yet
# (fresh metadata): NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION,
# REPLICA_NOT_AVAILABLE, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH, OFFSET_NOT_AVAILABLE, KAFKA_STORAGE_ERROR.
LEADERSHIP_ERRORS = frozenset({6, 5, 3, 9, 74, 75, 78, 56})
REGROUP_BACKOFF_S = 0.5


class LeadershipMoved(Exception):
    """A leader loop's partitions need fresh metadata: the follower regroups."""


class OffsetsTopicFollower:
    """Reads every partition of ``__consumer_offsets`` from ``positions`` onwards, for ever; raises on
    what it cannot get past (the caller's stream starts again later). An answer is held whole while
    it is applied, one per leader at a time: ``response_bytes`` bounds what a replay holds (a broker
    still answers a batch larger than that, whole)."""

    def __init__(self, client: AIOKafkaClient, state: OffsetsState, partitions: set[int], *,
                 max_wait_ms: int = 500, min_bytes: int = 64 << 10, partition_bytes: int = 256 << 10,
                 response_bytes: int = 1 << 20,
                 leaderless_recheck_s: float = 5.0, on_progress: Callable[[], None] = lambda: None) -> None:
        self._client = client
        self._state = state
        self.positions: dict[int, int] = dict.fromkeys(sorted(partitions), 0)
        self.targets: dict[int, int] = {}  # the last stable offset of each partition's first answer
        self._max_wait_ms = max_wait_ms
        # The broker answers once it has this much, or after max_wait: under load an answer carries
        # hundreds of commits instead of one group's, and the fixed cost of an answer (its parsing,
        # every partition's fields, the event loop) was most of the stream's CPU (BENCHMARKS.md).
        self._min_bytes = min_bytes
        self._partition_bytes = partition_bytes
        self._response_bytes = response_bytes
        self._on_progress = on_progress
        self._leaderless_recheck_s = leaderless_recheck_s
        started = time.monotonic()
        self.answered: dict[int, float] = dict.fromkeys(self.positions, started)  # when a Fetch last answered

    def silent(self, for_s: float) -> list[int]:
        """The partitions no Fetch has answered for ``for_s`` seconds."""
        since = time.monotonic() - for_s
        return [p for p, at in self.answered.items() if at < since]

    @property
    def caught_up(self) -> bool:
        if len(self.targets) < len(self.positions):
            return False
        return all(self.positions[p] >= target for p, target in self.targets.items())

    async def run(self) -> None:
        while True:
            metadata = await self._client.fetch_all_metadata()
            by_leader: dict[int, list[int]] = defaultdict(list)
            leaderless = False
            for partition in self.positions:
                leader = metadata.leader_for_partition(TopicPartition(OFFSETS_TOPIC, partition))
                if leader is None or leader < 0:  # its election is under way: the others go on meanwhile
                    leaderless = True
                else:
                    by_leader[leader].append(partition)
            loops = [asyncio.create_task(self._follow_leader(leader, partitions))
                     for leader, partitions in by_leader.items()]
            try:
                if loops:
                    await asyncio.wait(loops, timeout=self._leaderless_recheck_s if leaderless else None,
                                       return_when=asyncio.FIRST_COMPLETED)
            finally:
                for loop in loops:
                    loop.cancel()
                for loop in loops:  # a loop's own failure, other than a leader that moved, ends the follower here
                    with contextlib.suppress(asyncio.CancelledError, LeadershipMoved):
                        await loop
            await asyncio.sleep(REGROUP_BACKOFF_S)

    async def _follow_leader(self, leader: int, partitions: list[int]) -> None:
        while True:
            request = FetchRequest(self._max_wait_ms, self._min_bytes, self._response_bytes, READ_COMMITTED, [
                (OFFSETS_TOPIC, [(p, self.positions[p], self._partition_bytes) for p in partitions])])
            try:
                response = await self._client.send(leader, request)
            except KafkaError as exc:  # the broker went away: its partitions' leaders are asked again
                raise LeadershipMoved(f"Fetch from broker {leader}: {type(exc).__name__}") from exc
            answered_at = time.monotonic()
            reset: list[int] = []
            for _, answers in response.topics:
                for partition, error_code, _highwater, *rest in answers:
                    if error_code == OUT_OF_RANGE:
                        reset.append(partition)
                        continue
                    if error_code in LEADERSHIP_ERRORS:
                        raise LeadershipMoved(f"partition {partition}: error {error_code}")
                    if error_code != 0:
                        raise for_code(error_code)(f"Fetch {OFFSETS_TOPIC}-{partition} from broker {leader}")
                    self.targets.setdefault(partition, rest[0])  # the last stable offset, in every version >= 4
                    # v4: [lso, aborted, records]; v5..v10: [lso, log start, aborted, records]; v11 adds the
                    # preferred read replica before the records.
                    aborted = rest[2] if response.API_VERSION >= 11 else rest[-2]
                    self.positions[partition] = apply_fetched(self._state, rest[-1], aborted, self.positions[partition])
                    self.answered[partition] = answered_at
            if reset:
                await self._restart_at_log_start(leader, reset)
            self._on_progress()

    async def _restart_at_log_start(self, leader: int, partitions: list[int]) -> None:
        response = await self._client.send(leader, OffsetRequest(
            -1, READ_COMMITTED, [(OFFSETS_TOPIC, [(p, EARLIEST) for p in partitions])]))
        for _, answers in response.topics:
            for partition, error_code, *rest in answers:
                if error_code in LEADERSHIP_ERRORS:
                    raise LeadershipMoved(f"partition {partition}: error {error_code}")
                if error_code != 0:
                    raise for_code(error_code)(f"ListOffsets {OFFSETS_TOPIC}-{partition} from broker {leader}")
                start = rest[1] if response.API_VERSION >= 1 else rest[0][0]
                log.warning("%s-%d: position %d is out of range, reading again from the log start %d",
                            OFFSETS_TOPIC, partition, self.positions[partition], start)
                self.positions[partition] = start


def apply_fetched(state: OffsetsState, data: bytes | None, aborted: list[Any] | None, position: int) -> int:
    """One partition's records of a Fetch answer (``read_committed``) into ``state``, from
    ``position`` on; returns the position after them. ``aborted``: the answer's aborted transactions,
    (producer id, first offset) pairs."""
    if not data:
        return position
    records = MemoryRecords(data)
    pending_aborts = sorted(aborted or [], key=lambda a: a[1])
    aborted_producers: set[int] = set()
    while records.has_next():
        batch = records.next_batch()
        if batch is None:  # the answer ended inside a batch: the next fetch reads it whole
            break
        if not batch.validate_crc():
            raise CorruptRecordException(f"{OFFSETS_TOPIC}: a batch's CRC does not match at offset {position}")
        if not isinstance(batch, DefaultRecordBatch):  # the old message formats (v0, v1)
            for record in batch:
                if record.offset >= position:
                    state.apply(record.key, record.value)
            position = max(position, batch.next_offset)
            continue
        if batch.producer_id >= 0:
            while pending_aborts and pending_aborts[0][1] <= batch.base_offset:
                aborted_producers.add(pending_aborts.pop(0)[0])
            if batch.is_control_batch and ControlRecord.parse(next(batch).key) == ABORT_MARKER:
                aborted_producers.discard(batch.producer_id)
            if batch.is_transactional and batch.producer_id in aborted_producers:
                position = max(position, batch.next_offset)
                continue
        if not batch.is_control_batch:
            if batch.base_offset >= position:
                state.apply_batch(batch)
            else:
                for record in batch:
                    if record.offset >= position:
                        state.apply(record.key, record.value)
        position = max(position, batch.next_offset)
    return position
