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
import re
from collections import OrderedDict
from collections.abc import Sequence

from handlers.alerting.lag_models import LagReport
from handlers.alerting.lag_snapshot import LagSnapshot, Readers, TopicPartition, paused_gc
from handlers.clusters import ManagedCluster
from handlers.ports import Clock, ConsumerGroup, GroupCommits, LagReader
from runbooks.alerting.lag import (
    DEFAULT_TABLE_SIZE,
    Insert,
    SampleTable,
    is_unknown,
    offset_lags,
    seconds_from_timestamp,
)
from runbooks.alerting.lifecycle import LagRule


def selected(group: str, rule: LagRule) -> bool:
    if rule.include_groups and not re.fullmatch(rule.include_groups, group):
        return False
    return not (rule.exclude_groups and re.fullmatch(rule.exclude_groups, group))


BACKGROUND_WAIT_S = 0.3  # how long a background-mode poll waits for a record-timestamp fetch


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
        self._timestamps: OrderedDict[tuple[str, int, int], int] = OrderedDict()
        self._background = timestamps_in_background
        self._fetching: asyncio.Task[None] | None = None

    async def poll(self, cluster: ManagedCluster, bootstrap: str, rule: LagRule) -> LagReport:
        return (await self.measure(cluster, bootstrap, rule)).report()

    async def measure(self, cluster: ManagedCluster, bootstrap: str, rule: LagRule) -> LagSnapshot:
        """One poll's figures in flat lists (``LagSnapshot``); the report's models are built only
        when asked for."""
        started = self._clock.now()
        ref = cluster.ref
        groups = [g for g in await self._reader.consumer_groups(ref, bootstrap) if selected(g.group, rule)]
        commits = {c.group: c for c in await self._reader.committed_offsets(ref, bootstrap, [g.group for g in groups])}
        wanted = sorted({
            (topic, partition)
            for c in commits.values() if c.error is None
            for topic, parts in c.offsets.items() for partition, offset in parts.items() if offset >= 0
        })
        ends = await self._reader.log_offsets(ref, bootstrap, wanted) if wanted else {}
        sampled_at = self._clock.now()
        now = sampled_at.timestamp()
        with paused_gc():
            self._sample(wanted, ends, now)
            readers = self._readers(groups, commits, ends)
            missing = self._compute(readers, ends, now)
        if missing and self._background:
            # A short fetch (a few stuck consumers) still lands in this poll; a long one does not
            # hold the evaluation up, and the polls after it find the timestamps in the cache.
            fetching = self._fetch_later(cluster, bootstrap, missing)
            await asyncio.wait({fetching}, timeout=BACKGROUND_WAIT_S)
            if fetching.done():
                self._fill_from_cache(missing, readers, now)
        elif missing:
            await self._fetch_timestamps(cluster, bootstrap, missing, readers, now)
        return LagSnapshot(cluster=cluster.name, taken_at=sampled_at,
                           poll_seconds=(self._clock.now() - started).total_seconds(), groups=groups,
                           commits=commits, readers=readers, ends=ends)

    def _sample(
        self, wanted: Sequence[TopicPartition], ends: dict[TopicPartition, tuple[int, int]], now: float,
    ) -> None:
        for tp, (_, latest) in ends.items():
            table = self.tables.get(tp)
            if table is None:
                table = self.tables[tp] = SampleTable(self._table_size)
            if table.add(latest, now, spacing_s=self._spacing_s) is Insert.NON_MONOTONIC:
                table.reset()  # the log end went back: the topic was recreated or truncated
                table.add(latest, now)
        # Forget partitions nobody reads any more (memory); a partition whose ListOffsets failed
        # this time keeps its table.
        for tp in set(self.tables) - set(wanted):
            del self.tables[tp]

    @staticmethod
    def _readers(
        groups: Sequence[ConsumerGroup], commits: dict[str, GroupCommits], ends: dict[TopicPartition, tuple[int, int]],
    ) -> dict[TopicPartition, Readers]:
        readers = {tp: Readers() for tp in ends}  # a partition whose end is unknown has no lag to compute
        for index, group in enumerate(groups):
            commit = commits.get(group.group)
            if commit is None or commit.error is not None:
                continue
            for topic, parts in commit.offsets.items():
                for partition, offset in parts.items():
                    entry = readers.get((topic, partition))
                    if entry is None or offset < 0:
                        continue
                    entry.groups.append(index)
                    entry.committed.append(offset)
        return {tp: entry for tp, entry in readers.items() if entry.groups}

    def _compute(
        self, readers: dict[TopicPartition, Readers], ends: dict[TopicPartition, tuple[int, int]], now: float,
    ) -> list[tuple[int, tuple[str, int, int]]]:
        """Offset and seconds lags for every pair; returns the pairs only a record's timestamp can
        answer (not cached yet)."""
        missing: list[tuple[int, tuple[str, int, int]]] = []  # (lag, position) no table could place
        for tp, entry in readers.items():
            entry.lags = offset_lags(ends[tp][1], entry.committed)
            lines = self.tables[tp].lines(now)
            entry.seconds = lines.lag_seconds(entry.committed)
            if lines.answers_all(entry.committed):
                continue  # the common case: no per-pair work at all
            for i, value in enumerate(entry.seconds):
                if not is_unknown(value):
                    continue
                position = (tp[0], tp[1], entry.committed[i])
                cached = self._timestamps.get(position)
                if cached is None:
                    missing.append((entry.lags[i], position))
                else:
                    self._timestamps.move_to_end(position)
                    entry.seconds[i] = seconds_from_timestamp(cached, now)
                    entry.from_record.add(i)
        return missing

    def _fetch_later(self, cluster: ManagedCluster, bootstrap: str,
                     missing: list[tuple[int, tuple[str, int, int]]]) -> asyncio.Task[None]:
        if self._fetching is not None and not self._fetching.done():
            return self._fetching  # one at a time; the next poll asks for what is still missing
        positions = self._worst(missing)
        self._fetching = asyncio.get_running_loop().create_task(self._remember(cluster, bootstrap, positions))
        return self._fetching

    def _fill_from_cache(self, missing: list[tuple[int, tuple[str, int, int]]],
                         readers: dict[TopicPartition, Readers], now: float) -> None:
        for _, (topic, partition, offset) in missing:
            stamp = self._timestamps.get((topic, partition, offset))
            if stamp is None:
                continue
            entry = readers[(topic, partition)]
            for i, committed in enumerate(entry.committed):
                if committed == offset and is_unknown(entry.seconds[i]):
                    entry.seconds[i] = seconds_from_timestamp(stamp, now)
                    entry.from_record.add(i)

    async def _remember(self, cluster: ManagedCluster, bootstrap: str, positions: list[tuple[str, int, int]]) -> None:
        try:
            found = await self._reader.record_timestamps(cluster.ref, bootstrap, positions)
        except Exception:  # asked again by a later poll
            return
        self._cache(found)

    def cancel(self) -> None:
        """Stop a background timestamp fetch (the monitors stop)."""
        if self._fetching is not None:
            self._fetching.cancel()

    def _worst(self, missing: list[tuple[int, tuple[str, int, int]]]) -> list[tuple[str, int, int]]:
        worst_first = sorted(missing, key=lambda item: -item[0])
        return sorted({position for _, position in worst_first[: self._budget]})

    def _cache(self, found: dict[tuple[str, int, int], int]) -> None:
        for position, stamp in found.items():
            self._timestamps[position] = stamp
            self._timestamps.move_to_end(position)
        while len(self._timestamps) > self._cache_size:
            self._timestamps.popitem(last=False)

    async def _fetch_timestamps(
        self, cluster: ManagedCluster, bootstrap: str, missing: list[tuple[int, tuple[str, int, int]]],
        readers: dict[TopicPartition, Readers], now: float,
    ) -> None:
        positions = self._worst(missing)
        try:
            found = await self._reader.record_timestamps(cluster.ref, bootstrap, positions)
        except Exception:  # seconds stay unknown this poll; the offsets are still reported
            return
        self._cache(found)
        for topic, partition, offset in positions:
            timestamp = found.get((topic, partition, offset))
            if timestamp is None:
                continue
            entry = readers[(topic, partition)]
            for i, committed in enumerate(entry.committed):
                if committed == offset and is_unknown(entry.seconds[i]):
                    entry.seconds[i] = seconds_from_timestamp(timestamp, now)
                    entry.from_record.add(i)
