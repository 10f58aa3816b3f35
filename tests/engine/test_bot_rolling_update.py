"""A rolling update of the bot itself while a run is under way, on the real sandbox and a real
redis-server: two bot processes, each replaced mid-run the way a Deployment's RollingUpdate with
``maxUnavailable: 0`` replaces a pod (the new process up and answering before the old one is told to
stop, and the old one stopping gracefully: its leases handed back). The run finishes, every broker
restarted exactly once, and the audit is one chain of transitions with none lost or repeated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    write_clusters_file,
)
from tests.fixtures.bot_process import BotProcess
from tests.fixtures.sandbox import SandboxInfo

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(900)]

TERMINAL = ("succeeded", "failed", "aborted")


def _awaited_step(run: dict[str, Any]) -> str | None:
    return (run.get("approval") or {}).get("step_id") if run["state"] == "awaiting_approval" else None


def test_runs_in_flight_survive_a_rolling_update_of_the_bot(
        sandbox: SandboxInfo, redis_url: str, tmp_path: Path) -> None:
    config = write_clusters_file(tmp_path / "clusters.yaml", sandbox)

    def start(user: str) -> BotProcess:
        process = bot(user, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=tmp_path).start()
        assert process.command("runs")["event"] == "reply"  # up, on Redis and subscribed: "ready"
        return process

    started: list[BotProcess] = []
    old_a = start(REQUESTER)
    old_b = start(APPROVER)
    started += [old_a, old_b]

    def replace(old: BotProcess) -> BotProcess:
        """maxUnavailable 0: the new process answers before the old one gets its graceful stop."""
        new = start(old.user)
        started.append(new)
        old.stop()
        assert not old.alive
        return new

    approver = old_b
    approved: list[str] = []

    def approve_next() -> str:
        run = wait_for_run(redis_url, run_id, lambda r: r["state"] in TERMINAL or _awaited_step(r) not in
                           (None, *approved), timeout=300, what=f"an approval other than {approved}")
        step = _awaited_step(run)
        assert step is not None, f"the run ended ({run['state']}) before {approved} were all it asked for"
        reply = approver.command(f"approve {run_id} {step}")
        assert reply["event"] == "reply", reply
        approved.append(step)
        return step

    def in_flight(step: str) -> None:
        """The approved broker restart is under way (the pod is being rolled): the moment to strike."""
        wait_for_run(redis_url, run_id,
                     lambda r: r["state"] == "waiting" and any(
                         s["spec"]["id"] == step and s["state"] in ("running", "waiting") for s in r["steps"]),
                     timeout=120, what=f"{step} to be in flight")

    try:
        with PodUidTracker(sandbox) as pods:
            run_id = run_id_of(old_a.command(f"restart {sandbox.cluster}"))

            first = approve_next()
            assert first.startswith("restart-"), first
            in_flight(first)
            new_a = replace(old_a)  # pod A rolled while a broker restarts

            second = approve_next()
            assert second.startswith("restart-"), second
            in_flight(second)
            approver = new_b = replace(old_b)  # then pod B, mid-step again

            while (step := approve_next()) != "elect-leaders":
                assert step.startswith("restart-"), step
            run = wait_for_run(redis_url, run_id, lambda r: r["state"] in TERMINAL, timeout=180,
                               what="the run to finish")
        assert run["state"] == "succeeded", run.get("pause_reason")
        assert new_a.alive and new_b.alive
    finally:
        for process in started:
            process.stop()

    assert pods.restarts() == {name: 1 for name in pods.restarts()}, pods.restarts()
    assert len(pods.restarts()) == sandbox.brokers
    entries = read_audit(redis_url, run_id)
    assert_audit_is_a_chain(entries)
    drivers = {e.actor.split("@", 1)[1] for e in entries if "@" in e.actor}
    # Whichever process drove the run was stopped before it ended: its lease went to another one.
    assert len(drivers) >= 2, f"the run was driven by {drivers} only: no hand-over happened"
