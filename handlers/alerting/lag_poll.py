"""One cluster's lag poll: read, sample, compute, and report (docs/kafka-ops.md §1.1, §1.4).

Order of reads: the groups, then their committed offsets, *then* the log-end offsets, so a commit
racing the poll can only overstate the lag (clamped at 0 anyway), never show a consumer ahead of
the log (kafka_exporter #437).

The poller owns the per-partition sample tables (``runbooks.alerting.lag.SampleTable``) and a small cache of
record timestamps. Where a table cannot place a committed offset (the table is younger than the
consumer's position, the topic is idle, the bot just started), it asks Kafka for the timestamp of
the record at the committed offset, once per (partition, offset): a stopped consumer costs one
fetch, then nothing. At most ``timestamp_budget`` records are fetched per poll (largest lags
first) so one poll stays bounded however many groups are stuck; the rest follow on later polls.

A group whose offsets cannot be read is reported with its error and nothing else: the other groups
are computed as usual, and its alert is left as it was (never resolved by a failed read).
"""

from __future__ import annotations

import asyncio
import heapq
import re
from collections import OrderedDict
from collections.abc import Sequence

from handlers.alerting.lag_models import LagReport
from handlers.alerting.lag_pairs import PairIndex, wanted_partitions
from handlers.alerting.lag_snapshot import LagSnapshot, TopicPartition, paused_gc
from handlers.clusters import ManagedCluster
from handlers.ports import Clock, LagReader
from runbooks.alerting.lag import DEFAULT_TABLE_SIZE, Insert, SampleTable
from runbooks.alerting.lifecycle import LagRule


def selected(group: str, rule: LagRule) -> bool:
    if rule.include_groups and not re.fullmatch(rule.include_groups, group):
        return False
    return not (rule.exclude_groups and re.fullmatch(rule.exclude_groups, group))


BACKGROUND_WAIT_S = 0.3  # how long a background-mode poll waits for a record-timestamp fetch
# What moves a table's line for the groups behind: a new sample, or the newest one following the
# log end. An idle stretch's newest time moving (UPDATED) and a dropped sample do not.
_LINE_CHANGED = frozenset({Insert.APPENDED, Insert.FOLLOWED, Insert.NON_MONOTONIC})
_NO_END = (-1, -1)
ABSENT_RETRY_S = 300.0  # a position a fetch found no record at is asked again after this long


