"""One lag poll's figures, flat: per partition, the groups reading it and their committed offsets,
offset lags and seconds lags in parallel flat arrays (what ``runbooks.alerting.lag`` computes in batch).

The lag rules need three numbers per group (the worst offset lag, the worst seconds lag, the total):
the poller keeps them per group (``GroupFigures``) and recomputes only the groups whose partitions
moved, so a poll every second builds no object per pair and does no work for what stood still. The
pydantic models of ``lag_models`` (what other replicas, ``/kafka lag`` and ``/metrics`` read) are
built only when asked for: the whole report once per ``lag_poll_s``, and a group's
``GroupLag`` when an alert needs its worst partitions and members.
"""

from __future__ import annotations

import gc
from array import array
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from handlers.alerting.lag_models import GroupLag, LagReport, PartitionLag, SecondsFrom
from handlers.ports import ConsumerGroup, GroupCommits, GroupMember
from runbooks.alerting.lag import CAUGHT_UP

TopicPartition = tuple[str, int]


PLACES_SCANNED = 32  # a partition read by more groups finds a group's place in a dict, not by a scan


class Readers:
    """The groups reading one partition, in parallel flat arrays (the batch form ``LagLines``
    takes: 4 to 8 bytes a pair each, no Python object per pair), and what was computed for them.
    An evaluation that changes nothing on the partition (its log end and its groups' commits where
    they were) keeps the object as it is: ``born`` holds times, not ages, so the figures stay true
    as time passes; one that changes something builds a new one (a snapshot handed out before
    keeps its own)."""

    __slots__ = ("_places", "born", "committed", "from_record", "groups", "lags")

    def __init__(self, groups: array[int] | None = None, committed: array[int] | None = None,
                 places: dict[int, int] | None = None) -> None:
        self.groups: array[int] = array("i") if groups is None else groups  # shared between evaluations: never changed
        self.committed: array[int] = array("q") if committed is None else committed
        self.lags: array[int] = array("q")
        # When the log end was where each group's commit is (epoch seconds): lag in seconds is
        # ``now - born``. NaN: unknown; +inf: caught up.
        self.born: array[float] = array("d")
        self.from_record = 0  # bit i set: place i's time came from a record's timestamp
        self._places = places  # group -> place for a partition many groups read: shared like ``groups``

    def place(self, group_index: int) -> int | None:
        """The group's place in the arrays."""
        groups = self.groups
        if len(groups) <= PLACES_SCANNED:
            return groups.index(group_index) if group_index in groups else None
        if self._places is None:
            self._places = {group: i for i, group in enumerate(groups)}
        return self._places.get(group_index)

    def recorded(self, i: int) -> bool:
        """Whether the time at place ``i`` came from a record's timestamp."""
        return bool(self.from_record >> i & 1)

    def recorded_places(self) -> Iterator[int]:
        bits = self.from_record
        while bits:
            low = bits & -bits
            yield low.bit_length() - 1
            bits ^= low

    def seconds(self, i: int, now: float) -> float:
        """Seconds behind of the group at place ``i``; NaN when unknown."""
        if self.lags[i] == 0:
            return 0.0
        born = self.born[i]
        return born if born != born else max(0.0, now - born)

    def changed(self) -> Readers:
        """A new object to compute again, the commits copied (the one before may be in a snapshot
        still being read)."""
        return Readers(self.groups, self.committed[:], self._places)

    def copy(self) -> Readers:
        """A new object to change (the one before may be in a snapshot still being read)."""
        twin = Readers(self.groups, self.committed, self._places)
        twin.lags, twin.born, twin.from_record = self.lags, self.born[:], self.from_record
        return twin


@contextmanager
def paused_gc() -> Iterator[None]:
    """A poll allocates a few objects per pair (lists, ints) and frees them by reference counting;
    left on, the cyclic collector runs full collections over every live object a few times per
    poll meanwhile (about a third of a 100,000-pair evaluation). Only around code with no await."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True, slots=True)
class GroupStats:
    """What the lag rules look at: the group's worst partition (offsets, seconds) and its total."""

    max_lag: int
    sum_lag: int
    max_lag_seconds: float | None  # None: no partition's seconds are known


@dataclass(frozen=True, slots=True)
class GroupFigures:
    """A group's figures in a form that stays true while nothing it reads changes: the worst and
    total offset lag, and the oldest ``born`` of its partitions behind (seconds = now - that)."""

    max_lag: int
    sum_lag: int
    oldest_born: float | None  # None: no partition behind with a known time
    any_caught_up: bool  # a partition at 0 s (caught up), which counts when no other is known

    def stats(self, now: float) -> GroupStats:
        if self.oldest_born is not None:
            return GroupStats(self.max_lag, self.sum_lag, max(0.0, now - self.oldest_born))
        return GroupStats(self.max_lag, self.sum_lag, 0.0 if self.any_caught_up else None)


NO_FIGURES = GroupFigures(0, 0, None, False)


