"""The ``kafka-chatops sandbox`` commands as scripts use them: exit codes, ``--json`` shapes, errors.

Uses the session sandbox (3 brokers, Kafka 4.3.1) for status and kill-broker, and one small
sandbox of its own for ``down``; bad input is refused before anything starts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.sandbox import SandboxInfo, run_sandbox_cli
from tests.fixtures.waiting import wait_until
from tests.sandbox.cluster_helpers import StrimziCluster, jvm_cmdline, pod_ready

pytestmark = pytest.mark.sandbox


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def _processes_mentioning(directory: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if directory.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


@pytest.mark.parametrize(("version", "expected"), [
    ("latest", "is not a release number"),
    ("3.9.0", "is not supported"),
])
def test_up_refuses_a_kafka_version_it_cannot_run(sandbox_home: Path, version: str, expected: str) -> None:
    """`up` with a malformed or unsupported --kafka-version fails at once with one clear error line."""
    proc = run_sandbox_cli("up", "--name", "never", "--kafka-version", version, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and expected in proc.stderr
    assert not (sandbox_home / "never").exists()


@pytest.mark.parametrize(("flags", "expected"), [
    (("--broker-only", "-1"), "--broker-only must be between 0 and 6 (got -1)"),
    (("--racks", "10"), "--racks must be between 0 (no racks) and 9 (got 10)"),
])
def test_up_refuses_a_bad_pool_or_rack_count(sandbox_home: Path, flags: tuple[str, ...], expected: str) -> None:
    """`up` with an impossible --broker-only or --racks fails at once, saying what is valid, and starts nothing."""
    proc = run_sandbox_cli("up", "--name", "never", *flags, check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and expected in proc.stderr
    assert not (sandbox_home / "never").exists()


def test_unknown_sandbox_is_an_error_that_lists_the_running_ones(sandbox: SandboxInfo) -> None:
    """status / kill-broker on a name that does not run say so and name the sandboxes that do."""
    for args in (("status",), ("kill-broker", "0")):
        proc = run_sandbox_cli(*args, "--name", "nosuch", check=False)
        assert proc.returncode == 1
        assert "no running sandbox named 'nosuch'" in proc.stderr
        assert f"running sandboxes: {sandbox.name}" in proc.stderr


def test_up_refuses_a_second_sandbox_with_the_same_name(sandbox: SandboxInfo) -> None:
    """A second `up` of a running name fails and says how to stop the first."""
    proc = run_sandbox_cli("up", "--name", sandbox.name, check=False)
    assert proc.returncode == 1
    assert "already running" in proc.stderr and f"sandbox down --name {sandbox.name}" in proc.stderr


def test_up_json_and_status_json_describe_every_node(sandbox: SandboxInfo) -> None:
    """`up --json` has the documented fields; `status --json` gives id, pod, uid, pid, version, ready per node."""
    for key in ("name", "namespace", "kubeconfig", "api_url", "bootstrap_servers", "kafka_version", "cluster",
                "state_dir", "daemon_pid"):
        assert sandbox.raw[key], key
    assert Path(sandbox.kubeconfig).is_file()
    status = sandbox.status()
    assert status["ready"] is True
    nodes = sorted(status["nodes"], key=lambda n: n["id"])
    assert [n["id"] for n in nodes] == [0, 1, 2]
    for node in nodes:
        assert node["pod"] == f"{sandbox.cluster}-dual-role-{node['id']}"
        assert node["uid"] and node["ready"] is True and node["version"] == sandbox.kafka_version
        assert f"/{sandbox.kafka_version}/libs/*" in jvm_cmdline(node["pid"])
    text = sandbox.cli("status").stdout
    assert all(n["uid"] in text for n in nodes)


def test_kill_broker_holds_the_broker_down_in_a_crash_loop_then_restarts_it(sandbox: SandboxInfo) -> None:
    """kill-broker --down-for: SIGKILL, pod not Ready in CrashLoopBackOff meanwhile, same pod back after."""
    api = sandbox.api_client()
    cluster = StrimziCluster(api, sandbox.namespace, sandbox.cluster)
    pod_name = f"{sandbox.cluster}-dual-role-1"
    before = cluster.pods()[pod_name]
    old_pid = next(n["pid"] for n in sandbox.status()["nodes"] if n["id"] == 1)
    out = sandbox.cli("kill-broker", "1", "--down-for", "6").stdout
    assert "killed broker 1" in out
    wait_until(lambda: not _alive(old_pid), timeout=10, message="the broker JVM is gone")

    def crash_looping() -> bool:
        status = cluster.pods()[pod_name].status
        waiting = status.container_statuses[0].state.waiting
        return not pod_ready(cluster.pods()[pod_name]) and waiting is not None \
            and waiting.reason == "CrashLoopBackOff" and status.container_statuses[0].restart_count == 1

    wait_until(crash_looping, timeout=10, interval=0.2, message="pod 1 in CrashLoopBackOff, restartCount 1")
    assert not pod_ready(cluster.pods()[pod_name])
    wait_until(lambda: pod_ready(cluster.pods()[pod_name]), timeout=90, interval=0.5, message="pod 1 Ready again")
    after = cluster.pods()[pod_name]
    assert after.metadata.uid == before.metadata.uid, "a container restart keeps the pod"
    assert after.status.container_statuses[0].restart_count == 1
    assert after.status.container_statuses[0].last_state.terminated.exit_code == 137
    new_pid = next(n["pid"] for n in sandbox.status()["nodes"] if n["id"] == 1)
    assert new_pid != old_pid
    wait_until(lambda: cluster.conditions("Ready"), timeout=120, interval=0.5, message="Kafka Ready again")
    api.close()


def test_kill_broker_rejects_an_unknown_broker_id(sandbox: SandboxInfo) -> None:
    """kill-broker with an id that is not a broker names the ids that are."""
    proc = sandbox.cli("kill-broker", "7", check=False)
    assert proc.returncode == 1
    assert "no broker with id 7 (broker ids: 0, 1, 2)" in proc.stderr
    proc = sandbox.cli("kill-broker", "1", "--down-for", "-3", check=False)
    assert proc.returncode == 1 and "--down-for must be >= 0" in proc.stderr


def test_second_sandbox_runs_beside_the_first_and_down_leaves_no_process(
        sandbox: SandboxInfo, sandbox_factory: Callable[..., SandboxInfo]) -> None:
    """Two sandboxes side by side share no port or dir; `down` ends every process of one, and is idempotent."""
    small = sandbox_factory("solo", brokers=1)
    assert small.state_dir != sandbox.state_dir and small.api_url != sandbox.api_url
    assert not set(small.bootstrap_servers.split(",")) & set(sandbox.bootstrap_servers.split(","))
    pids = [small.daemon_pid] + [n["pid"] for n in small.status()["nodes"]]
    assert all(_alive(p) for p in pids)
    out = small.cli("down").stdout
    assert "sandbox solo stopped" in out
    assert not [p for p in pids if _alive(p)]
    assert _processes_mentioning(small.state_dir) == []
    again = small.cli("down")
    assert again.returncode == 0 and "sandbox solo is not running" in again.stdout
    state = json.loads((Path(small.state_dir) / "state.json").read_text())
    assert state["phase"] == "stopped"
    assert sandbox.status()["ready"] is True, "stopping one sandbox must not touch the other"
    small.stopped = True
