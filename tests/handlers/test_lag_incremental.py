"""A lag evaluation computes only the partitions that moved (``handlers.alerting.lag_pairs``), and
still gives, after every poll, what a computation from scratch gives: checked pair by pair against
the sample tables' own scalar answer (``SampleTable.lag_seconds``) and the record timestamps, over
polls of a cluster whose log ends, commits, groups and pairs change at random (seeded), with the
streaming reader's "same object when unchanged" and without (the admin API's new objects)."""

from __future__ import annotations

import math
import random

import pytest

from handlers.alerting.lag_models import SecondsFrom
from handlers.alerting.lag_poll import LagPoller
from handlers.alerting.lag_snapshot import LagSnapshot
from handlers.ports import ConsumerGroup
from runbooks.alerting.lag import seconds_from_timestamp
from runbooks.alerting.lifecycle import LagRule
from tests.fakes.alerts import FakeClock, FakeLagReader, cluster

pytestmark = pytest.mark.timeout(60)

BOOTSTRAP = "k:9092"
RULE = LagRule()
PARTITIONS = [(topic, p) for topic in ("a", "b", "c") for p in range(4)]
Commits = dict[str, dict[int, int]]


class World:
    """A cluster that changes at random between polls; what the reader answers is read from here."""

    def __init__(self, rng: random.Random, reader: FakeLagReader, clock: FakeClock) -> None:
        self.rng, self.reader, self.clock = rng, reader, clock
        self.ends = {tp: 1_000 for tp in PARTITIONS}
        self.groups: dict[str, Commits | str] = {}
        self.failing: set[tuple[str, int]] = set()
        self.decided: set[tuple[str, int, int]] = set()
        for i in range(6):
            self.add_group(f"g{i}")

    def commit(self, offsets: Commits, tp: tuple[str, int], offset: int) -> None:
        offsets.setdefault(tp[0], {})[tp[1]] = offset
        position = (tp[0], tp[1], offset)
        if offset < 0 or position in self.decided:  # a record's time is what it is, once
            return
        self.decided.add(position)
        if self.rng.random() < 0.9:  # a few positions have no record to read a time from
            self.reader.timestamps[position] = int((self.now() - self.rng.uniform(0, 900)) * 1000)

    def now(self) -> float:
        return self.clock.now().timestamp()

    def add_group(self, name: str) -> None:
        offsets: Commits = {}
        for tp in self.rng.sample(PARTITIONS, self.rng.randint(1, 6)):
            self.commit(offsets, tp, self.rng.randint(max(0, self.ends[tp] - 400), self.ends[tp]))
        self.groups[name] = offsets

    def change(self) -> None:
        rng = self.rng
        self.clock.advance(1)
        for tp in PARTITIONS:
            roll = rng.random()
            if roll < 0.02:
                self.ends[tp] = max(0, self.ends[tp] - 500)  # truncated or recreated
            elif roll < 0.15:
                self.ends[tp] += rng.randint(1, 40)
        if rng.random() < 0.08:  # ListOffsets starts or stops failing for a partition
            self.failing = set(rng.sample(PARTITIONS, rng.randint(0, 1)))
        for name, offsets in list(self.groups.items()):
            roll = rng.random()
            if roll < 0.01:
                del self.groups[name]
            elif roll < 0.02:
                self.groups[name] = "COORDINATOR_NOT_AVAILABLE" if isinstance(offsets, dict) else {}
            elif isinstance(offsets, dict):
                self.move_commits(offsets, roll)
        if rng.random() < 0.03:
            self.add_group(f"g{len(self.groups) + rng.randint(10, 99)}")
        self.publish()

    def move_commits(self, offsets: Commits, roll: float) -> None:
        rng = self.rng
        if roll < 0.03:  # starts reading another partition
            self.commit(offsets, rng.choice(PARTITIONS), rng.randint(0, 1_000))
        elif roll < 0.04 and offsets:  # a pair goes (offsets deleted)
            topic = rng.choice(sorted(offsets))
            offsets[topic].pop(rng.choice(sorted(offsets[topic])))
            if not offsets[topic]:
                del offsets[topic]
        elif roll < 0.045 and offsets:  # no commit there any more (-1, as OffsetFetch says)
            topic = rng.choice(sorted(offsets))
            offsets[topic][rng.choice(sorted(offsets[topic]))] = -1
        elif roll < 0.25:
            for topic, parts in offsets.items():
                for partition, committed in parts.items():
                    if committed < 0 and rng.random() < 0.3:  # commits there again
                        self.commit(offsets, (topic, partition), rng.randint(0, self.ends[(topic, partition)]))
                    elif rng.random() < 0.5 and committed >= 0:
                        moved = rng.randint(committed, max(committed, self.ends[(topic, partition)]))
                        if rng.random() < 0.1:  # offsets reset back, often before the table's oldest sample
                            moved = rng.randint(0, committed)
                        self.commit(offsets, (topic, partition), moved)

    def publish(self) -> None:
        self.reader.groups = [ConsumerGroup(group=name, state="Stable") for name in self.groups]
        self.reader.commits = {name: offsets if isinstance(offsets, str) else
                               {t: dict(parts) for t, parts in offsets.items()}
                               for name, offsets in self.groups.items()}
        self.reader.ends = {tp: (0, end) for tp, end in self.ends.items() if tp not in self.failing}


