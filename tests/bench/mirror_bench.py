"""MirrorMaker 2 benchmark (``make bench`` / ``python -m tests.bench mirror``, issue 14 §4).

Two fresh 3-broker Kafka 4.3.1 sandboxes, ``east`` and ``west``, in a private sandbox home; a real
redis-server; the bot as a console process managing both (each cluster its own kubeconfig).

1. ``mirror east west --topics 'orders.*'``, its approval given, timed from the approval to the first
   canary record seen on west (a consumer of west's ``east.kafka-chatops-canary-east-to-west``, polled
   every 0.1 s from the moment the approval is sent), and to the run's success; the bot's own canary
   figures (its round of 50 records, unloaded) are reported beside.
2. Steady latency under load: ``orders.load`` (3 partitions, RF 3) is produced at 1 MB/s (1,000
   records/s of 1,000 bytes, Kafka's ProducerPerformance) for ``--load-seconds`` (60), while a probe
   sends a timestamped record to the canary topic on east twice a second and reads it back on west;
   latency = seen on west - sent on east (one machine, one clock): p50 / p99 / max, records missing. Also what the load
   producer reported and how far west's copy of ``orders.load`` was behind when the load stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from bot.sandbox import jars
from tests.engine.harness import run_id_of, wait_for_run, waiting_on
from tests.fixtures.bot_process import BotProcess
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.sandbox import SandboxInfo, start_sandbox

USER = "console:bench"
NAME = "east-to-west"
CANARY = f"kafka-chatops-canary-{NAME}"
REMOTE_CANARY = f"east.{CANARY}"
LOAD_TOPIC = "orders.load"
LOAD_PARTITIONS = 3
RECORD = 1000  # bytes: 1,000 records/s is 1 MB/s
KAFKA_VERSION = "4.3.1"
LOAD_BYTES_PER_S = 1_000_000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def clusters_yaml(east: SandboxInfo, west: SandboxInfo) -> str:
    lines = ["clusters:"]
    for name, info in (("east", east), ("west", west)):
        lines += [f"  {name}:", f"    namespace: {info.namespace}", f"    kafka: {info.cluster}",
                  f"    kubeconfig: {info.kubeconfig}", f"    approvers: [{json.dumps(USER)}]", "    four_eyes: false"]
    return "\n".join(lines) + "\n"


class FirstRecord:
    """The monotonic time the first record of a topic is seen on a cluster (polling from ``start()``)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.seen_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="first-record", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None)
        try:
            while not self._stop.is_set() and self.topic not in consumer.topics():
                time.sleep(0.1)
            consumer.assign([TopicPartition(self.topic, 0)])
            consumer.seek_to_beginning()
            while not self._stop.is_set():
                if consumer.poll(timeout_ms=100):
                    self.seen_at = time.monotonic()
                    return
        finally:
            consumer.close()


def setup_mirror(east: SandboxInfo, west: SandboxInfo, redis: RedisServer, workdir: Path) -> tuple[BotProcess,
                                                                                                      dict[str, Any]]:
    config = workdir / "clusters.yaml"
    config.write_text(clusters_yaml(east, west))
    bot = BotProcess(user=USER, redis_url=redis.url, kubeconfig=west.kubeconfig, config_path=config, log_dir=workdir,
                     extra_env={"KAFKA_CHATOPS_POLL_INTERVAL": "0.3", "KAFKA_CHATOPS_MONITORS": "false"}).start()
    run_id = run_id_of(bot.command("mirror east west --topics 'orders.*'", timeout=120))
    wait_for_run(redis.url, run_id, waiting_on("create-mirror"), timeout=120, what="the approval request")
    watcher = FirstRecord(west.bootstrap_servers, REMOTE_CANARY)
    watcher.start()
    approved_at = time.monotonic()
    assert bot.command(f"approve {run_id} create-mirror")["event"] == "reply"
    run = wait_for_run(redis.url, run_id, lambda r: r["state"] in ("succeeded", "failed", "aborted", "paused"),
                       timeout=900, what="the mirror run to finish")
    done_at = time.monotonic()
    watcher.stop()
    canary = next(str(s.get("detail") or "") for s in run["steps"] if s["spec"]["id"] == "mirror-canary")
    return bot, {
        "run_state": run["state"],
        "approval_to_first_canary_record_on_target_s": None if watcher.seen_at is None
        else round(watcher.seen_at - approved_at, 2),
        "approval_to_run_succeeded_s": round(done_at - approved_at, 2),
        "bots_canary_round": canary,
    }


