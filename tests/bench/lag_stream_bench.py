"""Streamed lag monitoring against issue #17 §3 (``python -m tests.bench lag-stream [small|large]``),
on a fresh sandbox with the workload of ``tests.bench.lag_workload``:

1. the replay of ``__consumer_offsets`` (stream start to caught up) and what the state costs per pair;
2. one evaluation as the monitor runs it every second (``LagPoller.measure``: the cached group
   list, committed offsets from memory, one ListOffsets per leader, the lag math; then
   ``LagSnapshot.stats``, the figures the lag rules read), wall and CPU, and the full report built
   for Redis (once per ``lag_poll_s``);
3. steady CPU of that process while another process commits for every group as fast as it can
   (its commit rate is reported: on this machine it is what the sandbox takes, not one commit per
   group per second at 100,000 pairs): 15 s with the stream alone (its CPU per record), then 15 s
   with an evaluation every second;
4. the bot itself (``kafka-chatops console``, streaming): RSS with three small clusters (before the
   workload is built), RSS monitoring the workload, and the
   time from a producer pushing a stopped group over ``max_lag`` to the alert posted (``for: 0s``),
   streamed and with ``KAFKA_CHATOPS_LAG_STREAM=0`` (the admin API every ``lag_poll_s``).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kafka import KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, OffsetSpec
from kafka.structs import OffsetAndMetadata

from bot.clock import SystemClock
from bot.kafka.admin import KafkaAdminAdapter
from bot.kafka.lag import KafkaLagReader
from bot.kafka.lag_stream import StreamingLagReader
from bot.kafka.offsets_stream import OffsetsStream
from handlers.alerting.lag_document import lag_document
from handlers.alerting.lag_poll import LagPoller
from handlers.clusters import ManagedCluster
from handlers.ports import ClusterRef
from runbooks.engine.models import ApprovalPolicy
from tests.bench.lag_workload import SHAPES, Shape, load_average, populate, sandbox, shape_named
from tests.bench.sandbox_bench import rss_mb
from tests.fixtures.bot_process import BotProcess
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.sandbox import SandboxInfo

EVALUATIONS = 15


def state_bytes(offsets: dict[str, dict[str, dict[int, int]]]) -> int:
    """The streamed state's own memory: its dicts and offset ints (names are interned, shared)."""
    total = sys.getsizeof(offsets)
    for topics in offsets.values():
        total += sys.getsizeof(topics)
        for partitions in topics.values():
            total += sys.getsizeof(partitions) + sum(sys.getsizeof(o) for o in partitions.values())
    return total


async def evaluations(bootstrap: str, shape: Shape, committer_s: float) -> dict[str, Any]:
    cluster = ManagedCluster(ref=ClusterRef(name="bench", namespace="kafka", kafka="bench"), policy=ApprovalPolicy())
    reader = StreamingLagReader(KafkaLagReader(KafkaAdminAdapter(client_id="bench-lag", call_deadline_s=30)))
    poller = LagPoller(reader, SystemClock(), sample_spacing_s=15.0, timestamps_in_background=True)  # as the monitor
    rule = cluster.alerts.consumer_lag
    figures: dict[str, Any] = {}
    try:
        started = time.perf_counter()
        await reader.committed_offsets(cluster.ref, bootstrap, [])
        while not reader.streaming("bench"):
            assert time.perf_counter() - started < 600, reader.source("bench")
            await asyncio.sleep(0.02)
        stream = reader.streams["bench"]
        pairs = stream.state.pairs()
        figures["replay_s"] = round(time.perf_counter() - started, 2)
        figures["replayed_records"] = stream.state.records
        figures["streamed_pairs"] = pairs
        figures["state_bytes_per_pair"] = round(state_bytes(stream.state.offsets) / max(pairs, 1))
        # The first polls: groups described, and the stuck consumers' record times read (200 a poll,
        # in the background) until every group's seconds are known: the steady state measured below.
        started = time.perf_counter()
        while True:
            snapshot = await poller.measure(cluster, bootstrap, rule)
            if all(s.max_lag_seconds is not None for s in snapshot.stats().values()) or \
                    time.perf_counter() - started > 300:
                break
            await asyncio.sleep(1)
        figures["record_times_backlog_s"] = round(time.perf_counter() - started, 1)
        walls, cpus, stats_cpu, recomputed = [], [], [], []
        requests = reader._ends["bench"].requests
        for _ in range(EVALUATIONS):
            await asyncio.sleep(1)
            wall, cpu = time.perf_counter(), time.process_time()
            snapshot = await poller.measure(cluster, bootstrap, rule)
            t = time.process_time()
            snapshot.stats()
            stats_cpu.append(time.process_time() - t)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            recomputed.append(snapshot.recomputed)
        figures["list_offsets_requests_per_evaluation"] = (reader._ends["bench"].requests - requests) / EVALUATIONS
        figures["partitions_recomputed_per_evaluation"] = statistics.median(recomputed)
        t = time.process_time()
        doc = lag_document(snapshot).text  # what the monitor stores for the other replicas
        figures["report_build_and_dump_cpu_s"] = round(time.process_time() - t, 3)
        figures["report_json_bytes"] = len(doc)
        figures["pairs_evaluated"] = sum(len(entry.groups) for entry in snapshot.readers.values())
        figures["evaluation_wall_s_median"] = round(statistics.median(walls), 3)
        figures["evaluation_wall_s_range"] = [round(min(walls), 3), round(max(walls), 3)]
        figures["evaluation_cpu_s_median"] = round(statistics.median(cpus), 3)
        figures["stats_cpu_s_median"] = round(statistics.median(stats_cpu), 4)
        if committer_s:
            figures["steady"] = await steady(bootstrap, shape, poller, cluster, committer_s,
                                             reader.streams["bench"])
    finally:
        await reader.close()
    return figures