def expected_pairs(snapshot: LagSnapshot, poller: LagPoller, world: World) -> dict[str, dict[tuple[str, int], tuple]]:
    """Every readable group's pairs as a computation from scratch gives them."""
    now = snapshot.now
    found: dict[str, dict[tuple[str, int], tuple]] = {}
    for name, offsets in world.reader.commits.items():
        if isinstance(offsets, str):
            continue
        pairs = found[name] = {}
        for topic, parts in offsets.items():
            for partition, committed in parts.items():
                tp = (topic, partition)
                if committed < 0 or tp not in snapshot.ends:
                    continue
                end = snapshot.ends[tp][1]
                lag = max(0, end - committed)
                seconds: float | None = 0.0
                source = SecondsFrom.CAUGHT_UP
                if lag:
                    seconds, source = poller.tables[tp].lag_seconds(committed, now), SecondsFrom.TABLE
                    if math.isnan(seconds):
                        position = (topic, partition, committed)
                        fetched = position in world.reader.fetched  # within the budget so far
                        stamp = world.reader.timestamps.get(position) if fetched else None
                        seconds = None if stamp is None else seconds_from_timestamp(stamp, now)
                        source = SecondsFrom.UNKNOWN if stamp is None else SecondsFrom.RECORD
                pairs[tp] = (committed, end, lag, seconds, source)
    return found


def check(snapshot: LagSnapshot, poller: LagPoller, world: World, poll: int) -> None:
    expected = expected_pairs(snapshot, poller, world)
    report = snapshot.report()
    got = {g.group: {(p.topic, p.partition): (p.committed, p.end, p.lag, p.seconds, p.seconds_from)
                     for p in g.partitions}
           for g in report.groups if g.error is None}
    assert got.keys() == expected.keys(), f"poll {poll}"
    for name, pairs in expected.items():
        assert got[name].keys() == pairs.keys(), f"poll {poll}, {name}"
        for tp, (committed, end, lag, seconds, source) in pairs.items():
            shown = got[name][tp]
            assert shown[:3] == (committed, end, lag), f"poll {poll}, {name} {tp}"
            assert shown[4] == source, f"poll {poll}, {name} {tp}: seconds from {shown[4]}, not {source}"
            assert shown[3] == (None if seconds is None else pytest.approx(seconds, abs=1e-3)), \
                f"poll {poll}, {name} {tp}: {shown[3]} != {seconds}"
    stats = snapshot.stats()
    assert stats.keys() == expected.keys()
    for name, pairs in expected.items():
        lags = [lag for _, _, lag, _, _ in pairs.values()]
        known = [s for _, _, _, s, _ in pairs.values() if s is not None]
        figures = stats[name]
        assert (figures.max_lag, figures.sum_lag) == (max(lags, default=0), sum(lags)), f"poll {poll}, {name}"
        assert figures.max_lag_seconds == (pytest.approx(max(known), abs=1e-3) if known else None), \
            f"poll {poll}, {name}"


