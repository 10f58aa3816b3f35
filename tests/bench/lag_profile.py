"""Where a lag poll's time goes (``python -m tests.bench lag-profile [small|large]``), issue #17 §1.

On a fresh sandbox with the workload of ``tests.bench.lag_workload``, several steady polls of
``LagPoller`` over ``KafkaLagReader``, each split into its phases:

- the reader's calls (ListGroups + DescribeGroups, OffsetFetch, ListOffsets x2, record timestamps),
  wall and process CPU (the calls run on kafka-python's worker threads, so process CPU counts them);
- the poller's own work (the rest of ``poll``): the per-partition lists, the lag math and the
  per-pair pydantic models, with a cProfile of the poll's main thread to split it;
- the report's JSON (``model_dump_json``), its size, the Redis SET, and a reader's
  ``model_validate_json`` (what ``/kafka lag`` and another replica pay);
- the kafka-python calls once more on the main thread under cProfile, to split protocol
  decoding from network I/O.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import redis.asyncio as aioredis
from kafka import TopicPartition
from kafka.admin import KafkaAdminClient, OffsetSpec

from bot.clock import SystemClock
from bot.kafka.admin import KafkaAdminAdapter
from bot.kafka.lag import KafkaLagReader
from handlers.alerting.lag_models import LagReport
from handlers.alerting.lag_poll import LagPoller
from handlers.clusters import ManagedCluster
from handlers.ports import ClusterRef, ConsumerGroup, GroupCommits
from runbooks.engine.models import ApprovalPolicy
from tests.bench.lag_workload import LARGE, SMALL, Shape, load_average, populate, sandbox
from tests.fixtures.redis_server import RedisServer

T = TypeVar("T")
POLLS = 5


class TimedReader:
    """The ``LagReader`` port around the real one, timing each call (wall and process CPU)."""

    def __init__(self, inner: KafkaLagReader) -> None:
        self.inner = inner
        self.spent: dict[str, list[float]] = {}

    async def _timed(self, name: str, call: Callable[[], Awaitable[T]]) -> T:
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            return await call()
        finally:
            self.spent.setdefault(f"{name}_wall", []).append(time.perf_counter() - wall)
            self.spent.setdefault(f"{name}_cpu", []).append(time.process_time() - cpu)

    async def consumer_groups(self, cluster: ClusterRef, bootstrap: str) -> list[ConsumerGroup]:
        return await self._timed("groups", lambda: self.inner.consumer_groups(cluster, bootstrap))

    async def committed_offsets(self, cluster: ClusterRef, bootstrap: str, groups: Sequence[str]) -> list[GroupCommits]:
        return await self._timed("commits", lambda: self.inner.committed_offsets(cluster, bootstrap, groups))

    async def log_offsets(self, cluster: ClusterRef, bootstrap: str,
                          partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, int]]:
        return await self._timed("ends", lambda: self.inner.log_offsets(cluster, bootstrap, partitions))

    async def record_timestamps(self, cluster: ClusterRef, bootstrap: str,
                                positions: Sequence[tuple[str, int, int]]) -> dict[tuple[str, int, int], int]:
        return await self._timed("timestamps", lambda: self.inner.record_timestamps(cluster, bootstrap, positions))


def by_area(stats: pstats.Stats, areas: dict[str, tuple[str, ...]]) -> dict[str, float]:
    """Own time (tottime) summed by where the function lives (C functions by their name)."""
    spent = dict.fromkeys([*areas, "other"], 0.0)
    for (filename, _, function), (_, _, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{filename} {function}"
        area = next((name for name, marks in areas.items() if any(m in where for m in marks)), "other")
        spent[area] += tottime
    return {k: round(v, 3) for k, v in spent.items() if v}


def cumulative(stats: pstats.Stats, functions: tuple[str, ...]) -> dict[str, float]:
    found: dict[str, float] = {}
    for (filename, _, function), (_, _, _, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "lag_poll.py" in filename and function in functions:
            found[function] = round(found.get(function, 0.0) + cumtime, 3)
    return found


class ThreadProfiles:
    """cProfile in every thread started after ``install`` (kafka-python 3's clients do their I/O and
    decoding on their own threads, which a main-thread profile never sees)."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self.on = False
        self._run = threading.Thread.run

    def install(self) -> None:
        profiles, original, owner = self.profiles, self._run, self

        def run(thread: threading.Thread) -> None:
            profile = cProfile.Profile()
            profiles.append(profile)
            sys.setprofile(None)
            profile.enable()
            try:
                original(thread)
            finally:
                profile.disable()

        del owner
        threading.Thread.run = run  # type: ignore[method-assign]

    def stats(self) -> pstats.Stats:
        stats = pstats.Stats()
        for profile in self.profiles:
            profile.create_stats()
            if profile.stats:  # type: ignore[attr-defined]
                stats.add(profile)
        return stats