def start_load(bootstrap: str, seconds: float, log: Path) -> subprocess.Popen[bytes]:
    """Kafka's own ProducerPerformance at 1,000 records/s of 1,000 bytes: a JVM of its own, so the load
    takes nothing from the probe's Python process (a kafka-python producer at this rate would share
    the probe's interpreter and delay its reads)."""
    libs = jars.fetch(KAFKA_VERSION)
    rate = LOAD_BYTES_PER_S // RECORD
    cmd = ["java", "-Xmx256m", "-cp", f"{libs}/*", "org.apache.kafka.tools.ProducerPerformance",
           "--topic", LOAD_TOPIC, "--num-records", str(int(rate * seconds)), "--record-size", str(RECORD),
           "--throughput", str(rate), "--producer-props", f"bootstrap.servers={bootstrap}", "acks=1", "linger.ms=20"]
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def load_summary(log: Path) -> str:
    """ProducerPerformance's last line: records sent, records/s, MB/s, its own latencies."""
    lines = [line for line in log.read_text(errors="replace").splitlines() if "records sent" in line]
    return lines[-1].strip() if lines else f"no summary (see {log})"


def probe_latency(east: SandboxInfo, west: SandboxInfo, seconds: float) -> dict[str, Any]:
    """Timestamped canary records on east, read back on west, while the load runs."""
    consumer = KafkaConsumer(bootstrap_servers=west.bootstrap_servers, enable_auto_commit=False, group_id=None)
    tp = TopicPartition(REMOTE_CANARY, 0)
    consumer.assign([tp])
    consumer.seek_to_end(tp)
    consumer.position(tp)
    producer = KafkaProducer(bootstrap_servers=east.bootstrap_servers, acks="all", linger_ms=0)
    marker = f"bench-{time.time_ns()}"
    sent: dict[int, float] = {}
    latencies: dict[int, float] = {}
    start = time.monotonic()
    try:
        n = 0
        while True:
            elapsed = time.monotonic() - start
            if elapsed >= seconds and (len(latencies) >= len(sent) or elapsed >= seconds + 30):
                break
            if elapsed < seconds and elapsed >= n * 0.5:
                sent[n] = time.time()
                producer.send(CANARY, f"{marker}:{n}:{sent[n]!r}".encode(), partition=0)
                producer.flush(timeout=10)
                n += 1
            for records in consumer.poll(timeout_ms=50).values():
                now = time.time()
                for record in records:
                    parts = (record.value or b"").decode(errors="replace").split(":")
                    if len(parts) == 3 and parts[0] == marker:
                        latencies.setdefault(int(parts[1]), (now - float(parts[2])) * 1000)
    finally:
        producer.close(timeout=10)
        consumer.close()
    values = list(latencies.values())
    return {"probe_records_sent": len(sent), "probe_records_missing": len(sent) - len(latencies),
            "latency_p50_ms": round(statistics.median(values), 1) if values else None,
            "latency_p99_ms": round(percentile(values, 0.99), 1) if values else None,
            "latency_max_ms": round(max(values), 1) if values else None}


def behind(east: SandboxInfo, west: SandboxInfo) -> int:
    def total(bootstrap: str, topic: str) -> int:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap)
        try:
            return sum(consumer.end_offsets([TopicPartition(topic, p) for p in range(LOAD_PARTITIONS)]).values())
        finally:
            consumer.close()
    return total(east.bootstrap_servers, LOAD_TOPIC) - total(west.bootstrap_servers, f"east.{LOAD_TOPIC}")


def main() -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m tests.bench mirror")
    parser.add_argument("--load-seconds", type=float, default=60.0)
    args, _ = parser.parse_known_args(sys.argv[1:])
    os.environ["KAFKA_CHATOPS_SANDBOX_HOME"] = tempfile.mkdtemp(prefix="kco-mirror-bench-")
    workdir = Path(tempfile.mkdtemp(prefix="kco-mirror-bench-work-"))
    redis = RedisServer(workdir / "redis")
    redis.start()
    started: list[SandboxInfo] = []
    bot: BotProcess | None = None
    try:
        t0 = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(start_sandbox, name, brokers=3, kafka_version=KAFKA_VERSION)
                       for name in ("bench-east", "bench-west")]
            started += [f.result() for f in futures]
        east, west = started
        result: dict[str, Any] = {"two_sandboxes_up_s": round(time.monotonic() - t0, 1)}
        admin = KafkaAdminClient(bootstrap_servers=east.bootstrap_servers)
        try:
            admin.create_topics([NewTopic(LOAD_TOPIC, LOAD_PARTITIONS, 3)])
        finally:
            admin.close()
        bot, figures = setup_mirror(east, west, redis, workdir)
        result.update(figures)
        if figures["run_state"] == "succeeded":
            load = start_load(east.bootstrap_servers, args.load_seconds, workdir / "load.log")
            time.sleep(3)  # its JVM started and producing: the probe measures under load, not beside a start
            result.update(probe_latency(east, west, args.load_seconds))
            load.wait(timeout=120)
            result["load"] = load_summary(workdir / "load.log")
            result["load_records_behind_at_end"] = behind(east, west)
            time.sleep(10)
            result["load_records_behind_10s_later"] = behind(east, west)
        result["loadavg_at_end"] = os.getloadavg()[0]
    finally:
        if bot is not None:
            bot.stop()
        for info in started:
            info.down()
        redis.cleanup()
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