@pytest.mark.parametrize("same_when_unchanged", [True, False], ids=["streamed", "admin-api"])
@pytest.mark.parametrize(("spacing_s", "budget"), [(0.0, 200), (3.0, 200), (3.0, 2)])
@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_every_poll_gives_the_figures_of_a_computation_from_scratch(
    seed: int, spacing_s: float, budget: int, same_when_unchanged: bool,
) -> None:
    """Whatever moved between polls (ends, commits, groups, pairs, failures; record times fetched
    a few per poll), each poll's report and rule figures equal a from-scratch computation on the
    same tables and fetched timestamps, and most polls did not recompute every partition."""
    rng, reader, clock = random.Random(seed), FakeLagReader(), FakeClock()
    reader.same_when_unchanged = same_when_unchanged
    world = World(rng, reader, clock)
    world.publish()
    poller = LagPoller(reader, clock, sample_spacing_s=spacing_s, timestamp_budget=budget)
    partial = 0
    for poll in range(80):
        snapshot = await poller.measure(cluster(), BOOTSTRAP, RULE)
        check(snapshot, poller, world, poll)
        partial += snapshot.recomputed < len(snapshot.readers)
        world.change()
    assert partial > 20  # the incremental path was taken, not only rebuilds


def steady_world() -> tuple[FakeLagReader, FakeClock, LagPoller]:
    reader, clock = FakeLagReader(), FakeClock()
    reader.same_when_unchanged = True
    reader.groups = [ConsumerGroup(group=g, state="Stable") for g in ("billing", "audit")]
    reader.commits = {"billing": {"orders": {0: 90, 1: 100}}, "audit": {"orders": {0: 100}, "refunds": {0: 5}}}
    reader.ends = {("orders", 0): (0, 100), ("orders", 1): (0, 100), ("refunds", 0): (0, 5)}
    return reader, clock, LagPoller(reader, clock)


async def test_a_poll_where_nothing_moved_recomputes_nothing_and_a_commit_only_its_partition() -> None:
    """Once the tables hold an idle stretch, an unchanged cluster costs no partition; a commit
    recomputes its partition only, a moved log end its own, and the figures follow."""
    reader, clock, poller = steady_world()
    for _ in range(3):  # the first polls fill the tables (a new sample moves their lines)
        snapshot = await poller.measure(cluster(), BOOTSTRAP, RULE)
        clock.advance(1)
    snapshot = await poller.measure(cluster(), BOOTSTRAP, RULE)
    assert snapshot.recomputed == 0
    assert snapshot.stats()["billing"].max_lag == 10
    reader.commits = {**reader.commits, "billing": {"orders": {0: 95, 1: 100}}}
    clock.advance(1)
    snapshot = await poller.measure(cluster(), BOOTSTRAP, RULE)
    assert snapshot.recomputed == 1
    assert snapshot.stats()["billing"].max_lag == 5
    reader.ends = {**reader.ends, ("refunds", 0): (0, 25)}
    clock.advance(1)
    snapshot = await poller.measure(cluster(), BOOTSTRAP, RULE)
    assert snapshot.recomputed == 1
    assert (snapshot.stats()["audit"].max_lag, snapshot.stats()["billing"].max_lag) == (20, 5)


async def test_a_group_behind_on_a_partition_nothing_moved_on_still_ages() -> None:
    """Seconds behind grow with time on a partition that is not recomputed (times are kept, not ages)."""
    reader, clock, poller = steady_world()
    reader.timestamps = {("orders", 0, 90): int((clock.now().timestamp() - 60) * 1000)}
    for _ in range(3):
        await poller.measure(cluster(), BOOTSTRAP, RULE)
        clock.advance(1)
    before = await poller.measure(cluster(), BOOTSTRAP, RULE)
    clock.advance(30)
    after = await poller.measure(cluster(), BOOTSTRAP, RULE)
    assert after.recomputed == 0
    grown = after.stats()["billing"].max_lag_seconds - before.stats()["billing"].max_lag_seconds  # type: ignore[operator]
    assert grown == pytest.approx(30.0)