async def polls(bootstrap: str, redis_url: str) -> dict[str, Any]:
    cluster = ManagedCluster(ref=ClusterRef(name="bench", namespace="kafka", kafka="bench"), policy=ApprovalPolicy())
    inner = KafkaLagReader(KafkaAdminAdapter(client_id="bench-lag", call_deadline_s=30))
    reader = TimedReader(inner)
    poller = LagPoller(reader, SystemClock())  # type: ignore[arg-type]
    client = aioredis.from_url(redis_url, decode_responses=True)
    rule = cluster.alerts.consumer_lag
    walls, cpus, own, dumps, sets, loads, sizes = [], [], [], [], [], [], []
    profile = cProfile.Profile()
    report: LagReport | None = None
    try:
        await poller.poll(cluster, bootstrap, rule)  # the first poll: empty tables, timestamps fetched
        reader.spent.clear()
        await asyncio.sleep(1)
        for i in range(POLLS):
            before = {k: sum(v) for k, v in reader.spent.items()}
            wall, cpu = time.perf_counter(), time.process_time()
            if i == POLLS - 1:
                profile.enable()
            report = await poller.poll(cluster, bootstrap, rule)
            if i == POLLS - 1:
                profile.disable()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            in_reader = sum(sum(v) for k, v in reader.spent.items() if k.endswith("_wall")) - sum(
                v for k, v in before.items() if k.endswith("_wall"))
            own.append(walls[-1] - in_reader)
            t = time.process_time()
            doc = report.model_dump_json()
            dumps.append(time.process_time() - t)
            sizes.append(len(doc))
            t = time.perf_counter()
            await client.set("bench:lag", doc)
            sets.append(time.perf_counter() - t)
            t = time.process_time()
            LagReport.model_validate_json(doc)
            loads.append(time.process_time() - t)
            await asyncio.sleep(1)
    finally:
        await client.aclose()
        await inner.close()
    assert report is not None
    med = statistics.median
    return {
        "groups": len(report.groups), "pairs": sum(len(g.partitions) for g in report.groups),
        "poll_wall_s": [round(w, 3) for w in walls], "poll_wall_s_median": round(med(walls), 3),
        "poll_cpu_s_median": round(med(cpus), 3),
        "reader_calls_median_s": {k: round(med(v), 3) for k, v in sorted(reader.spent.items())},
        "poller_own_wall_s_median": round(med(own), 3),
        "poller_main_thread_own_time_s": by_area(pstats.Stats(profile), {
            "pydantic (PartitionLag/GroupLag/LagReport built per pair)": ("pydantic",),
            "lag_poll.py (lists per partition, report loop)": ("lag_poll.py",),
            "lag.py (the lag math)": ("runbooks/alerting/lag.py",),
            "asyncio (waiting on the reader's threads)": ("asyncio", "selectors", "concurrent"),
        }),
        "poller_phases_cumulative_s": cumulative(pstats.Stats(profile), (
            "_sample", "_readers", "_compute", "_fetch_timestamps", "_group_lag", "<genexpr>", "_nested")),
        "report_json_bytes": sizes[-1], "report_dump_cpu_s_median": round(med(dumps), 3),
        "report_redis_set_wall_s_median": round(med(sets), 3),
        "report_validate_cpu_s_median": round(med(loads), 3),
    }


def kafka_python_profile(bootstrap: str) -> dict[str, Any]:
    """The reader's requests once, from this thread, with every thread profiled."""
    threads = ThreadProfiles()
    threads.install()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=60_000)
    try:
        ids = sorted(str(g["group_id"]) for g in admin.list_groups())
        admin.describe_groups(ids)
        admin.list_group_offsets(ids)  # warm: connections to every coordinator
        profile = cProfile.Profile()
        wall, cpu = time.perf_counter(), time.process_time()
        profile.enable()
        admin.list_groups()
        admin.describe_groups(ids)
        fetched = admin.list_group_offsets(ids)
        tps = sorted({tp for offsets in fetched.values() if isinstance(offsets, dict) for tp in offsets},
                     key=lambda tp: (tp.topic, tp.partition))
        tps = [TopicPartition(tp.topic, tp.partition) for tp in tps]
        admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in tps})
        admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in tps})
        profile.disable()
        stats = threads.stats()
        stats.add(profile)
        return {"wall_s": round(time.perf_counter() - wall, 3), "cpu_s": round(time.process_time() - cpu, 3),
                "own_time_by_area_s": by_area(stats, {
                    "waiting (locks, select)": ("acquire", "select.epoll", "poll' of 'select", "wait"),
                    "protocol decoding/encoding (kafka/protocol)": ("kafka/protocol", "_struct", "decode"),
                    "admin client (kafka/admin)": ("kafka/admin",),
                    "network client and connections (kafka/client_async, kafka/conn, selectors, socket)": (
                        "kafka/client_async", "kafka/conn", "selectors", "socket", "ssl"),
                    "futures, metrics, rest of kafka-python": ("kafka/",),
                })}
    finally:
        admin.close()


def main() -> dict[str, Any]:
    shape: Shape = LARGE if "large" in sys.argv[1:] else SMALL
    figures: dict[str, Any] = {"shape": shape.__dict__, "pairs": shape.pairs, "load_average_start": load_average()}
    workdir = Path(tempfile.mkdtemp(prefix="kco-lag-profile-"))
    redis = RedisServer(workdir / "redis")
    redis.start()
    try:
        with sandbox("lprof") as info:
            started = time.perf_counter()
            populate(info.bootstrap_servers, shape)
            figures["populate_s"] = round(time.perf_counter() - started, 1)
            figures["admin_poll"] = asyncio.run(polls(info.bootstrap_servers, redis.url))
            figures["kafka_python_profile"] = kafka_python_profile(info.bootstrap_servers)
    finally:
        redis.cleanup()
    figures["load_average_end"] = load_average()
    print(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    main()