def figures_of(pairs: Iterable[tuple[int, float]]) -> GroupFigures:
    """One group's figures from its (offset lag, born) pairs."""
    worst = total = 0
    oldest: float | None = None
    caught_up = False
    for lag, born in pairs:
        total += lag
        if lag > worst:
            worst = lag
        if lag == 0 or born == CAUGHT_UP:
            caught_up = True
        elif born == born and (oldest is None or born < oldest):
            oldest = born
    return GroupFigures(worst, total, oldest, caught_up)


def all_figures(readers: Iterable[Readers], count: int) -> list[GroupFigures]:
    """Every group's figures in one pass over the partitions (when most of them changed)."""
    worst = [0] * count
    total = [0] * count
    oldest: list[float | None] = [None] * count
    caught_up = [False] * count
    for entry in readers:
        for index, lag, born in zip(entry.groups, entry.lags, entry.born, strict=True):
            total[index] += lag
            if lag > worst[index]:
                worst[index] = lag
            if lag == 0 or born == CAUGHT_UP:
                caught_up[index] = True
            elif born == born:
                known = oldest[index]
                if known is None or born < known:
                    oldest[index] = born
    return [GroupFigures(worst[i], total[i], oldest[i], caught_up[i]) for i in range(count)]


@dataclass(frozen=True)
class LagSnapshot:
    cluster: str
    taken_at: datetime
    poll_seconds: float
    groups: list[ConsumerGroup]
    commits: dict[str, GroupCommits]
    readers: dict[TopicPartition, Readers]
    ends: dict[TopicPartition, tuple[int, int]]  # (earliest, latest)
    figures: list[GroupFigures]  # per group, in ``groups``' order
    recomputed: int = 0  # partitions whose figures this evaluation computed (the others had not moved)

    @property
    def now(self) -> float:
        return self.taken_at.timestamp()

    def failed(self) -> dict[str, str]:
        """The groups whose offsets could not be read, with why."""
        found: dict[str, str] = {}
        for group in self.groups:
            commit = self.commits.get(group.group)
            if commit is None or commit.error is not None:
                found[group.group] = commit.error if commit is not None and commit.error else "no answer for this group"
        return found

    def stats(self) -> dict[str, GroupStats]:
        """Every readable group's figures (kept up to date by the poller: no pass over the pairs)."""
        failed = self.failed()
        now = self.now
        return {group.group: self.figures[i].stats(now)
                for i, group in enumerate(self.groups) if group.group not in failed}

    def group_lag(self, group_id: str) -> GroupLag | None:
        index = next((i for i, g in enumerate(self.groups) if g.group == group_id), None)
        return None if index is None else self._group_lag(index, self.groups[index])

    def report(self) -> LagReport:
        return LagReport(
            cluster=self.cluster, taken_at=self.taken_at, poll_seconds=self.poll_seconds,
            groups=tuple(self._group_lag(index, group) for index, group in enumerate(self.groups)),
            log_offsets=_nested(self.ends),
        )

    def _group_lag(self, index: int, group: ConsumerGroup) -> GroupLag:
        commit = self.commits.get(group.group)
        if commit is None or commit.error is not None:
            error = commit.error if commit is not None else "no answer for this group"
            return GroupLag(group=group.group, state=group.state, simple_consumer=group.protocol_type == "",
                            members=group.members, error=error)
        owner: dict[TopicPartition, GroupMember] = {tp: m for m in group.members for tp in m.partitions}
        partitions: list[PartitionLag] = []
        now = self.now
        for topic, parts in sorted(commit.offsets.items()):
            for partition, offset in sorted(parts.items()):
                tp = (topic, partition)
                entry = self.readers.get(tp)
                if entry is None:  # no commit (-1) or the end offset could not be read
                    continue
                i = entry.place(index)
                if i is None:  # this group has no commit there (-1); others do
                    continue
                lag, seconds = entry.lags[i], entry.seconds(i, now)
                if lag == 0:
                    source = SecondsFrom.CAUGHT_UP
                elif seconds != seconds:
                    source = SecondsFrom.UNKNOWN
                else:
                    source = SecondsFrom.RECORD if entry.recorded(i) else SecondsFrom.TABLE
                member = owner.get(tp)
                partitions.append(PartitionLag(
                    topic=topic, partition=partition, committed=offset, end=self.ends[tp][1], lag=lag,
                    seconds=None if source is SecondsFrom.UNKNOWN else max(0.0, seconds), seconds_from=source,
                    member_id=member.member_id if member else "", client_id=member.client_id if member else "",
                    host=member.host if member else "",
                ))
        return GroupLag(group=group.group, state=group.state, simple_consumer=group.protocol_type == "",
                        members=group.members, partitions=tuple(partitions))


def _nested(ends: dict[TopicPartition, tuple[int, int]]) -> dict[str, dict[int, tuple[int, int]]]:
    nested: dict[str, dict[int, tuple[int, int]]] = {}
    for (topic, partition), offsets in ends.items():
        nested.setdefault(topic, {})[partition] = offsets
    return nested
