"""1,000,000 pairs on a sandbox (``python -m tests.bench lag-stream huge``): issue #17 §3's "runs
without falling behind", measured on real brokers with the workload of ``tests.bench.lag_workload``
(``HUGE``: 2,000 groups each reading 500 of 20,000 partitions, one-byte records).

1. the sandbox's cost of holding 20,000 partitions: each broker's RSS, live heap (after a full GC),
   open files and memory maps, against the heap given (``KCO_BENCH_HEAP_MB``, default 1024), the
   ``ulimit -n`` and ``vm.max_map_count`` of this machine;
2. the replay of ``__consumer_offsets`` (1,000,000 commit records) to caught up, records per second;
3. the lag job as ``bot/monitors/scheduler.py`` runs it for a streamed cluster, for ``PHASE_S``
   seconds with nothing moving, then as long with another process committing for the groups as
   fast as the sandbox takes it: a tick every second, an evaluation at a tick unless the last one
   started less than twice its duration ago, the report built for Redis once per ``lag_poll_s``
   inside the job as the monitor does. Evaluations run, ticks skipped, wall and CPU, and whether the
   stream had applied every commit when the committer stopped;
4. this process's RSS (stream state, poller, report) along the way.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bot.clock import SystemClock
from bot.kafka.admin import KafkaAdminAdapter
from bot.kafka.lag import KafkaLagReader
from bot.kafka.lag_stream import StreamingLagReader
from handlers.alerting.lag_document import lag_document
from handlers.alerting.lag_poll import LagPoller
from handlers.clusters import ManagedCluster
from handlers.ports import ClusterRef
from runbooks.engine.models import ApprovalPolicy
from tests.bench.lag_workload import HUGE, Shape, load_average, log, populate, sandbox
from tests.bench.sandbox_bench import rss_mb

PHASE_S = 60.0
BUSY_FACTOR = 2.0  # bot/monitors/scheduler.py LAG_BUSY_FACTOR
BACKLOG_CAP_S = 300.0


def heap_mb() -> int:
    return int(os.environ.get("KCO_BENCH_HEAP_MB", "1024"))


def broker_pids(home: str) -> dict[int, int]:
    """node id -> pid of this sandbox's broker JVMs (their command lines name the sandbox home)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        node = next((a.split("=", 1)[1] for a in cmdline if a.startswith("-Dkafka.chatops.node=")), None)
        if node is not None and any(home in a for a in cmdline):
            found[int(node)] = int(entry.name)
    return found


def live_heap_mb(pid: int) -> float | None:
    """Heap in use after a full GC (SerialGC: the new and tenured generations' ``used``)."""
    try:
        subprocess.run(["jcmd", str(pid), "GC.run"], capture_output=True, timeout=60, check=True)
        out = subprocess.run(["jcmd", str(pid), "GC.heap_info"], capture_output=True, text=True, timeout=60,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    used = [int(k) for k in re.findall(r"generation\s+total \d+K, used (\d+)K", out)]
    return round(sum(used) / 1024, 1) if used else None


def brokers(home: str) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for node, pid in sorted(broker_pids(home).items()):
        try:
            fds = len(os.listdir(f"/proc/{pid}/fd"))
            maps = len(Path(f"/proc/{pid}/maps").read_text().splitlines())
            figures[f"node_{node}"] = {"rss_mb": round(rss_mb(pid), 1), "live_heap_mb": live_heap_mb(pid),
                                       "open_files": fds, "memory_maps": maps}
        except OSError as exc:
            figures[f"node_{node}"] = {"gone": str(exc)}
    return figures


def self_memory() -> dict[str, float]:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {"rss_mb": round(int(status["VmRSS"].split()[0]) / 1024, 1),
            "peak_rss_mb": round(int(status["VmHWM"].split()[0]) / 1024, 1)}


def spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"median": round(statistics.median(values), 3), "worst": round(max(values), 3),
            "best": round(min(values), 3)}


async def lag_job(poller: LagPoller, cluster: ManagedCluster, bootstrap: str, seconds: float) -> dict[str, Any]:
    """The lag job's ticks for ``seconds`` (see the module's docstring, point 3)."""
    rule = cluster.alerts.consumer_lag
    begin, cpu_begin = time.perf_counter(), time.process_time()
    tick, last_start, last_duration, report_at = begin, None, 0.0, None
    walls, cpus, jobs, reports, starts, recomputed = [], [], [], [], [], []
    spaced = missed = 0
    while tick < begin + seconds:
        await asyncio.sleep(max(0.0, tick - time.perf_counter()))
        now = time.perf_counter()
        if last_start is not None and now - last_start < BUSY_FACTOR * last_duration:
            spaced += 1
        else:
            cpu = time.process_time()
            snapshot = await poller.measure(cluster, bootstrap, rule)
            snapshot.stats()
            recomputed.append(snapshot.recomputed)
            walls.append(time.perf_counter() - now)
            cpus.append(time.process_time() - cpu)
            if report_at is None or now - report_at >= 0.9 * cluster.alerts.lag_poll_s:
                report = time.process_time()
                lag_document(snapshot)
                reports.append(time.process_time() - report)
                report_at = now
            last_start, last_duration = now, time.perf_counter() - now
            jobs.append(last_duration)
            starts.append(now)
        tick += 1.0
        while tick < time.perf_counter():  # ticks that came while the job ran: APScheduler skips them
            tick += 1.0
            missed += 1
    elapsed = time.perf_counter() - begin
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    return {"seconds": round(elapsed, 1), "ticks": len(walls) + spaced + missed, "evaluations": len(walls),
            "ticks_spaced_by_busy_factor": spaced, "ticks_missed_while_running": missed,
            "evaluation_wall_s": spread(walls), "evaluation_cpu_s": spread(cpus),
            "job_wall_s_with_report": spread(jobs), "report_cpu_s": spread(reports),
            "seconds_between_evaluations": spread(gaps),
            "partitions_recomputed": spread([float(n) for n in recomputed]),
            "cpu_share_of_a_core": round((time.process_time() - cpu_begin) / elapsed, 3),
            "memory": self_memory()}


