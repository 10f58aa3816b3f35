"""The follower's loops (``bot.kafka.offsets_fetch.OffsetsTopicFollower``) against a Kafka client
standing in for aiokafka's at its two calls (``fetch_all_metadata``, ``send``): leaders that move,
go without a leader, hang, or answer an error, and a log start that moved past the position. The
happy path and the wire format are checked against real brokers in tests/alerts/test_offsets_stream.py;
these are the cases a sandbox cannot produce on demand."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import TopicAuthorizationFailedError
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.protocol.offset import OffsetRequest

from bot.kafka.offsets_fetch import OffsetsTopicFollower
from bot.kafka.offsets_state import OffsetsState
from tests.kafka.offsets_records import offset_key, offset_value, record_batch

pytestmark = pytest.mark.timeout(20)

NOT_LEADER, OUT_OF_RANGE, TOPIC_AUTHORIZATION_FAILED = 6, 1, 29


class FakeKafka:
    """Partitions of ``__consumer_offsets`` as lists of (base offset, batch bytes), each led by a broker."""

    def __init__(self, leaders: dict[int, int]) -> None:
        self.leaders = dict(leaders)
        self.logs: dict[int, list[tuple[int, bytes]]] = {p: [] for p in leaders}
        self.log_start: dict[int, int] = dict.fromkeys(leaders, 0)
        self.hanging: set[int] = set()  # brokers that never answer
        self.errors: dict[int, int] = {}  # partition -> error code answered
        self.fetched_from: list[tuple[int, int, int]] = []  # (broker, partition, position)

    def append(self, partition: int, records: list[tuple[bytes, bytes]]) -> None:
        end = self.end(partition)
        self.logs[partition].append((end, record_batch(end, records)))

    def end(self, partition: int) -> int:
        log = self.logs[partition]
        return log[-1][0] + _records_in(log[-1][1]) if log else self.log_start[partition]

    async def fetch_all_metadata(self) -> Any:
        leaders = dict(self.leaders)
        return SimpleNamespace(leader_for_partition=lambda tp: leaders.get(tp.partition))

    async def send(self, broker: int, request: Any) -> Any:
        if broker in self.hanging:
            await asyncio.Event().wait()
        if isinstance(request, OffsetRequest):  # ListOffsets (earliest); aiokafka keeps the asked partitions private
            return SimpleNamespace(API_VERSION=1, topics=[(topic, [(p, 0, -1, self.log_start[p]) for p, _ in parts])
                                                          for topic, parts in request._topics])
        assert isinstance(request, FetchRequest)
        answers = []
        for topic, parts in request.topics:
            found = []
            for partition, position, _ in parts:
                self.fetched_from.append((broker, partition, position))
                if self.leaders.get(partition) != broker:
                    found.append((partition, NOT_LEADER, -1, -1, -1, [], b""))
                elif partition in self.errors:
                    found.append((partition, self.errors[partition], -1, -1, -1, [], b""))
                elif position < self.log_start[partition]:
                    found.append((partition, OUT_OF_RANGE, -1, -1, -1, [], b""))
                else:
                    # One batch an answer (as a small fetch size would): a replay takes several fetches.
                    data = next((d for base, d in self.logs[partition] if base + _records_in(d) > position), b"")
                    end = self.end(partition)
                    found.append((partition, 0, end, end, self.log_start[partition], [], data))
            answers.append((topic, found))
        await asyncio.sleep(0.01)  # the broker's max_wait, shortened
        return SimpleNamespace(API_VERSION=10, topics=answers)


def _records_in(batch: bytes) -> int:
    return int.from_bytes(batch[23:27], "big") + 1  # the batch's last offset delta, + 1


def commit(group: str, offset: int, partition: int = 0) -> tuple[bytes, bytes]:
    return offset_key(group, "orders", partition), offset_value(offset, 3, commit_ms=1)


async def until(condition: Callable[[], bool], what: str, within_s: float = 5.0) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.01)


async def following(kafka: FakeKafka, **kwargs: Any) -> tuple[OffsetsTopicFollower, OffsetsState, asyncio.Task[None]]:
    state = OffsetsState()
    follower = OffsetsTopicFollower(kafka, state, set(kafka.leaders), **kwargs)  # type: ignore[arg-type]
    return follower, state, asyncio.create_task(follower.run())


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_every_leader_is_followed_and_a_commit_after_the_replay_arrives() -> None:
    kafka = FakeKafka({0: 1, 1: 2, 2: 1})
    kafka.append(0, [commit("a", 5)])
    kafka.append(1, [commit("b", 7)])
    kafka.append(1, [commit("b", 8)])
    follower, state, task = await following(kafka)
    try:
        await until(lambda: follower.caught_up, "caught up")
        assert state.offsets == {"a": {"orders": {0: 5}}, "b": {"orders": {0: 8}}}
        kafka.append(2, [commit("c", 3)])
        await until(lambda: "c" in state.offsets, "the new commit")
        assert {broker for broker, _, _ in kafka.fetched_from} == {1, 2}
    finally:
        await stop(task)


async def test_a_moved_leader_is_found_again_and_no_record_is_read_twice_or_lost() -> None:
    kafka = FakeKafka({0: 1, 1: 2})
    kafka.append(0, [commit("a", 1)])
    follower, state, task = await following(kafka)
    try:
        await until(lambda: follower.caught_up, "caught up")
        kafka.leaders[0] = 2  # broker 1 now answers NOT_LEADER for partition 0
        kafka.append(0, [commit("a", 2), commit("a", 3, partition=1)])
        await until(lambda: state.offsets["a"]["orders"] == {0: 2, 1: 3}, "the commits after the move")
        assert state.records == 3
        assert (2, 0, 1) in kafka.fetched_from  # broker 2 asked from where broker 1 left off
    finally:
        await stop(task)


async def test_a_partition_without_a_leader_does_not_stop_the_others_and_is_read_once_it_has_one() -> None:
    kafka = FakeKafka({0: 1, 1: -1})
    kafka.append(0, [commit("a", 1)])
    kafka.append(1, [commit("b", 1)])
    follower, state, task = await following(kafka, leaderless_recheck_s=0.2)
    try:
        await until(lambda: "a" in state.offsets, "the partition with a leader")
        kafka.append(0, [commit("a", 2)])
        await until(lambda: state.offsets["a"]["orders"] == {0: 2}, "a commit while the other has no leader")
        assert "b" not in state.offsets and not follower.caught_up
        kafka.leaders[1] = 1
        await until(lambda: "b" in state.offsets and follower.caught_up, "the partition once elected")
    finally:
        await stop(task)


async def test_a_leader_that_never_answers_makes_its_partitions_silent_while_the_others_go_on() -> None:
    kafka = FakeKafka({0: 1, 1: 2})
    kafka.hanging.add(2)
    follower, state, task = await following(kafka)
    try:
        kafka.append(0, [commit("a", 4)])
        await until(lambda: "a" in state.offsets, "the answering broker's partition")
        await asyncio.sleep(0.3)
        assert follower.silent(0.25) == [1]
    finally:
        await stop(task)


async def test_a_position_before_the_log_start_reads_again_from_the_log_start() -> None:
    kafka = FakeKafka({0: 1})
    kafka.log_start[0] = 10  # what a DeleteRecords or a lost segment leaves: offsets 0..9 are gone
    kafka.append(0, [commit("a", 6)])
    follower, state, task = await following(kafka)
    try:
        await until(lambda: follower.caught_up, "caught up from the log start")
        assert follower.positions[0] == 11 and state.offsets == {"a": {"orders": {0: 6}}}
    finally:
        await stop(task)


async def test_an_error_it_cannot_get_past_ends_the_follower_with_it() -> None:
    kafka = FakeKafka({0: 1, 1: 2})
    kafka.errors[1] = TOPIC_AUTHORIZATION_FAILED
    _, _, task = await following(kafka)
    with pytest.raises(TopicAuthorizationFailedError):
        await asyncio.wait_for(task, 5)