class LagPoller:
    def __init__(
        self, reader: LagReader, clock: Clock, *, table_size: int = DEFAULT_TABLE_SIZE,
        timestamp_budget: int = 200, timestamp_cache_size: int = 20_000, sample_spacing_s: float = 0.0,
        timestamps_in_background: bool = False,
    ) -> None:
        """``sample_spacing_s``: the sample tables' spacing when polls come faster than the tables
        should fill (``runbooks.alerting.lag.SampleTable.add``). ``timestamps_in_background``: a
        poll does not wait for the record timestamps it lacks (reading 200 records can take
        seconds, and an evaluation every second must not): one fetch runs at a time beside the
        polls, and the polls after it find the timestamps in the cache."""
        self._reader = reader
        self._clock = clock
        self._table_size = table_size
        self._budget = timestamp_budget
        self._cache_size = timestamp_cache_size
        self._spacing_s = sample_spacing_s
        self.tables: dict[TopicPartition, SampleTable] = {}
        self._index = PairIndex()
        self._timestamps: OrderedDict[tuple[str, int, int], int] = OrderedDict()
        self._background = timestamps_in_background
        self._fetching: asyncio.Task[None] | None = None
        self._fresh: set[TopicPartition] = set()  # partitions with record timestamps fetched, not looked at yet
        self._absent: OrderedDict[tuple[str, int, int], float] = OrderedDict()  # fetched, no record: when
        self._fetched: dict[tuple[str, int, int], int] = {}

    async def poll(self, cluster: ManagedCluster, bootstrap: str, rule: LagRule) -> LagReport:
        return (await self.measure(cluster, bootstrap, rule)).report()

    async def measure(self, cluster: ManagedCluster, bootstrap: str, rule: LagRule) -> LagSnapshot:
        """One poll's figures in flat lists (``LagSnapshot``); the report's models are built only
        when asked for. Only the partitions that moved since the last poll are computed again
        (``lag_pairs``); the snapshot stays valid after later polls (they change copies)."""
        started = self._clock.now()
        ref = cluster.ref
        index = self._index
        groups = [g for g in await self._reader.consumer_groups(ref, bootstrap) if selected(g.group, rule)]
        commits = {c.group: c for c in await self._reader.committed_offsets(ref, bootstrap, [g.group for g in groups])}
        with paused_gc():
            changes = index.changes(groups, commits)
        wanted = index.wanted if changes is not None else wanted_partitions(commits)
        ends = await self._reader.log_offsets(ref, bootstrap, wanted) if wanted else {}
        sampled_at = self._clock.now()
        now = sampled_at.timestamp()
        with paused_gc():
            if changes is not None and ends.keys() != index.ends.keys():
                changes = None  # a partition's end could not be read, or can again
            if changes is None:
                index.rebuild(groups, commits, ends)
                self._forget(index.wanted)
            moved = self._sample(ends, index.ends, now)
            index.commits, index.ends = commits, ends
            partitions = list(index.readers) if changes is None else sorted(moved)
            index.compute(partitions, changes, self.tables, now, self._cached)
            commits_only = [] if changes is None else sorted(set(changes.offsets) - moved)
            if changes is not None:
                index.compute_commits(commits_only, changes, self.tables, now, self._cached)
            touched = self._resolve(set(partitions) | set(commits_only))
        if self._background:
            # A short fetch (a few stuck consumers) still lands in this poll; a long one does not
            # hold the evaluation up, and the polls after it find the timestamps in the cache.
            fetching = self._fetch_later(cluster, bootstrap)
            if fetching is not None:
                await asyncio.wait({fetching}, timeout=BACKGROUND_WAIT_S)
        else:
            positions = self._worst()
            if positions:
                await self._remember(cluster, bootstrap, positions)
        with paused_gc():
            touched |= self._resolve(set())
            self._fetched = {}  # looked at: from now on, the cache's
            index.refresh(set(partitions) | touched, changes.groups if changes is not None else ())
        return LagSnapshot(cluster=cluster.name, taken_at=sampled_at,
                           poll_seconds=(self._clock.now() - started).total_seconds(), groups=groups,
                           commits=commits, readers=dict(index.readers), ends=ends, figures=index.figures,
                           recomputed=len(partitions) + len(commits_only))

    def _sample(self, ends: dict[TopicPartition, tuple[int, int]], before: dict[TopicPartition, tuple[int, int]],
                now: float) -> set[TopicPartition]:
        """Add this poll's log ends to the tables; returns the partitions whose figures moved (a
        new end, or a line that changed)."""
        moved: set[TopicPartition] = set()
        for tp, (_, latest) in ends.items():
            table = self.tables.get(tp)
            if table is None:
                table = self.tables[tp] = SampleTable(self._table_size)
            added = table.add(latest, now, spacing_s=self._spacing_s)
            if added is Insert.NON_MONOTONIC:
                table.reset()  # the log end went back: the topic was recreated or truncated
                table.add(latest, now)
            if added in _LINE_CHANGED or before.get(tp, _NO_END)[1] != latest:
                moved.add(tp)
        return moved

    def _forget(self, wanted: Sequence[TopicPartition]) -> None:
        """Forget partitions nobody reads any more (memory); a partition whose ListOffsets failed
        this time keeps its table."""
        for tp in set(self.tables) - set(wanted):
            del self.tables[tp]

    def _cached(self, position: tuple[str, int, int]) -> int | None:
        stamp = self._timestamps.get(position)
        if stamp is not None:
            self._timestamps.move_to_end(position)
            return stamp
        return self._fetched.get(position)  # the last fetch's, even if the cache had no room for it

    def _resolve(self, skip: set[TopicPartition]) -> set[TopicPartition]:
        """Pairs of unknown time answered from the timestamps fetched since the last look (on the
        partitions not just computed, which looked already)."""
        fresh, self._fresh = self._fresh - skip, set()
        return self._index.resolve(self._cached, fresh) if fresh else set()

    def _fetch_later(self, cluster: ManagedCluster, bootstrap: str) -> asyncio.Task[None] | None:
        if self._fetching is not None and not self._fetching.done():
            return self._fetching  # one at a time; the next poll asks for what is still missing
        positions = self._worst()
        if not positions:
            return None
        self._fetching = asyncio.get_running_loop().create_task(self._remember(cluster, bootstrap, positions))
        return self._fetching

    async def _remember(self, cluster: ManagedCluster, bootstrap: str, positions: list[tuple[str, int, int]]) -> None:
        try:
            found = await self._reader.record_timestamps(cluster.ref, bootstrap, positions)
        except Exception:  # asked again by a later poll
            return
        self._fetched = found
        self._cache(found)
        now = self._clock.now().timestamp()
        for position in positions:
            if position not in found:  # no record there (deleted, compacted, a transaction marker)
                self._absent[position] = now
                self._absent.move_to_end(position)
        while len(self._absent) > self._cache_size:
            self._absent.popitem(last=False)

    def cancel(self) -> None:
        """Stop a background timestamp fetch (the monitors stop)."""
        if self._fetching is not None:
            self._fetching.cancel()

    def _worst(self) -> list[tuple[str, int, int]]:
        """The positions to fetch the record timestamps of: the largest lags first, within the
        budget, leaving out for a while those a fetch found no record at."""
        now, absent = self._clock.now().timestamp(), self._absent
        wanted = (item for item in self._index.missing()
                  if item[1] not in absent or now - absent[item[1]] >= ABSENT_RETRY_S)
        worst = heapq.nlargest(self._budget, wanted)  # (lag, position): the largest lags first
        return sorted({position for _, position in worst})

    def _cache(self, found: dict[tuple[str, int, int], int]) -> None:
        self._fresh.update((topic, partition) for topic, partition, _ in found)
        for position, stamp in found.items():
            self._timestamps[position] = stamp
            self._timestamps.move_to_end(position)
        while len(self._timestamps) > self._cache_size:
            self._timestamps.popitem(last=False)
