"""Alert and lag benchmarks on a fresh sandbox (``python -m tests.bench alerts``):

1. resident memory of an idle bot (console front end) monitoring three clusters, after 30 s;
2. one lag poll (``LagPoller`` over ``KafkaLagReader``) with 200 consumer groups over 2,000
   partitions (20 topics x 100 partitions; 10 groups per topic, half caught up, half behind):
   the first poll (empty sample tables, record timestamps fetched within the per-poll budget) and
   the steady ones after it;
3. a broker kill reaching the channel: ``kill-broker`` to the first alert the bot prints, with the
   default 5 s health poll, against the moment Kafka itself reports the broker gone.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kafka import KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata

from bot.clock import SystemClock
from bot.kafka.admin import KafkaAdminAdapter
from bot.kafka.lag import KafkaLagReader
from handlers.alerting.lag_poll import LagPoller
from handlers.clusters import ManagedCluster
from handlers.ports import ClusterRef
from runbooks.engine.models import ApprovalPolicy
from tests.bench.sandbox_bench import rss_mb
from tests.fixtures.bot_process import BotProcess
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.sandbox import SandboxInfo

TOPICS, PARTITIONS, GROUPS_PER_TOPIC = 20, 100, 10


def clusters_yaml(sandbox: SandboxInfo, names: list[str], block: str = "{}") -> str:
    lines = ["clusters:"]
    for name in names:
        lines += [f"  {name}:", f"    namespace: {sandbox.namespace}", f"    kafka: {sandbox.cluster}",
                  "    approvers: [console:bench]", f"    alerts: {block}"]
    return "\n".join(lines) + "\n"


def start_bot(sandbox: SandboxInfo, redis: RedisServer, workdir: Path, names: list[str], user: str) -> BotProcess:
    config = workdir / f"{user}.yaml"
    config.write_text(clusters_yaml(sandbox, names))
    return BotProcess(user=f"console:{user}", redis_url=redis.url, kubeconfig=sandbox.kubeconfig,
                      config_path=config, log_dir=workdir).start()


def idle_rss(sandbox: SandboxInfo, redis: RedisServer, workdir: Path) -> float:
    process = start_bot(sandbox, redis, workdir, ["east", "west", "north"], "idle")
    try:
        time.sleep(30)
        assert process._process is not None
        return round(rss_mb(process._process.pid), 1)
    finally:
        process.stop()


def populate(bootstrap: str) -> list[str]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=60000)
    topics = [f"bench-{i:02d}" for i in range(TOPICS)]
    admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics], timeout_ms=60000)
    time.sleep(5)  # leaders for 2,000 partitions
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=65536)
    for t in topics:
        for p in range(PARTITIONS):
            for _ in range(10):
                producer.send(t, b"x" * 100, partition=p)
    producer.flush(timeout=120)
    producer.close()
    for t in topics:
        for g in range(GROUPS_PER_TOPIC):
            offset = 10 if g % 2 == 0 else 3  # half caught up, half behind
            offsets = {TopicPartition(t, p): OffsetAndMetadata(offset, "", -1) for p in range(PARTITIONS)}
            for _ in range(20):
                try:
                    admin.alter_group_offsets(f"{t}-group-{g}", offsets)
                    break
                except Exception:  # the coordinator of a fresh __consumer_offsets is still coming up
                    time.sleep(0.5)
    admin.close()
    return topics


async def lag_polls(sandbox: SandboxInfo) -> dict[str, Any]:
    cluster = ManagedCluster(ref=ClusterRef(name=sandbox.cluster, namespace=sandbox.namespace, kafka=sandbox.cluster),
                             policy=ApprovalPolicy())
    reader = KafkaLagReader(KafkaAdminAdapter(client_id="bench-lag", call_deadline_s=10))
    poller = LagPoller(reader, SystemClock())
    walls = []
    try:
        for _ in range(6):
            start = time.monotonic()
            report = await poller.poll(cluster, sandbox.bootstrap_servers, cluster.alerts.consumer_lag)
            walls.append(time.monotonic() - start)
            await asyncio.sleep(1)
    finally:
        await reader.close()
    pairs = sum(len(g.partitions) for g in report.groups)
    return {"groups": len(report.groups), "pairs": pairs, "first_poll_wall_s": round(walls[0], 3),
            "steady_poll_wall_s": [round(w, 3) for w in walls[1:]],
            "steady_poll_wall_s_median": round(statistics.median(walls[1:]), 3)}


def broker_kill(sandbox: SandboxInfo, redis: RedisServer, workdir: Path) -> dict[str, Any]:
    admin = KafkaAdminClient(bootstrap_servers=sandbox.bootstrap_servers)
    admin.create_topics([NewTopic("kill-bench", 6, 3, topic_configs={"min.insync.replicas": "2"})])
    process = start_bot(sandbox, redis, workdir, [sandbox.cluster], "kill")  # default rules: 5 s health poll
    try:
        time.sleep(12)
        kafka_saw: list[float] = []

        def watch() -> None:
            while not kafka_saw:
                try:
                    brokers = admin.describe_cluster().get("brokers", [])
                    if any(b.get("broker_id") == 2 and b.get("is_fenced") for b in brokers) or 2 not in {
                            b.get("broker_id") for b in brokers}:
                        kafka_saw.append(time.monotonic())
                except Exception:
                    pass
                time.sleep(0.1)

        killed = time.monotonic()
        subprocess.run([sys.executable, "-m", "bot", "sandbox", "kill-broker", "2", "--name", sandbox.name,
                        "--down-for", "30"], check=True, capture_output=True)
        threading.Thread(target=watch, daemon=True).start()
        first = process.expect(lambda e: e.get("event") == "alert_posted", timeout=90, what="the first alert")
        alerted = time.monotonic()
        from_kafka = process.expect(lambda e: e.get("event") == "alert_posted" and e.get("condition") in (
            "broker_down", "under_replicated"), timeout=90, what="the first alert from Kafka's own view")
        kafka_alerted = time.monotonic()
        deadline = time.monotonic() + 30
        while not kafka_saw and time.monotonic() < deadline:
            time.sleep(0.1)
        return {"first_alert": f"{first['condition']} {first['subject']}",
                "kill_to_first_alert_s": round(alerted - killed, 2),
                "first_kafka_alert": f"{from_kafka['condition']} {from_kafka['subject']}",
                "kill_to_kafka_reports_s": round(kafka_saw[0] - killed, 2) if kafka_saw else None,
                "kill_to_kafka_alert_s": round(kafka_alerted - killed, 2),
                "kafka_reports_to_kafka_alert_s": round(kafka_alerted - kafka_saw[0], 2) if kafka_saw else None}
    finally:
        process.stop()
        admin.close()


def main() -> dict[str, Any]:
    os.environ["KAFKA_CHATOPS_SANDBOX_HOME"] = tempfile.mkdtemp(prefix="kco-alerts-bench-")
    workdir = Path(tempfile.mkdtemp(prefix="kco-alerts-bench-work-"))
    proc = subprocess.run([sys.executable, "-m", "bot", "sandbox", "up", "--name", "abench", "--json"],
                          capture_output=True, text=True, check=True)
    sandbox = SandboxInfo.from_up_json(json.loads(proc.stdout))
    redis = RedisServer(workdir / "redis")
    redis.start()
    figures: dict[str, Any] = {}
    try:
        figures["idle_bot_three_clusters_rss_mb"] = idle_rss(sandbox, redis, workdir)
        populate(sandbox.bootstrap_servers)
        figures["lag_poll"] = asyncio.run(lag_polls(sandbox))
        figures["broker_kill"] = broker_kill(sandbox, redis, workdir)
    finally:
        redis.cleanup()
        subprocess.run([sys.executable, "-m", "bot", "sandbox", "down", "--name", "abench"], check=False)
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