async def steady(bootstrap: str, shape: Shape, poller: LagPoller, cluster: ManagedCluster,
                 seconds: float, stream: OffsetsStream) -> dict[str, Any]:
    """The process's CPU while the committer runs: the first half with the stream alone (what
    reading ``__consumer_offsets`` costs between evaluations), then with an evaluation every second."""
    committer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.bench.lag_stream_bench", "commit", bootstrap,
        next(n for n, s in SHAPES.items() if s is shape), str(seconds + 5), stdout=asyncio.subprocess.PIPE)
    await asyncio.sleep(3)  # the committer connects and starts
    cpu, wall, records = time.process_time(), time.perf_counter(), stream.state.records
    await asyncio.sleep(seconds / 2)
    stream_cpu, stream_wall = time.process_time() - cpu, time.perf_counter() - wall
    stream_records = stream.state.records - records
    cpu, wall = time.process_time(), time.perf_counter()
    rule = cluster.alerts.consumer_lag
    deadline = wall + seconds / 2
    while time.perf_counter() < deadline:
        tick = time.perf_counter()
        (await poller.measure(cluster, bootstrap, rule)).stats()
        await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - tick)))
    used, spent = time.process_time() - cpu, time.perf_counter() - wall
    out, _ = await asyncio.wait_for(committer.communicate(), timeout=seconds + 60)
    return {"stream_only_seconds": round(stream_wall, 1),
            "stream_only_records_per_s": round(stream_records / stream_wall),
            "stream_only_cpu_share_of_a_core": round(stream_cpu / stream_wall, 4),
            "stream_only_cpu_us_per_record": round(1e6 * stream_cpu / max(1, stream_records), 2),
            "with_evaluations_seconds": round(spent, 1), "cpu_share_of_a_core": round(used / spent, 3),
            "committer": json.loads(out.decode().strip().splitlines()[-1])}


