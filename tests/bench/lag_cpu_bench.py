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
import json
import statistics
import sys
import time
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.kafka.offsets_stream import OffsetsState
from handlers.alerting.lag_document import lag_document
from handlers.alerting.lag_poll import LagPoller
from handlers.clusters import ManagedCluster
from handlers.ports import ClusterRef, ConsumerGroup, GroupCommits
from runbooks.engine.models import ApprovalPolicy
from tests.bench.lag_workload import LARGE, SMALL, Shape, load_average
from tests.kafka.offsets_records import offset_key, offset_value

HUGE = Shape(groups=2000, topics=200, partitions=100, topics_per_group=5)  # 1,000,000 pairs
RUNS = 7


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

    async def consumer_groups(self, cluster: ClusterRef, bootstrap: str) -> list[ConsumerGroup]:
        return self.groups

    async def committed_offsets(self, cluster: ClusterRef, bootstrap: str, groups: Sequence[str]) -> list[GroupCommits]:
        return [GroupCommits.model_construct(group=g, offsets=self.state.group_offsets(g), error=None) for g in groups]

    async def log_offsets(self, cluster: ClusterRef, bootstrap: str,
                          partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, int]]:
        return {tp: self.ends[tp] for tp in partitions}

    async def record_timestamps(self, cluster: ClusterRef, bootstrap: str,
                                positions: Sequence[tuple[str, int, int]]) -> dict[tuple[str, int, int], int]:
        return {}


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
    poller = LagPoller(reader, clock, sample_spacing_s=15.0)  # type: ignore[arg-type]
    rule = cluster.alerts.consumer_lag
    tps = [(t, p) for t in shape.topic_names() for p in range(shape.partitions)]

    async def evaluate(second: int) -> Any:
        end = 1_000_000 + 20 * second
        reader.ends = {tp: (0, end) for tp in tps}
        clock.at += timedelta(seconds=1)
        snapshot = await poller.measure(cluster, "k", rule)
        snapshot.stats()
        return snapshot

    async def evaluations() -> tuple[list[float], Any]:
        for second in range(20):  # 20 s of samples: the tables have lines
            await evaluate(second)
        cpus = []
        for second in range(20, 20 + RUNS):
            cpu = time.process_time()
            snapshot = await evaluate(second)
            cpus.append(time.process_time() - cpu)
        return cpus, snapshot

    cpus, snapshot = asyncio.run(evaluations())
    figures["evaluation_cpu_s_best"] = round(min(cpus), 3)
    figures["evaluation_cpu_s_median"] = round(statistics.median(cpus), 3)
    cpu = time.process_time()
    doc = lag_document(snapshot)
    figures["report_json_cpu_s"] = round(time.process_time() - cpu, 3)
    figures["report_json_bytes"] = len(doc.text)
    tracemalloc.start()
    asyncio.run(evaluate(40))
    figures["evaluation_peak_bytes_per_pair"] = round(tracemalloc.get_traced_memory()[1] / shape.pairs)
    tracemalloc.stop()
    return figures


def main() -> dict[str, Any]:
    shapes = {"small": SMALL, "large": LARGE, "huge": HUGE}
    wanted = [a for a in sys.argv[1:] if a in shapes] or ["small", "large", "huge"]
    figures: dict[str, Any] = {"load_average_start": load_average()}
    for name in wanted:
        figures[name] = run(shapes[name])
    figures["load_average_end"] = load_average()
    print(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    main()
