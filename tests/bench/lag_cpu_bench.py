"""The streamed lag path's own CPU, without Kafka (``python -m tests.bench lag-cpu``): what the
process does per record of ``__consumer_offsets`` and per evaluation, at the issue's shapes and at
1,000,000 pairs (2,000 groups over 20,000 partitions: a sandbox on this machine cannot hold that
many partitions, the CPU side can be measured all the same).

1. decoding and applying offset-commit records (``OffsetsState.apply``), records per CPU second,
   for a replay (every group-partition new) and for commits of pairs already known (the steady
   state), and the state's memory per pair;
2. one evaluation as the monitor runs it every second: ``LagPoller.measure`` over a reader that
   answers committed offsets from that state (as ``StreamingLagReader`` does once caught up) and
   end offsets from a dict (the ListOffsets round trip is not in this figure), then
   ``LagSnapshot.stats``; and the report's JSON (``lag_document``), written once per ``lag_poll_s``;
3. the memory of the streamed state and of one evaluation's lists (tracemalloc).

Every consumer reads ``topics_per_group`` whole topics; half the groups are caught up, half a few
hundred records behind on topics that move between evaluations (the tables have lines).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.kafka.lag_stream import CommitsCache
from bot.kafka.offsets_stream import OffsetsState
from handlers.alerting.lag_document import lag_document
from handlers.alerting.lag_poll import LagPoller
from handlers.clusters import ManagedCluster
from handlers.ports import ClusterRef, ConsumerGroup, GroupCommits
from runbooks.engine.models import ApprovalPolicy
from tests.bench.lag_workload import LARGE, SMALL, Shape, run_shapes
from tests.kafka.offsets_records import offset_key, offset_value

HUGE = Shape(groups=2000, topics=200, partitions=100, topics_per_group=5)  # 1,000,000 pairs
RUNS = 7
# Shares of the partitions written between two evaluations (their readers' commits follow); "all"
# is every partition written every second.
SHARES = {"none": 0.0, "one_percent": 0.01, "ten_percent": 0.10}


RECORD_MS = int((datetime(2026, 12, 7, tzinfo=UTC) - timedelta(hours=1)).timestamp() * 1000)


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 7, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


class StateReader:
    """Committed offsets from an ``OffsetsState`` (what ``StreamingLagReader`` answers once caught
    up), end offsets from a dict."""

    def __init__(self, state: OffsetsState, groups: list[ConsumerGroup]) -> None:
        self.state = state
        self.groups = groups
        self.ends: dict[tuple[str, int], tuple[int, int]] = {}
        self.cache = CommitsCache()

    async def consumer_groups(self, cluster: ClusterRef, bootstrap: str) -> list[ConsumerGroup]:
        return self.groups

    async def committed_offsets(self, cluster: ClusterRef, bootstrap: str, groups: Sequence[str]) -> list[GroupCommits]:
        return self.cache.answer(self.state, groups)

    async def log_offsets(self, cluster: ClusterRef, bootstrap: str,
                          partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, int]]:
        return {tp: self.ends[tp] for tp in partitions}

    async def record_timestamps(self, cluster: ClusterRef, bootstrap: str,
                                positions: Sequence[tuple[str, int, int]]) -> dict[tuple[str, int, int], int]:
        """Every record was written an hour before the bench's clock starts (the stuck consumers'
        records are read as Kafka would answer them, 200 a poll)."""
        return dict.fromkeys(positions, RECORD_MS)


def records(shape: Shape, base: int) -> list[tuple[bytes, bytes]]:
    out = []
    for index, (group, reads) in enumerate(shape.group_topics().items()):
        behind = 0 if index % 2 == 0 else 300 + index % 50
        for topic in reads:
            for p in range(shape.partitions):
                out.append((offset_key(group, topic, p), offset_value(base - behind, 3, commit_ms=1)))
    return out


def run(shape: Shape) -> dict[str, Any]:
    figures: dict[str, Any] = {"pairs": shape.pairs}
    stream = records(shape, base=1_000_000)
    state = OffsetsState()
    tracemalloc.start()
    for key, value in stream:  # keys copied: the state keeps the records' own key bytes, as the stream's
        state.apply(bytes(bytearray(key)), value)
    figures["state_bytes_per_pair"] = round(tracemalloc.get_traced_memory()[0] / shape.pairs)
    tracemalloc.stop()
    for label, target in (("replay", OffsetsState()), ("known_pairs", state)):
        cpu = time.process_time()
        for key, value in stream:
            target.apply(key, value)
        figures[f"apply_{label}_records_per_cpu_s"] = round(len(stream) / (time.process_time() - cpu))
    del stream
    groups = [ConsumerGroup(group=g, state="Stable") for g in shape.group_topics()]
    reader, clock = StateReader(state, groups), Clock()
    cluster = ManagedCluster(ref=ClusterRef(name="bench", namespace="kafka", kafka="bench"), policy=ApprovalPolicy())
    # The stuck consumers' record times all read in the first poll: the figures are those of a monitor
    # that has run for a while (at 200 a poll it reads them over the first few minutes).
    poller = LagPoller(reader, clock, sample_spacing_s=15.0, timestamp_budget=shape.pairs)  # type: ignore[arg-type]
    rule = cluster.alerts.consumer_lag
    tps = [(t, p) for t in shape.topic_names() for p in range(shape.partitions)]

    ends = dict.fromkeys(tps, 1_000_000)
    moving = {name: tps[:: round(1 / share)] if share else [] for name, share in SHARES.items()}
    keys = {(t, p): [(g, offset_key(g, t, p)) for g, reads in shape.group_topics().items() if t in reads]
            for t, p in tps}

    async def evaluate(written: list[tuple[str, int]]) -> Any:
        for tp in written:
            ends[tp] += 20
        reader.ends = {tp: (0, end) for tp, end in ends.items()}
        clock.at += timedelta(seconds=1)
        snapshot = await poller.measure(cluster, "k", rule)
        snapshot.stats()
        return snapshot

    def commit_moved(written: list[tuple[str, int]]) -> None:
        """The groups reading a written partition commit their new position there (the stream's state)."""
        for tp in written:
            for _, key in keys[tp][::2]:  # the caught-up half follow the log end
                state.apply(key, offset_value(ends[tp], 3, commit_ms=1))

    async def evaluations() -> tuple[dict[str, list[float]], Any]:
        for _ in range(20):  # 20 s of samples: the tables have lines
            snapshot = await evaluate(tps)
        cpus: dict[str, list[float]] = {}
        for name, written in moving.items():
            await evaluate(written)  # the first evaluation after a change of pattern
            cpus[name] = []
            for _ in range(RUNS):
                commit_moved(written)
                cpu = time.process_time()
                snapshot = await evaluate(written)
                cpus[name].append(time.process_time() - cpu)
        for _ in range(RUNS):
            cpu = time.process_time()
            snapshot = await evaluate(tps)
            cpus.setdefault("all", []).append(time.process_time() - cpu)
        return cpus, snapshot

    cpus, snapshot = asyncio.run(evaluations())
    for name, values in cpus.items():
        figures[f"evaluation_cpu_s_{name}_best"] = round(min(values), 4)
        figures[f"evaluation_cpu_s_{name}_median"] = round(statistics.median(values), 4)
    figures["evaluation_cpu_s_best"] = figures["evaluation_cpu_s_all_best"]
    figures["evaluation_cpu_s_median"] = figures["evaluation_cpu_s_all_median"]
    # Every group committing every second where it already is (the steady load) costs the
    # stream one known-pair apply per pair; with 1 % of partitions written, the share of a core:
    per_second = shape.pairs / figures["apply_known_pairs_records_per_cpu_s"] + figures[
        "evaluation_cpu_s_one_percent_median"]
    figures["steady_core_share_1pct_written_all_committing"] = round(per_second, 4)
    cpu = time.process_time()
    doc = lag_document(snapshot)
    figures["report_json_cpu_s"] = round(time.process_time() - cpu, 3)
    figures["report_json_bytes"] = len(doc.text)
    tracemalloc.start()
    asyncio.run(evaluate(tps))
    figures["evaluation_peak_bytes_per_pair"] = round(tracemalloc.get_traced_memory()[1] / shape.pairs)
    tracemalloc.stop()
    return figures


def main() -> dict[str, Any]:
    return run_shapes(run, {"small": SMALL, "large": LARGE, "huge": HUGE}, ["small", "large", "huge"])


if __name__ == "__main__":
    main()
