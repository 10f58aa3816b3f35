"""The pairs (group, partition) of one cluster kept from one lag evaluation to the next, so an
evaluation computes only the partitions that moved (issue #17 §3: an evaluation every second at
100,000 pairs, and 1,000,000 pairs without falling behind).

A partition's figures depend on its log end, its sample table, and the committed offsets of the
groups reading it; their seconds are kept as ``born`` times (``lag_snapshot.Readers``), which do
not age. So an evaluation recomputes a partition only when its log end moved or its table's line
changed, and then a group's figures (``GroupFigures``) for every group reading it; when only some
groups' commits moved there, only those pairs and those groups' figures. Which groups read which
partitions (the structure) is built again from scratch when it changes: a group or a pair appears
or goes, a group's offsets become readable or unreadable, a partition's end offset could not be
read. That is rare; commits moving and log ends moving are the steady state.

The committed offsets of a group the reader hands back as the same object as last time (the
streaming reader does, for a group with no commit since) are not looked at at all.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterator, Sequence
from math import isnan

from handlers.alerting.lag_snapshot import NO_FIGURES, GroupFigures, Readers, all_figures, figures_of
from handlers.ports import ConsumerGroup, GroupCommits
from runbooks.alerting.lag import SampleTable, offset_lags

TopicPartition = tuple[str, int]
Position = tuple[str, int, int]  # topic, partition, committed offset
Missing = list[tuple[int, Position]]  # (largest offset lag, position) whose time only the record can tell
Lookup = Callable[[Position], "int | None"]  # a cached record timestamp (ms), or None

WHOLE_PASS_SHARE = 0.3  # past this share of the pairs to look at, every group's figures in one pass


def wanted_partitions(commits: dict[str, GroupCommits]) -> list[TopicPartition]:
    """Every partition some readable group has a commit on (-1: none)."""
    return sorted({
        (topic, partition)
        for c in commits.values() if c.error is None
        for topic, parts in c.offsets.items() for partition, offset in parts.items() if offset >= 0
    })


class CommitChanges:
    """What moved in the commits since the last evaluation, the structure staying the same."""

    __slots__ = ("groups", "offsets")

    def __init__(self) -> None:
        self.groups: list[int] = []  # groups whose commits object is new (their figures are refreshed)
        self.offsets: dict[TopicPartition, dict[int, int]] = {}  # partition -> {place: new offset}


class PairIndex:
    """One cluster's pairs and the last evaluation's figures."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.commits: dict[str, GroupCommits] = {}
        self.wanted: list[TopicPartition] = []
        self.readers: dict[TopicPartition, Readers] = {}
        self.ends: dict[TopicPartition, tuple[int, int]] = {}
        self.figures: list[GroupFigures] = []
        # Per group, flat: the partitions it reads (numbers into ``_partitions``) and its place in
        # each of those partitions' ``Readers``; 8 bytes a pair.
        self._partitions: list[TopicPartition] = []
        self._pair_tps: list[array[int]] = []
        self._pair_places: list[array[int]] = []
        self._negative: dict[int, list[TopicPartition]] = {}  # per group, its -1 offsets (no commit): not pairs
        self._missing: dict[TopicPartition, Missing] = {}  # partitions with pairs of unknown time, and those pairs
        self._pair_count = 0

    def changes(self, groups: Sequence[ConsumerGroup], commits: dict[str, GroupCommits]) -> CommitChanges | None:
        """The commits that moved, or None when the structure changed (``rebuild``)."""
        if len(groups) != len(self.names) or any(g.group != n for g, n in zip(groups, self.names, strict=True)):
            return None
        found = CommitChanges()
        for index, name in enumerate(self.names):
            new, old = commits.get(name), self.commits.get(name)
            if new is old:
                continue
            if new is None or old is None or (new.error is None) != (old.error is None):
                return None
            found.groups.append(index)
            if new.error is not None:
                continue
            offsets, before = new.offsets, old.offsets
            if not _same_keys(offsets, before):
                return None
            if any(offsets[t][p] >= 0 for t, p in self._negative.get(index, ())):
                return None
            for topic, parts in offsets.items():
                was = before[topic]
                if parts == was:  # compared in C: most of a group's topics did not move
                    continue
                for partition, committed in parts.items():
                    if committed == was[partition]:
                        continue
                    if committed < 0:
                        return None
                    tp = (topic, partition)
                    entry = self.readers.get(tp)
                    place = entry.place(index) if entry is not None else None
                    if place is not None:  # else a partition whose end could not be read: no pair
                        found.offsets.setdefault(tp, {})[place] = committed
        return found

    def rebuild(self, groups: Sequence[ConsumerGroup], commits: dict[str, GroupCommits],
                ends: dict[TopicPartition, tuple[int, int]]) -> None:
        self.names = [g.group for g in groups]
        self.wanted = wanted_partitions(commits)
        readers = {tp: Readers() for tp in ends}  # a partition whose end is unknown has no lag to compute
        numbers = {tp: n for n, tp in enumerate(readers)}
        pair_tps: list[array[int]] = []
        pair_places: list[array[int]] = []
        self._negative = {}
        for index, group in enumerate(groups):
            tps: array[int] = array("i")
            places: array[int] = array("i")
            pair_tps.append(tps)
            pair_places.append(places)
            commit = commits.get(group.group)
            if commit is None or commit.error is not None:
                continue
            for topic, parts in commit.offsets.items():
                for partition, offset in parts.items():
                    tp = (topic, partition)
                    entry = readers.get(tp)
                    if offset < 0:
                        self._negative.setdefault(index, []).append(tp)
                        continue
                    if entry is None:
                        continue
                    tps.append(numbers[tp])
                    places.append(len(entry.groups))
                    entry.groups.append(index)
                    entry.committed.append(offset)
        self.readers = {tp: entry for tp, entry in readers.items() if entry.groups}
        self._partitions, self._pair_tps, self._pair_places = list(readers), pair_tps, pair_places
        self._pair_count = sum(len(tps) for tps in pair_tps)
        self._missing = {}
        self.figures = [NO_FIGURES] * len(groups)

    def compute(self, partitions: Sequence[TopicPartition], changes: CommitChanges | None,
                tables: dict[TopicPartition, SampleTable], now: float, lookup: Lookup) -> None:
        """Figures of the given partitions (with the commits that moved); a pair only a record's
        timestamp can answer is answered from the cache or left in ``missing``."""
        moved = changes.offsets if changes is not None else {}
        for tp in partitions:
            before = entry = self.readers.get(tp)
            if entry is None:
                continue
            if changes is not None:  # not just rebuilt: the entry is in the last snapshot, change a copy
                entry = self.readers[tp] = entry.changed()
                for place, offset in moved.get(tp, {}).items():
                    entry.committed[place] = offset
            committed = entry.committed
            entry.lags = array("q", offset_lags(self.ends[tp][1], committed))
            lines = tables[tp].lines(now)
            born = entry.born = array("d", lines.born(committed))
            entry.from_record = 0
            self._missing.pop(tp, None)
            if lines.answers_all(committed):
                continue
            if changes is not None and before is not None:
                # A consumer still where it was keeps the record time read for it before (no cache
                # needed: a stuck consumer's record is read once, however many polls follow).
                for i in before.recorded_places():
                    if committed[i] == before.committed[i] and born[i] != born[i]:
                        born[i] = before.born[i]
                        entry.from_record |= 1 << i
            if any(map(isnan, born)):
                self._resolve(tp, entry, lookup)

    def compute_commits(self, partitions: Sequence[TopicPartition], changes: CommitChanges,
                        tables: dict[TopicPartition, SampleTable], now: float, lookup: Lookup) -> None:
        """Figures of the pairs whose commit moved, on partitions whose log end and sample line did
        not: the other groups there keep theirs (at 1,000,000 pairs a commit is one pair of the
        fifty on its partition)."""
        for tp in partitions:
            before = self.readers.get(tp)
            moved = changes.offsets.get(tp)
            if before is None or not moved:
                continue
            entry = self.readers[tp] = before.changed()  # the one before may be in a snapshot
            entry.lags, entry.born, entry.from_record = before.lags[:], before.born[:], before.from_record
            end, lines = self.ends[tp][1], tables[tp].lines(now)
            places, offsets = list(moved), list(moved.values())
            unknown = False
            for place, offset, lag, born in zip(places, offsets, offset_lags(end, offsets), lines.born(offsets),
                                                strict=True):
                entry.committed[place], entry.lags[place], entry.born[place] = offset, lag, born
                entry.from_record &= ~(1 << place)
                unknown = unknown or born != born
            if unknown or tp in self._missing:
                self._resolve(tp, entry, lookup)

    def missing(self) -> Iterator[tuple[int, Position]]:
        """The positions whose time only a record's timestamp can tell, each with the largest
        offset lag of the groups there."""
        for left in self._missing.values():
            yield from left

    def resolve(self, lookup: Lookup, partitions: set[TopicPartition]) -> set[TopicPartition]:
        """Answer pairs left unknown by earlier evaluations on the given partitions (record
        timestamps of theirs came in); returns the partitions that changed."""
        touched: set[TopicPartition] = set()
        for tp in partitions:
            left = self._missing.get(tp)
            entry = self.readers.get(tp)
            if left is None or entry is None:
                self._missing.pop(tp, None)
                continue
            if all(lookup(position) is None for _, position in left):
                continue
            twin = self.readers[tp] = entry.copy()
            self._resolve(tp, twin, lookup)
            touched.add(tp)
        return touched

    def _resolve(self, tp: TopicPartition, entry: Readers, lookup: Lookup) -> None:
        topic, partition = tp
        stamps: dict[int, int | None] = {}  # committed offset -> its record's timestamp (groups often share one)
        left: dict[int, int] = {}  # committed offsets still unknown -> the largest lag there
        for i, born in enumerate(entry.born):
            lag = entry.lags[i]
            if born == born or lag == 0:
                continue
            committed = entry.committed[i]
            if committed in stamps:
                stamp = stamps[committed]
            else:
                stamp = stamps[committed] = lookup((topic, partition, committed))
            if stamp is None:
                if lag > left.get(committed, -1):
                    left[committed] = lag
            else:
                entry.born[i] = stamp / 1000.0
                entry.from_record |= 1 << i
        if left:
            self._missing[tp] = [(lag, (topic, partition, committed)) for committed, lag in left.items()]
        else:
            self._missing.pop(tp, None)

    def refresh(self, partitions: set[TopicPartition], groups: Sequence[int]) -> None:
        """Group figures of every group reading the given partitions, and of the given groups."""
        affected = set(groups)
        for tp in partitions:
            entry = self.readers.get(tp)
            if entry is not None:
                affected.update(entry.groups)
        pairs = sum(len(self._pair_tps[index]) for index in affected)
        if pairs > WHOLE_PASS_SHARE * self._pair_count:
            self.figures = all_figures(self.readers.values(), len(self.names))
            return
        figures = list(self.figures)  # the last snapshot keeps its own list
        for index in affected:  # a group whose offsets cannot be read has no pairs: NO_FIGURES
            figures[index] = figures_of(self._pairs(index))
        self.figures = figures

    def _pairs(self, index: int) -> Iterator[tuple[int, float]]:
        readers, partitions = self.readers, self._partitions
        for number, place in zip(self._pair_tps[index], self._pair_places[index], strict=True):
            entry = readers[partitions[number]]
            yield entry.lags[place], entry.born[place]


def _same_keys(new: dict[str, dict[int, int]], old: dict[str, dict[int, int]]) -> bool:
    if new.keys() != old.keys():
        return False
    return all(parts.keys() == old[topic].keys() for topic, parts in new.items())