async def test_a_log_end_read_with_a_clock_stepped_back_still_moves_the_offset_lag() -> None:
    """A sample older than the table's newest is dropped (the line stays), yet the new log end is
    the lag's: the partition is recomputed."""
    reader, clock, poller = steady_world()
    for _ in range(3):
        await poller.measure(cluster(), BOOTSTRAP, RULE)
        clock.advance(1)
    clock.advance(-10)
    reader.ends = {**reader.ends, ("orders", 1): (0, 130)}
    snapshot = await poller.measure(cluster(), BOOTSTRAP, RULE)
    assert snapshot.recomputed == 1
    assert snapshot.stats()["billing"].max_lag == 30


async def test_a_snapshot_keeps_its_figures_after_later_polls() -> None:
    """The report of a snapshot taken earlier does not change when later polls move commits and ends
    (they change copies, never what an earlier snapshot holds)."""
    reader, clock, poller = steady_world()
    first = await poller.measure(cluster(), BOOTSTRAP, RULE)
    text = first.report().model_dump_json()
    for step in range(5):
        clock.advance(1)
        reader.ends = {tp: (0, end + 7) for tp, (_, end) in reader.ends.items()}
        reader.commits = {**reader.commits, "billing": {"orders": {0: 91 + step, 1: 100}}}
        await poller.measure(cluster(), BOOTSTRAP, RULE)
    assert first.report().model_dump_json() == text


async def test_a_stuck_consumer_keeps_its_record_time_while_its_partition_moves() -> None:
    """The record time read for a consumer that has not moved is kept when its partition's log end
    moves (the partition is recomputed), without the timestamp cache: with a cache of one entry,
    two stuck consumers' records are each read once over ten polls, and their seconds stay known."""
    reader, clock = FakeLagReader(), FakeClock()
    reader.same_when_unchanged = True
    reader.groups = [ConsumerGroup(group=g, state="Stable") for g in ("billing", "audit")]
    reader.commits = {"billing": {"orders": {0: 3}}, "audit": {"orders": {0: 4}}}
    stamp = int((clock.now().timestamp() - 600) * 1000)
    reader.timestamps = {("orders", 0, 3): stamp, ("orders", 0, 4): stamp + 1000}
    poller = LagPoller(reader, clock, timestamp_cache_size=1)
    for second in range(10):
        reader.ends = {("orders", 0): (0, 100 + second)}
        snapshot = await poller.measure(cluster(), BOOTSTRAP, RULE)
        clock.advance(1)
        assert snapshot.recomputed == 1
        assert snapshot.stats()["billing"].max_lag_seconds == pytest.approx(600 + second)
        assert snapshot.stats()["audit"].max_lag_seconds == pytest.approx(599 + second)
    assert sorted(reader.fetched) == [("orders", 0, 3), ("orders", 0, 4)]


async def test_a_record_time_fetched_for_an_idle_partition_reaches_its_groups_figures() -> None:
    """With one record read a poll (the budget), the third stuck consumer's time arrives on a poll
    that recomputes no partition (all idle): its group's figures still take it in that poll."""
    reader, clock = FakeLagReader(), FakeClock()
    reader.same_when_unchanged = True
    reader.groups = [ConsumerGroup(group=g, state="Empty") for g in ("a", "b", "c")]
    reader.commits = {"a": {"t": {0: 70}}, "b": {"t": {1: 80}}, "c": {"t": {2: 90}}}
    reader.ends = {("t", p): (0, 100) for p in range(3)}
    stamp = int((clock.now().timestamp() - 3600) * 1000)
    reader.timestamps = {("t", 0, 70): stamp, ("t", 1, 80): stamp, ("t", 2, 90): stamp}
    poller = LagPoller(reader, clock, timestamp_budget=1)
    for _ in range(2):
        await poller.measure(cluster(), BOOTSTRAP, RULE)
        clock.advance(1)
    third = await poller.measure(cluster(), BOOTSTRAP, RULE)
    assert third.recomputed == 0 and reader.fetched == [("t", 0, 70), ("t", 1, 80), ("t", 2, 90)]
    assert third.stats()["c"].max_lag_seconds == pytest.approx(3602)
