"""One lag poll's figures, flat: per partition, the groups reading it and their committed offsets,
offset lags and seconds lags in parallel lists (what ``runbooks.alerting.lag`` computes in batch).

The lag rules need three numbers per group (the worst offset lag, the worst seconds lag, the total),
taken here in one pass over the lists (``stats``), so a poll every second builds no object per
pair. The pydantic models of ``lag_models`` (what other replicas, ``/kafka lag`` and ``/metrics``
read) are built only when asked for: the whole report once per ``lag_poll_s``, and a group's
``GroupLag`` when an alert needs its worst partitions and members.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from handlers.alerting.lag_models import GroupLag, LagReport, PartitionLag, SecondsFrom
from handlers.ports import ConsumerGroup, GroupCommits, GroupMember

TopicPartition = tuple[str, int]


class Readers:
    """The groups reading one partition, in parallel lists (the batch form ``LagLines`` takes), and
    what was computed for them."""

    __slots__ = ("_places", "committed", "from_record", "groups", "lags", "seconds")

    def __init__(self) -> None:
        self.groups: list[int] = []
        self.committed: list[int] = []
        self.lags: list[int] = []
        self.seconds: list[float] = []  # NaN: unknown
        self.from_record: set[int] = set()  # places whose seconds came from a record's timestamp
        self._places: dict[int, int] | None = None

    def place(self, group_index: int) -> int | None:
        """The group's place in the lists (built on first use: only the report and alerts ask)."""
        if self._places is None:
            self._places = {group: i for i, group in enumerate(self.groups)}
        return self._places.get(group_index)


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


@dataclass(frozen=True)
class LagSnapshot:
    cluster: str
    taken_at: datetime
    poll_seconds: float
    groups: list[ConsumerGroup]
    commits: dict[str, GroupCommits]
    readers: dict[TopicPartition, Readers]
    ends: dict[TopicPartition, tuple[int, int]]  # (earliest, latest)

    def failed(self) -> dict[str, str]:
        """The groups whose offsets could not be read, with why."""
        found: dict[str, str] = {}
        for group in self.groups:
            commit = self.commits.get(group.group)
            if commit is None or commit.error is not None:
                found[group.group] = commit.error if commit is not None and commit.error else "no answer for this group"
        return found

    def stats(self) -> dict[str, GroupStats]:
        """Every readable group's figures, one pass over the pairs."""
        with paused_gc():
            return self._stats()

    def _stats(self) -> dict[str, GroupStats]:
        count = len(self.groups)
        worst = [0] * count
        total = [0] * count
        seconds: list[float | None] = [None] * count
        for entry in self.readers.values():
            for index, lag, value in zip(entry.groups, entry.lags, entry.seconds, strict=True):
                total[index] += lag
                if lag > worst[index]:
                    worst[index] = lag
                if lag == 0:
                    value = 0.0  # caught up, whatever the table says
                elif value != value:  # NaN: unknown
                    continue
                known = seconds[index]
                if known is None or value > known:
                    seconds[index] = value
        failed = self.failed()
        return {group.group: GroupStats(worst[i], total[i], _non_negative(seconds[i]))
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
        for topic, parts in sorted(commit.offsets.items()):
            for partition, offset in sorted(parts.items()):
                tp = (topic, partition)
                entry = self.readers.get(tp)
                if entry is None:  # no commit (-1) or the end offset could not be read
                    continue
                i = entry.place(index)
                if i is None:  # this group has no commit there (-1); others do
                    continue
                lag, seconds = entry.lags[i], entry.seconds[i]
                if lag == 0:
                    source = SecondsFrom.CAUGHT_UP
                elif seconds != seconds:
                    source = SecondsFrom.UNKNOWN
                else:
                    source = SecondsFrom.RECORD if i in entry.from_record else SecondsFrom.TABLE
                member = owner.get(tp)
                partitions.append(PartitionLag(
                    topic=topic, partition=partition, committed=offset, end=self.ends[tp][1], lag=lag,
                    seconds=None if source is SecondsFrom.UNKNOWN else max(0.0, seconds), seconds_from=source,
                    member_id=member.member_id if member else "", client_id=member.client_id if member else "",
                    host=member.host if member else "",
                ))
        return GroupLag(group=group.group, state=group.state, simple_consumer=group.protocol_type == "",
                        members=group.members, partitions=tuple(partitions))


def _non_negative(seconds: float | None) -> float | None:
    return None if seconds is None else max(0.0, seconds)


def _nested(ends: dict[TopicPartition, tuple[int, int]]) -> dict[str, dict[int, tuple[int, int]]]:
    nested: dict[str, dict[int, tuple[int, int]]] = {}
    for (topic, partition), offsets in ends.items():
        nested.setdefault(topic, {})[partition] = offsets
    return nested