async def with_committer(poller: LagPoller, cluster: ManagedCluster, bootstrap: str, reader: StreamingLagReader,
                         seconds: float) -> dict[str, Any]:
    state = reader.streams["bench"].state
    records_before = state.records
    committer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bench.lag_stream_bench", "commit", bootstrap, "huge", str(seconds + 3),
        stdout=asyncio.subprocess.PIPE)
    await asyncio.sleep(3)  # the committer connects and starts
    figures = await lag_job(poller, cluster, bootstrap, seconds)
    out, _ = await asyncio.wait_for(committer.communicate(), timeout=seconds + 120)
    stopped = time.perf_counter()
    figures["committer"] = json.loads(out.decode().strip().splitlines()[-1])
    committed = figures["committer"]["records"]
    # The stream applies what was committed: how far behind it was when the committer stopped.
    for _ in range(2400):  # 120 s at most
        if state.records - records_before >= committed:
            break
        await asyncio.sleep(0.05)
    figures["stream_applied_records"] = state.records - records_before
    figures["stream_behind_when_committer_stopped_s"] = round(time.perf_counter() - stopped, 2)
    return figures


async def stream_and_evaluate(bootstrap: str) -> dict[str, Any]:
    cluster = ManagedCluster(ref=ClusterRef(name="bench", namespace="kafka", kafka="bench"), policy=ApprovalPolicy())
    reader = StreamingLagReader(KafkaLagReader(KafkaAdminAdapter(client_id="bench-lag", call_deadline_s=60)))
    poller = LagPoller(reader, SystemClock(), sample_spacing_s=15.0, timestamps_in_background=True)
    figures: dict[str, Any] = {"memory_before_stream": self_memory()}
    try:
        started = time.perf_counter()
        await reader.committed_offsets(cluster.ref, bootstrap, [])
        while not reader.streaming("bench"):
            assert time.perf_counter() - started < 900, reader.source("bench")
            await asyncio.sleep(0.02)
        state = reader.streams["bench"].state
        replay = time.perf_counter() - started
        figures["replay"] = {"seconds": round(replay, 2), "records": state.records, "pairs": state.pairs(),
                             "records_per_s": round(state.records / replay), "memory": self_memory()}
        log(f"replayed {state.records} records in {replay:.1f} s")
        started = time.perf_counter()
        polls = 0
        while time.perf_counter() - started < BACKLOG_CAP_S:
            snapshot = await poller.measure(cluster, bootstrap, cluster.alerts.consumer_lag)
            polls += 1
            unknown = sum(s.max_lag_seconds is None for s in snapshot.stats().values())
            if not unknown:
                break
            await asyncio.sleep(1)
        figures["record_times"] = {"seconds": round(time.perf_counter() - started, 1), "polls": polls,
                                   "groups_without_seconds": unknown, "pairs_evaluated":
                                   sum(len(e.groups) for e in snapshot.readers.values()), "memory": self_memory()}
        log(f"record times: {figures['record_times']}")
        figures["nothing_moving"] = await lag_job(poller, cluster, bootstrap, PHASE_S)
        log(f"nothing moving: {figures['nothing_moving']}")
        figures["committer_moving"] = await with_committer(poller, cluster, bootstrap, reader, PHASE_S)
        log(f"committer: {figures['committer_moving']}")
    finally:
        await reader.close()
    return figures


def main() -> dict[str, Any]:
    shape: Shape = HUGE
    figures: dict[str, Any] = {"shape": shape.__dict__, "pairs": shape.pairs, "heap_mb": heap_mb(),
                               "ulimit_n": subprocess.run(["sh", "-c", "ulimit -n"], capture_output=True,
                                                          text=True).stdout.strip(),
                               "max_map_count": Path("/proc/sys/vm/max_map_count").read_text().strip(),
                               "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                               "load_average_start": load_average()}
    try:  # the figures so far are printed whatever stops the run (what limited it is the point)
        with sandbox("lhuge", "--heap-mb", str(heap_mb()), "--timeout", "600") as info:
            home = os.environ["KAFKA_CHATOPS_SANDBOX_HOME"]
            figures["brokers_empty"] = brokers(home)
            stages: dict[str, float] = {}
            try:
                populate(info.bootstrap_servers, shape, stages)
            finally:
                figures["populate"] = stages
                figures["brokers_populated"] = brokers(home)
                figures["load_average_populated"] = load_average()
                log(f"populated: {stages} {figures['brokers_populated']}")
            figures["evaluation"] = asyncio.run(stream_and_evaluate(info.bootstrap_servers))
            figures["brokers_end"] = brokers(home)
    finally:
        figures["load_average_end"] = load_average()
        print(json.dumps(figures, indent=1), flush=True)
    return figures
