"""Engine benchmarks on a real sandbox and a real redis-server (``make bench``).

1. Overhead of a rolling restart: the bot's run with instant approvals (an approver process
   approves each step the moment it is asked), against the same restarts done by a bare loop
   (annotate, poll every 100 ms for a new uid, Ready, back in ISR and 0 URP). Ratio = bot wall time
   / sum of the bare restarts.
2. Takeover: SIGKILL the bot while a run waits for approval, start it again at once, and measure
   from the moment the dead process's lease expires to the moment the new process drives the run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis as sync_redis

from bot.kafka.admin import KafkaAdminAdapter
from bot.store.keys import Keys
from handlers.ports import ClusterRef
from runbooks.rules.health import out_of_isr, restart_order, under_replicated
from tests.bench.sandbox_bench import roll_pod
from tests.engine.harness import APPROVER, REQUESTER, bot, run_id_of, wait_for_run, waiting_on, write_clusters_file
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.sandbox import SandboxInfo


def _sandbox_up(name: str) -> SandboxInfo:
    proc = subprocess.run([sys.executable, "-m", "bot", "sandbox", "up", "--name", name, "--json"],
                          capture_output=True, text=True, check=True)
    return SandboxInfo.from_up_json(json.loads(proc.stdout))


def _snapshot(admin: KafkaAdminAdapter, sandbox: SandboxInfo):  # type: ignore[no-untyped-def]
    ref = ClusterRef(name=sandbox.cluster, namespace=sandbox.namespace, kafka=sandbox.cluster)
    return asyncio.run(admin.snapshot(ref, sandbox.bootstrap_servers))


def bare_restarts(sandbox: SandboxInfo) -> list[float]:
    """Each broker restarted by hand the way the runbook does it, timed to back-in-ISR and 0 URP."""
    admin = KafkaAdminAdapter()
    snapshot = _snapshot(admin, sandbox)
    times = []
    for broker in restart_order(snapshot, sorted(b.id for b in snapshot.brokers)):
        def back_in_isr(broker: int = broker) -> bool:
            snap = _snapshot(admin, sandbox)
            return not out_of_isr(snap, broker) and not under_replicated(snap)

        times.append(roll_pod(sandbox, broker, until=back_in_isr, poll_s=0.1))
    return times


def bot_restart(sandbox: SandboxInfo, redis_url: str, workdir: Path) -> float:
    config = write_clusters_file(workdir / "clusters.yaml", sandbox)
    alice = bot(REQUESTER, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=workdir).start()
    bob = bot(APPROVER, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=workdir).start()
    try:
        alice.command("runs")
        bob.command("runs")
        start = time.monotonic()
        run_id = run_id_of(alice.command(f"restart {sandbox.cluster}"))
        seen = 0
        while True:
            event = bob.expect(lambda e: e.get("run_id") == run_id and e.get("event") in (
                "step_awaiting_approval", "run_finished"), timeout=300, what="the next step", since=seen)
            seen = bob.past(event, seen)
            if event["event"] == "run_finished":
                assert event["final_state"] == "succeeded", event
                return time.monotonic() - start
            bob.send(f"approve {run_id} {event['step_id']}")
    finally:
        alice.stop()
        bob.stop()


def takeover(sandbox: SandboxInfo, redis_url: str, workdir: Path, rounds: int = 3) -> list[float]:
    config = write_clusters_file(workdir / "takeover.yaml", sandbox)
    r = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    results = []
    alice = bot(REQUESTER, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=workdir).start()
    for _ in range(rounds):
        run_id = run_id_of(alice.command(f"restart {sandbox.cluster} --brokers 0"))
        wait_for_run(redis_url, run_id, waiting_on("restart-0"), timeout=120, what="the approval request")
        lease = Keys("kco").lease(run_id)
        old_owner = r.get(lease)
        alice.kill()
        expires = time.monotonic() + max(r.pttl(lease), 0) / 1000
        alice.start()
        while r.get(lease) in (None, old_owner):
            time.sleep(0.01)
        results.append(time.monotonic() - expires)
        alice.command(f"abort {run_id}")
        wait_for_run(redis_url, run_id, lambda d: d["state"] == "aborted", timeout=60, what="the abort")
    alice.stop()
    return results


def main() -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="kco-bench-"))
    os.environ["KAFKA_CHATOPS_SANDBOX_HOME"] = str(workdir / "sandboxes")
    sandbox = _sandbox_up("bench")
    redis_server = RedisServer(workdir / "redis")
    redis_server.start()
    try:
        bare = bare_restarts(sandbox)
        wall = bot_restart(sandbox, redis_server.url, workdir)
        resume = takeover(sandbox, redis_server.url, workdir)
    finally:
        redis_server.stop()
        subprocess.run([sys.executable, "-m", "bot", "sandbox", "down", "--name", "bench"], check=False)
    result = {
        "bare_restart_s": [round(t, 2) for t in bare], "bare_sum_s": round(sum(bare), 2),
        "bot_run_wall_s": round(wall, 2), "overhead_ratio": round(wall / sum(bare), 3),
        "takeover_after_lease_expiry_s": [round(t, 2) for t in resume],
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
