"""The streamed lag path's memory in one process, without Kafka (``python -m tests.bench lag-rss
[small|large|huge]``, large by default): the CPU bench's workload (``lag_cpu_bench``), with the
process's RSS (``VmRSS``) and its high-water mark (``VmHWM``) from ``/proc/self/status`` after each
stage, so what each part of a monitoring bot holds can be told apart:

1. the imports; 2. the stream's state (``OffsetsState``) with every pair committed; 3. the poller
after 20 evaluations of every partition written (the sample tables have lines, the stuck consumers'
record times are read); 4. after 7 evaluations with 1 % of the partitions written (the steady
state); 5. with every sample table filled to its 60 samples (a monitor that has run 15 minutes);
6. while and after the report's JSON is built (``lag_document``), once.

Then, in a second poller built with ``tracemalloc`` on, the files that hold the most memory
allocated since it started, the lines of the handlers and runbooks that hold the most (what the
poller keeps per pair), and the traced peak of one report build.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import tracemalloc
from datetime import timedelta
from typing import Any

from bot.kafka.offsets_stream import OffsetsState
from handlers.alerting.lag_document import lag_document
from handlers.alerting.lag_poll import LagPoller
from handlers.clusters import ManagedCluster
from handlers.ports import ClusterRef, ConsumerGroup
from runbooks.engine.models import ApprovalPolicy
from tests.bench.lag_cpu_bench import HUGE, Clock, StateReader, records
from tests.bench.lag_workload import LARGE, SMALL, Shape
from tests.kafka.offsets_records import offset_key, offset_value

TOP = 15


def status_mb() -> dict[str, float]:
    found: dict[str, float] = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                found[name] = round(int(value.split()[0]) / 1024, 1)
    return found


class Workload:
    def __init__(self, shape: Shape, state: OffsetsState) -> None:
        self.shape, self.state = shape, state
        groups = [ConsumerGroup(group=g, state="Stable") for g in shape.group_topics()]
        self.reader, self.clock = StateReader(state, groups), Clock()
        self.cluster = ManagedCluster(ref=ClusterRef(name="bench", namespace="kafka", kafka="bench"),
                                      policy=ApprovalPolicy())
        self.tps = [(t, p) for t in shape.topic_names() for p in range(shape.partitions)]
        self.ends = dict.fromkeys(self.tps, 1_000_000)
        self.one_percent = self.tps[::100]

    def poller(self) -> LagPoller:
        return LagPoller(self.reader, self.clock, sample_spacing_s=15.0,
                         timestamp_budget=self.shape.pairs)

    async def evaluate(self, poller: LagPoller, written: list[tuple[str, int]]) -> Any:
        for tp in written:
            self.ends[tp] += 20
        self.reader.ends = {tp: (0, end) for tp, end in self.ends.items()}
        self.clock.at += timedelta(seconds=1)
        snapshot = await poller.measure(self.cluster, "k", self.cluster.alerts.consumer_lag)
        snapshot.stats()
        return snapshot

    def commit_moved(self, written: list[tuple[str, int]]) -> None:
        readers = {tp: [g for g, reads in self.shape.group_topics().items() if tp[0] in reads][::2] for tp in written}
        for tp, names in readers.items():
            for group in names:
                self.state.apply(offset_key(group, *tp), offset_value(self.ends[tp], 3, commit_ms=1))

    async def run(self, poller: LagPoller) -> Any:
        for _ in range(20):
            snapshot = await self.evaluate(poller, self.tps)
        return snapshot

    async def steady(self, poller: LagPoller) -> Any:
        for _ in range(7):
            self.commit_moved(self.one_percent)
            snapshot = await self.evaluate(poller, self.one_percent)
        return snapshot


def fill_tables(poller: LagPoller) -> None:
    """Every partition's table at its 60 samples, as 15 minutes of polls leave it (the bench's
    evaluations run 27 s): samples after the newest, 20 records and 15 s apart."""
    for table in poller.tables.values():
        offset, at = table.offsets[-1], table.times[-1]
        while len(table) < table.capacity:
            offset, at = offset + 20, at + 15.0
            table.add(offset, at)


def run(shape: Shape) -> dict[str, Any]:
    figures: dict[str, Any] = {"pairs": shape.pairs, "imports": status_mb()}
    state = OffsetsState()
    for key, value in records(shape, base=1_000_000):
        state.apply(bytes(bytearray(key)), value)  # the state keeps the records' own key bytes
    gc.collect()
    figures["stream_state"] = status_mb()
    work = Workload(shape, state)
    poller = work.poller()
    snapshot = asyncio.run(work.run(poller))
    figures["poller_after_20_full_evaluations"] = status_mb()
    del snapshot
    snapshot = asyncio.run(work.steady(poller))
    gc.collect()
    figures["poller_after_7_one_percent_evaluations"] = status_mb()
    fill_tables(poller)
    gc.collect()
    figures["sample_tables_full"] = status_mb()
    doc = lag_document(snapshot)
    figures["report_bytes"] = len(doc.text)
    figures["report_built"] = status_mb()
    del doc
    gc.collect()
    figures["report_dropped"] = status_mb()
    del snapshot, poller
    gc.collect()

    tracemalloc.start(1)
    start = tracemalloc.take_snapshot()
    poller = work.poller()
    snapshot = asyncio.run(work.run(poller))
    snapshot = asyncio.run(work.steady(poller))
    gc.collect()
    after = tracemalloc.take_snapshot()
    figures["poller_top_files"] = [f"{s.size_diff / 2**20:.1f} MB {s.traceback[0].filename.rsplit('/', 2)[-1]}"
                                   for s in after.compare_to(start, "filename")[:TOP]]
    held = after.filter_traces([tracemalloc.Filter(True, "*/handlers/*"),
                                                      tracemalloc.Filter(True, "*/runbooks/*")])
    stats = held.statistics("lineno")
    figures["poller_traced_bytes_per_pair"] = round(sum(s.size for s in stats) / shape.pairs)
    figures["poller_top_lines"] = [f"{s.size / 2**20:.1f} MB {s.count} blocks "
                                   f"{s.traceback[0].filename.rsplit('/', 2)[-1]}:{s.traceback[0].lineno}"
                                   for s in stats[:TOP]]
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    lag_document(snapshot)
    figures["report_build_traced_peak_mb"] = round((tracemalloc.get_traced_memory()[1] - before) / 2**20, 1)
    tracemalloc.stop()
    return figures


def main() -> dict[str, Any]:
    shapes = {"small": SMALL, "large": LARGE, "huge": HUGE}
    wanted = next((shapes[a] for a in sys.argv[1:] if a in shapes), LARGE)
    figures = run(wanted)
    print(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    main()
