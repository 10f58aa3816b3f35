"""Crash safety on the real sandbox: the bot is SIGKILLed at step boundaries and in the middle of
a step, Redis is restarted mid-run, and the rolling restart still finishes with every broker
restarted exactly once and one audit entry per transition."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.harness import (
    APPROVER,
    REQUESTER,
    PodUidTracker,
    assert_audit_is_a_chain,
    bot,
    read_audit,
    run_id_of,
    wait_for_run,
    waiting_on,
    write_clusters_file,
)
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.sandbox import SandboxInfo

pytestmark = pytest.mark.sandbox


def test_restart_survives_kills_at_every_boundary_and_a_redis_restart(
    sandbox: SandboxInfo, isolated_redis_server: RedisServer, tmp_path: Path,
) -> None:
    """SIGKILL both bot processes right after the run is created, right after an approval (the action
    may or may not be out), in the middle of a broker's restart and right after a step finished;
    restart Redis while a broker rejoins; the run completes, each broker restarted exactly once."""
    redis_url = isolated_redis_server.url
    config = write_clusters_file(tmp_path / "clusters.yaml", sandbox)
    alice = bot(REQUESTER, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=tmp_path).start()
    bob = bot(APPROVER, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=tmp_path).start()

    def crash_and_restart() -> None:
        for process in (alice, bob):
            process.kill()
        for process in (alice, bob):
            process.start()

    def wait(step_id: str, timeout: float = 240) -> dict:  # type: ignore[type-arg]
        return wait_for_run(redis_url, run_id, waiting_on(step_id), timeout=timeout,
                            what=f"approval request for {step_id}")

    def next_restart_request(done: set[str]) -> str:
        """The next broker-restart step asking for approval (the order depends on the controller)."""
        run = wait_for_run(
            redis_url, run_id,
            lambda r: r["state"] == "awaiting_approval" and _next_restart(r) not in (None, *done),
            timeout=300, what=f"an approval request for a restart other than {sorted(done)}")
        step = _next_restart(run)
        assert step is not None
        return step

    try:
        with PodUidTracker(sandbox) as pods:
            run_id = run_id_of(alice.command(f"restart {sandbox.cluster}"))
            crash_and_restart()  # 1: right after the record was written, before pre-flight ran

            first = next_restart_request(set())
            assert bob.command(f"approve {run_id} {first}")["event"] == "reply"
            crash_and_restart()  # 2: right after an approval: the annotation may or may not be out

            second = next_restart_request({first})
            assert bob.command(f"approve {run_id} {second}")["event"] == "reply"
            wait_for_run(redis_url, run_id, lambda r: r["state"] == "waiting", timeout=120,
                         what="the second restart to be in flight")
            crash_and_restart()  # 3: in the middle of a step: the broker is restarting

            third = next_restart_request({first, second})
            crash_and_restart()  # 4: right after a step finished and the next one was asked
            wait(third)
            assert bob.command(f"approve {run_id} {third}")["event"] == "reply"
            wait_for_run(redis_url, run_id, lambda r: r["state"] == "waiting", timeout=120,
                         what="the third restart to be in flight")
            isolated_redis_server.restart()  # 5: Redis goes away and comes back mid-step

            run = wait("elect-leaders", timeout=300)
            assert bob.command(f"approve {run_id} elect-leaders")["event"] == "reply"
            run = wait_for_run(redis_url, run_id, lambda r: r["state"] in ("succeeded", "failed", "aborted"),
                               timeout=120, what="the run to finish")
        assert run["state"] == "succeeded", run.get("pause_reason")
    finally:
        for process in (alice, bob):
            process.stop()

    assert pods.restarts() == {name: 1 for name in pods.restarts()}, pods.restarts()
    assert len(pods.restarts()) == 3
    assert_audit_is_a_chain(read_audit(redis_url, run_id))


def _next_restart(run: dict) -> str | None:  # type: ignore[type-arg]
    approval = run.get("approval") or {}
    step = approval.get("step_id")
    return step if step and step.startswith("restart-") else None
