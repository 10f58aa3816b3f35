"""Upgrade benchmark (``python -m tests.bench upgrade``): the bot's 4.2.2 -> 4.3.1 upgrade with instant
approvals, against the time Kafka itself needs to bring each broker back.

A fresh 3-broker sandbox at 4.2.2 with a topic of RF 3 / min ISR 2; a real redis-server; the bot as
two console processes (requester, and an approver that approves each step the moment it is asked).
While the run goes, an observer polls the broker pods (every 100 ms) and the partitions' ISR (as fast
as Kafka answers) and records, per broker, the moment its restart began (pod not Ready or a new uid)
and the moment it was back in the ISR of every partition it hosts with its new pod Ready.

Ratio = the run's wall time (command sent -> run finished) / the sum of those per-broker
restart-to-back-in-ISR times. What is left over is everything that is not a broker coming back:
pre-flight, the pin and metadata patches and the operator's reconciliations behind them, the
operator's own pace between brokers (its canRoll back-off), verification, and the bot's waiting.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka.admin import KafkaAdminClient
from kubernetes import client

from tests.engine.harness import APPROVER, REQUESTER, bot, read_run, run_id_of, write_clusters_file
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.sandbox import SandboxInfo, kube_api_client
from tests.sandbox.cluster_helpers import StrimziCluster

NAME = "upbench"
TOPIC = "orders"


class RestartObserver:
    """Per broker: when its restart began and when it was back (new pod Ready, in every ISR it belongs to)."""

    def __init__(self, sandbox: SandboxInfo) -> None:
        self._core = client.CoreV1Api(kube_api_client(sandbox.kubeconfig))
        self._namespace = sandbox.namespace
        self._selector = f"strimzi.io/cluster={sandbox.cluster},strimzi.io/broker-role=true"
        self._admin = KafkaAdminClient(bootstrap_servers=sandbox.bootstrap_servers, request_timeout_ms=5000,
                                       client_id="upgrade-bench-observer")
        self.initial = self._pods()
        self.began: dict[int, float] = {}
        self.back: dict[int, float] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._watch_pods, daemon=True),
                         threading.Thread(target=self._watch_isr, daemon=True)]
        self._ready_new: dict[int, bool] = {}
        self.back_wall: dict[int, float] = {}  # wall clock, to compare with the run's step times

    def _pods(self) -> dict[int, tuple[str, bool]]:
        pods = {}
        for pod in self._core.list_namespaced_pod(self._namespace, label_selector=self._selector).items:
            ready = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
            pods[int(pod.metadata.name.rsplit("-", 1)[1])] = (pod.metadata.uid, ready)
        return pods

    def _watch_pods(self) -> None:
        while not self._stop.wait(0.1):
            try:
                pods = self._pods()
            except Exception:  # the emulator is busy: the next sample catches up
                continue
            now = time.monotonic()
            for broker, (uid, ready) in pods.items():
                old_uid = self.initial.get(broker, ("", True))[0]
                if broker not in self.began and (uid != old_uid or not ready):
                    self.began[broker] = now
                self._ready_new[broker] = uid != old_uid and ready

    def _watch_isr(self) -> None:
        while not self._stop.is_set():
            try:
                topics = self._admin.describe_topics()
            except Exception:
                time.sleep(0.1)
                continue
            now = time.monotonic()
            for broker, ready_new in list(self._ready_new.items()):
                if broker in self.back or not ready_new:
                    continue
                hosted = [p for t in topics for p in t.get("partitions") or []
                          if broker in (p.get("replica_nodes") or [])]
                if hosted and all(broker in (p.get("isr_nodes") or []) for p in hosted):
                    self.back[broker] = now
                    self.back_wall[broker] = time.time()
            time.sleep(0.05)

    def __enter__(self) -> RestartObserver:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._admin.close()

    def durations(self) -> dict[int, float]:
        return {b: round(self.back[b] - self.began[b], 2) for b in sorted(self.began) if b in self.back}


def upgrade(sandbox: SandboxInfo, redis_url: str, workdir: Path) -> dict[str, Any]:
    config = write_clusters_file(workdir / "clusters.yaml", sandbox)
    alice = bot(REQUESTER, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=workdir).start()
    bob = bot(APPROVER, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=workdir).start()
    try:
        alice.command("runs")
        bob.command("runs")
        with RestartObserver(sandbox) as observer:
            start = time.monotonic()
            run_id = run_id_of(alice.command(f"upgrade {sandbox.cluster} 4.3.1"))
            seen = 0
            while True:
                event = bob.expect(lambda e: e.get("run_id") == run_id and e.get("event") in (
                    "step_awaiting_approval", "run_finished", "step_paused"), timeout=900, what="the next step",
                    since=seen)
                seen = bob.past(event, seen)
                if event["event"] != "step_awaiting_approval":
                    break
                bob.send(f"approve {run_id} {event['step_id']}")
            wall = time.monotonic() - start
            time.sleep(1)
        assert event.get("final_state") == "succeeded", event
        restarts = observer.durations()
        assert len(restarts) == 3, (observer.began, observer.back)
        run = read_run(redis_url, run_id)
        steps = {s["spec"]["id"]: round(_seconds(s), 2) for s in run["steps"]}
        # How long after a broker was back the run noticed it (its step finished): the bot's own waiting.
        noticed = {int(s["spec"]["args"]["broker"]): datetime.fromisoformat(s["finished_at"]).timestamp()
                   for s in run["steps"] if s["spec"]["args"]["kind"] == "follow-roll" and s.get("finished_at")}
        lag = {b: round(noticed[b] - observer.back_wall[b], 2) for b in sorted(noticed) if b in observer.back_wall}
        return {"wall_s": round(wall, 2), "restart_to_back_in_isr_s": restarts,
                "restart_sum_s": round(sum(restarts.values()), 2), "ratio": round(wall / sum(restarts.values()), 3),
                "run_noticed_back_after_s": lag, "step_seconds": steps}
    finally:
        alice.stop()
        bob.stop()


def _seconds(step: dict[str, Any]) -> float:
    if not step.get("started_at") or not step.get("finished_at"):
        return 0.0
    return (datetime.fromisoformat(step["finished_at"]) - datetime.fromisoformat(step["started_at"])).total_seconds()


def main() -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="kco-upgrade-bench-"))
    os.environ["KAFKA_CHATOPS_SANDBOX_HOME"] = str(workdir / "sandboxes")
    proc = subprocess.run([sys.executable, "-m", "bot", "sandbox", "up", "--name", NAME, "--kafka-version", "4.2.2",
                           "--json"], capture_output=True, text=True, check=True)
    sandbox = SandboxInfo.from_up_json(json.loads(proc.stdout))
    redis_server = RedisServer(workdir / "redis")
    redis_server.start()
    try:
        cluster = StrimziCluster(sandbox.api_client(), sandbox.namespace, sandbox.cluster)
        cluster.create_topic(TOPIC, partitions=6, replicas=3, config={"min.insync.replicas": 2})
        cluster.wait_topic_ready(TOPIC)
        result = upgrade(sandbox, redis_server.url, workdir)
    finally:
        redis_server.stop()
        subprocess.run([sys.executable, "-m", "bot", "sandbox", "down", "--name", NAME], check=False)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
