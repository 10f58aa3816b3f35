"""Sandbox benchmarks (``make bench``): time from ``sandbox up`` to Ready for 3 brokers, each
broker's restart-to-Ready through the manual-rolling-update annotation, and the resident memory
of the whole sandbox (daemon + broker JVMs), read from /proc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.fixtures.sandbox import SandboxInfo, kube_api_client


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def roll_pod(sandbox: SandboxInfo, broker: int, *, until: Callable[[], bool] = lambda: True,
             poll_s: float = 0.05) -> float:
    """Annotate a broker's pod for Strimzi's manual roll and time it to a new, Ready pod (and then
    to ``until()``, e.g. back in ISR)."""
    core = client.CoreV1Api(kube_api_client(sandbox.kubeconfig))
    name = f"{sandbox.cluster}-dual-role-{broker}"
    uid = core.read_namespaced_pod(name, sandbox.namespace).metadata.uid
    start = time.monotonic()
    core.patch_namespaced_pod(name, sandbox.namespace,
                              {"metadata": {"annotations": {"strimzi.io/manual-rolling-update": "true"}}})
    while True:
        time.sleep(poll_s)
        pod = core.read_namespaced_pod(name, sandbox.namespace)
        ready = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
        if pod.metadata.uid != uid and ready and until():
            return time.monotonic() - start


def main() -> dict[str, Any]:
    os.environ["KAFKA_CHATOPS_SANDBOX_HOME"] = tempfile.mkdtemp(prefix="kco-sandbox-bench-")
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "bot", "sandbox", "up", "--name", "sbench", "--json"],
                          capture_output=True, text=True, check=True)
    up_wall = time.monotonic() - start
    sandbox = SandboxInfo.from_up_json(json.loads(proc.stdout))
    try:
        time.sleep(5)  # let the JVMs settle before reading memory
        pids = [sandbox.daemon_pid] + [int(n["pid"]) for n in sandbox.raw["nodes"]]
        memory = {str(pid): round(rss_mb(pid), 1) for pid in pids}
        restarts = [round(roll_pod(sandbox, b), 2) for b in range(sandbox.brokers)]
    finally:
        subprocess.run([sys.executable, "-m", "bot", "sandbox", "down", "--name", "sbench"], check=False)
    result = {
        "up_to_ready_wall_s": round(up_wall, 2), "restart_to_ready_s": restarts,
        "rss_mb": memory, "rss_total_mb": round(sum(memory.values()), 1),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