def commit_loop(bootstrap: str, shape: Shape, seconds: float) -> None:
    """Commit every group's offsets (all its partitions, one request per group) as fast as the
    sandbox takes it, for ``seconds``; print the rate (and the groups reached: at 1,000,000 pairs a
    round over every group takes longer than a second)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    groups = shape.group_topics()
    deadline, rounds, records, commits = time.monotonic() + seconds, 0, 0, 0
    offset = 3
    while time.monotonic() < deadline:
        offset = 3 + rounds % 5
        for group, reads in groups.items():
            offsets = {TopicPartition(t, p): OffsetAndMetadata(offset, "", -1)
                       for t in reads for p in range(shape.partitions)}
            admin.alter_group_offsets(group, offsets)
            records += len(offsets)
            commits += 1
            if time.monotonic() >= deadline:
                break
        rounds += 1
    admin.close()
    print(json.dumps({"rounds": rounds, "commit_records_per_s": round(records / seconds), "records": records,
                      "group_commits": commits, "groups": len(groups),
                      "group_commits_per_s": round(commits / seconds, 1)}))


def bot_figures(info: SandboxInfo, shape: Shape, workdir: Path) -> dict[str, Any]:
    redis = RedisServer(workdir / "redis")
    redis.start()
    figures: dict[str, Any] = {}
    admin = KafkaAdminClient(bootstrap_servers=info.bootstrap_servers)
    producer = KafkaProducer(bootstrap_servers=info.bootstrap_servers, linger_ms=0)
    try:
        for mode, env in (("streamed", {}), ("admin_api", {"KAFKA_CHATOPS_LAG_STREAM": "0"})):
            group = f"latency-{mode}"
            topic = shape.topic_names()[0]
            tp = TopicPartition(topic, 0)
            end = admin.list_partition_offsets({tp: OffsetSpec.LATEST})[tp].offset
            admin.alter_group_offsets(group, {tp: OffsetAndMetadata(end, "", -1)})  # caught up, then stopped
            config = workdir / f"{mode}.yaml"
            config.write_text(
                f"clusters:\n  {info.cluster}:\n    namespace: {info.namespace}\n    kafka: {info.cluster}\n"
                "    approvers: [console:bench]\n    alerts: {lag_poll: 15s, consumer_lag: {for: 0s, max_lag: 100, "
                "max_lag_seconds: 1d, growth: {enabled: false}}}\n")
            process = BotProcess(user=f"console:{mode}", redis_url=redis.url, kubeconfig=info.kubeconfig,
                                 config_path=config, log_dir=workdir, extra_env=env).start()
            try:
                time.sleep(45)  # started, streaming (the replay), polling
                assert process._process is not None
                figures[f"{mode}_bot_rss_mb"] = round(rss_mb(process._process.pid), 1)
                for _ in range(150):
                    producer.send(topic, b"y" * 100, partition=0)
                producer.flush()
                pushed = time.monotonic()
                process.expect(lambda e, g=group: e.get("event") == "alert_posted" and e.get("subject") == f"group:{g}",
                               timeout=60, what="the lag alert")
                figures[f"{mode}_push_to_alert_s"] = round(time.monotonic() - pushed, 2)
            finally:
                process.stop()
    finally:
        producer.close()
        admin.close()
        redis.cleanup()
    return figures


def idle_rss(info: SandboxInfo, workdir: Path) -> float:
    """A bot (console front end, monitors and watches on, streaming) with three small clusters
    (three entries on the fresh sandbox, before the workload exists), RSS after 30 s."""
    redis = RedisServer(workdir / "idle-redis")
    redis.start()
    config = workdir / "idle.yaml"
    config.write_text("clusters:\n" + "".join(
        f"  {name}:\n    namespace: {info.namespace}\n    kafka: {info.cluster}\n    approvers: [console:bench]\n"
        for name in ("east", "west", "north")))
    process = BotProcess(user="console:idle", redis_url=redis.url, kubeconfig=info.kubeconfig, config_path=config,
                         log_dir=workdir).start()
    try:
        time.sleep(30)
        assert process._process is not None
        return round(rss_mb(process._process.pid), 1)
    finally:
        process.stop()
        redis.cleanup()


def main() -> dict[str, Any]:
    name, shape = shape_named(sys.argv[1:])
    if name == "huge":  # its own sequence: the sandbox's limits first, the lag job's cadence for a minute
        from tests.bench import lag_huge_bench
        return lag_huge_bench.main()
    figures: dict[str, Any] = {"shape": shape.__dict__, "pairs": shape.pairs, "load_average_start": load_average()}
    workdir = Path(tempfile.mkdtemp(prefix="kco-lag-stream-"))
    with sandbox("lstream") as info:
        figures["idle_bot_three_clusters_rss_mb"] = idle_rss(info, workdir)
        started = time.perf_counter()
        populate(info.bootstrap_servers, shape)
        figures["populate_s"] = round(time.perf_counter() - started, 1)
        figures["evaluation"] = asyncio.run(evaluations(info.bootstrap_servers, shape, 30.0))
        figures["bot"] = bot_figures(info, shape, workdir)
    figures["load_average_end"] = load_average()
    print(json.dumps(figures, indent=1))
    return figures


if __name__ == "__main__":
    if sys.argv[1:2] == ["commit"]:
        commit_loop(sys.argv[2], SHAPES[sys.argv[3]], float(sys.argv[4]))
    else:
        main()
