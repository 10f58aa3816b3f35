"""A rolling restart on the real sandbox while Redis fails over under it: the bots reach Redis through
Sentinel (a master, a replica, three Sentinels), the master is switched over right after an approval
and SIGKILLed while a broker restarts; the run finishes, every broker restarted exactly once, and the
audit is one chain of transitions with none missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.harness import (
    APPROVER,
    REQUESTER,
    PodUidTracker,
    assert_audit_is_a_chain,
    read_audit,
    run_id_of,
    wait_for_run,
    waiting_on,
    write_clusters_file,
)
from tests.fixtures.bot_process import BotProcess
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.sandbox import SandboxInfo
from tests.store.sentinel_cluster import SentinelCluster

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(900)]


def _bot(user: str, cluster: SentinelCluster, sandbox: SandboxInfo, config: Path, log_dir: Path) -> BotProcess:
    return BotProcess(
        user=user, redis_url=cluster.url(), kubeconfig=sandbox.kubeconfig, config_path=config, log_dir=log_dir,
        extra_env={"KAFKA_CHATOPS_LEASE_TTL": "3", "KAFKA_CHATOPS_POLL_INTERVAL": "0.3",
                   "REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_MS": "500"},
    )


def _next_restart(run: dict) -> str | None:  # type: ignore[type-arg]
    approval = run.get("approval") or {}
    step = approval.get("step_id")
    return step if step and step.startswith("restart-") else None


def _under_way(run: dict, step_id: str) -> bool:  # type: ignore[type-arg]
    """Approved: the step started or is past, or the run ended."""
    states = {s["spec"]["id"]: s["state"] for s in run["steps"]}
    return run["state"] in ("succeeded", "failed", "aborted") or states.get(step_id) not in ("pending",
                                                                                             "awaiting_approval")


def test_a_rolling_restart_survives_redis_failovers(sandbox: SandboxInfo, tmp_path: Path) -> None:
    cluster = SentinelCluster(tmp_path / "sentinel")
    url = cluster.url()
    config = write_clusters_file(tmp_path / "clusters.yaml", sandbox)
    alice = _bot(REQUESTER, cluster, sandbox, config, tmp_path).start()
    bob = _bot(APPROVER, cluster, sandbox, config, tmp_path).start()

    def next_restart_request(done: set[str]) -> str:
        run = wait_for_run(
            url, run_id, lambda r: r["state"] == "awaiting_approval" and _next_restart(r) not in (None, *done),
            timeout=300, what=f"an approval request for a restart other than {sorted(done)}")
        step = _next_restart(run)
        assert step is not None
        return step

    def approve(step: str) -> None:
        """As a person would: when Redis could not confirm the click on a replica (the master just
        changed), or the request itself was lost with the old master's last writes and the card went
        stale, look at the run and click again only while it (again) waits on that step."""
        for _ in range(20):
            reply = bob.command(f"approve {run_id} {step}")
            if reply["event"] == "reply":
                return
            assert "Redis" in reply["text"] or reply["text"] == "This step is no longer waiting for approval.", reply
            run = wait_for_run(url, run_id, lambda r: waiting_on(step)(r) or _under_way(r, step), timeout=120,
                               what=f"{step} asked for again or under way")
            if not waiting_on(step)(run):
                return  # the unconfirmed click stood
        raise AssertionError(f"approving {step} never went through: {reply}")

    def kill_master() -> None:
        old = cluster.master_port()
        node = cluster.node_on(old)
        node.kill()
        cluster.wait_for_new_master(old)
        node.start()  # back as a replica of the new master

    try:
        with PodUidTracker(sandbox) as pods:
            run_id = run_id_of(alice.command(f"restart {sandbox.cluster}"))

            first = next_restart_request(set())
            approve(first)
            cluster.failover()  # 1: a coordinated switch right after an approval

            second = next_restart_request({first})
            approve(second)
            wait_for_run(url, run_id, lambda r: r["state"] == "waiting", timeout=120,
                         what="the second restart to be in flight")
            kill_master()  # 2: the master dies while a broker restarts
            cluster.wait_until_settled()

            third = next_restart_request({first, second})
            approve(third)
            wait_for_run(url, run_id, lambda r: r["state"] == "waiting", timeout=120,
                         what="the third restart to be in flight")
            cluster.failover()  # 3: a switch mid-step
            cluster.wait_until_settled()

            wait_for_run(url, run_id, lambda r: (r.get("approval") or {}).get("step_id") == "elect-leaders",
                         timeout=300, what="the approval request for elect-leaders")
            approve("elect-leaders")
            run = wait_for_run(url, run_id, lambda r: r["state"] in ("succeeded", "failed", "aborted"),
                               timeout=120, what="the run to finish")
        assert run["state"] == "succeeded", run.get("pause_reason")
        assert_audit_is_a_chain(read_audit(url, run_id))
    finally:
        for process in (alice, bob):
            process.stop()
        cluster.cleanup()

    assert pods.restarts() == {name: 1 for name in pods.restarts()}, pods.restarts()
    assert len(pods.restarts()) == 3


def test_with_a_replica_wait_and_no_replica_a_request_is_not_confirmed(
        sandbox: SandboxInfo, isolated_redis_server: RedisServer, tmp_path: Path) -> None:
    """REDIS_WAIT_REPLICAS reaches the bot's store: against a Redis with no replica, a run request is
    answered "Not done" naming the missing confirmation, instead of being confirmed."""
    config = write_clusters_file(tmp_path / "clusters.yaml", sandbox)
    alice = BotProcess(
        user=REQUESTER, redis_url=isolated_redis_server.url, kubeconfig=sandbox.kubeconfig, config_path=config,
        log_dir=tmp_path, extra_env={"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_MS": "100"},
    ).start()
    try:
        reply = alice.command(f"restart {sandbox.cluster}")
    finally:
        alice.stop()
    assert reply["event"] == "error", reply
    assert "could not confirm the write on a replica (only 0 of the 1 replica(s) asked for within 100 ms" \
        in reply["text"]
