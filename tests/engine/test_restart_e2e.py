"""The rolling-restart runbook end to end: bot processes (the console front end) on a real
redis-server, driving the real sandbox (Strimzi twin, real brokers). Nothing of ours is patched;
the bot runs as a subprocess exactly as a user starts it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.harness import (
    APPROVER,
    OUTSIDER,
    REQUESTER,
    PodUidTracker,
    assert_audit_is_a_chain,
    bot,
    read_audit,
    read_run,
    run_id_of,
    wait_for_run,
    write_clusters_file,
)
from tests.fixtures.bot_process import BotProcess
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.sandbox import SandboxInfo

pytestmark = pytest.mark.sandbox


@pytest.fixture
def config(tmp_path: Path, sandbox: SandboxInfo) -> Path:
    return write_clusters_file(tmp_path / "clusters.yaml", sandbox)


@pytest.fixture
def processes(tmp_path: Path):  # type: ignore[no-untyped-def]
    started: list[BotProcess] = []

    def start(process: BotProcess) -> BotProcess:
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.stop()


def finished(run_id: str):  # type: ignore[no-untyped-def]
    return lambda e: e.get("event") == "run_finished" and e.get("run_id") == run_id


def awaiting(run_id: str, step_id: str):  # type: ignore[no-untyped-def]
    return lambda e: (e.get("event") == "step_awaiting_approval" and e.get("run_id") == run_id
                      and e.get("step_id") == step_id)


def test_one_broker_restart_with_refusals_across_two_processes(
    sandbox: SandboxInfo, redis_url: str, config: Path, tmp_path: Path, processes,  # type: ignore[no-untyped-def]
) -> None:
    """Two bot processes share one Redis: the run is driven by one of them, a second restart is refused
    naming the active run, self-approval and an outsider are refused and audited, the approver's
    typed approval (in the other process) advances it, and only broker 1 is restarted, once."""
    alice = processes(bot(REQUESTER, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=tmp_path))
    bob = processes(bot(APPROVER, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=tmp_path))
    carol = processes(bot(OUTSIDER, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=tmp_path))
    with PodUidTracker(sandbox) as pods:
        run_id = run_id_of(alice.command(f"restart {sandbox.cluster} --brokers 1"))

        again = bob.command(f"restart {sandbox.cluster}")
        assert again["event"] == "error" and run_id in again["text"]

        alice.expect(awaiting(run_id, "restart-1"), timeout=120, what="the restart step to wait for approval")
        self_approval = alice.command(f"approve {run_id} restart-1")
        assert self_approval["event"] == "error" and "Four-eyes" in self_approval["text"]
        outsider = carol.command(f"approve {run_id} restart-1")
        assert outsider["event"] == "error" and "not an approver" in outsider["text"]

        approved = bob.command(f"approve {run_id} restart-1")
        assert approved["event"] == "reply", approved
        bob.expect(awaiting(run_id, "elect-leaders"), timeout=180, what="the restart to finish")
        bob.command(f"approve {run_id} elect-leaders")
        done = alice.expect(finished(run_id), timeout=60, what="the run to finish")
        assert done["final_state"] == "succeeded"

    restarted = {name: n for name, n in pods.restarts().items() if n}
    assert restarted == {f"{sandbox.cluster}-dual-role-1": 1}, pods.restarts()
    entries = read_audit(redis_url, run_id)
    refused = [(e.actor, e.action) for e in entries if e.action.endswith("_refused")]
    assert (REQUESTER, "approve_refused") in refused and (OUTSIDER, "approve_refused") in refused
    drivers = {e.actor.split("@", 1)[1] for e in entries if "@" in e.actor}
    assert len(drivers) == 1, f"the run was driven by {drivers}"
    assert_audit_is_a_chain(entries)


def test_unanswered_approval_pauses_then_abort_frees_the_cluster(
    sandbox: SandboxInfo, redis_url: str, tmp_path: Path, processes,  # type: ignore[no-untyped-def]
) -> None:
    """An approval that nobody answers fails closed: the run pauses, nothing is restarted, and an
    abort finishes it and releases the cluster for the next run."""
    config = write_clusters_file(tmp_path / "clusters.yaml", sandbox, approval_timeout="4s")
    alice = processes(bot(REQUESTER, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=tmp_path))
    with PodUidTracker(sandbox) as pods:
        run_id = run_id_of(alice.command(f"restart {sandbox.cluster} --brokers 2"))
        paused = alice.expect(lambda e: e.get("event") == "step_paused" and e.get("run_id") == run_id,
                              timeout=120, what="the expired approval to pause the run")
        assert "expired" in paused["text"]
        assert read_run(redis_url, run_id)["state"] == "paused"
        aborted = alice.command(f"abort {run_id}")
        assert aborted["event"] == "reply" and aborted["state"] == "aborted"
        dry = alice.command(f"restart {sandbox.cluster} --brokers 2 --dry-run")
        assert dry["event"] == "reply" and "nothing changed" in dry["text"]
        next_run = alice.command(f"restart {sandbox.cluster} --brokers 2")
        assert next_run["event"] == "reply", "the abort must release the cluster lock"
        alice.command(f"abort {next_run['run_id']}")
    assert not any(pods.restarts().values())


def test_redis_down_refuses_new_commands_and_recovers(
    sandbox: SandboxInfo, isolated_redis_server: RedisServer, tmp_path: Path, processes,  # type: ignore[no-untyped-def]
) -> None:
    """With Redis unreachable a new command is refused with a clear message, and accepted again once
    Redis is back, without restarting the bot."""
    config = write_clusters_file(tmp_path / "clusters.yaml", sandbox)
    alice = processes(bot(REQUESTER, redis_url=isolated_redis_server.url, sandbox=sandbox, config=config,
                          log_dir=tmp_path))
    assert alice.command("runs")["event"] == "reply"
    isolated_redis_server.kill()
    refused = alice.command(f"restart {sandbox.cluster} --brokers 0")
    assert refused["event"] == "error" and "Redis" in refused["text"] and "unreachable" in refused["text"]
    isolated_redis_server.restart()
    accepted = alice.command(f"restart {sandbox.cluster} --brokers 0")
    assert accepted["event"] == "reply", accepted
    assert alice.command(f"abort {accepted['run_id']}")["event"] == "reply"
    wait_for_run(isolated_redis_server.url, accepted["run_id"], lambda r: r["state"] == "aborted", timeout=60,
                 what="the abort (immediate, or at the next safe point) to finish the run")


def test_bad_input_is_refused_with_a_reason_and_changes_nothing(
    sandbox: SandboxInfo, redis_url: str, config: Path, tmp_path: Path, processes,  # type: ignore[no-untyped-def]
) -> None:
    """Each command a user can type, given bad input, answers what was wrong and what is valid, and
    no run is created."""
    alice = processes(bot(REQUESTER, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=tmp_path))
    cases = {
        "restart": "Usage: /kafka restart",
        "restart nosuch": "the managed clusters are",
        f"restart {sandbox.cluster} --brokers 7": "its brokers are 0, 1, 2",
        f"restart {sandbox.cluster} --brokers x": "Usage: /kafka restart",
        "status Bad_Name": "not a valid cluster name",
        "status nosuch": "the managed clusters are",
        "runs nosuch": "the managed clusters are",
        "run r-00000000": "No run r-00000000",
        "run 42": "Usage: /kafka run",
        "abort r-00000000": "No run r-00000000",
        "resume r-00000000": "No run r-00000000",
        "approve r-00000000": "No run r-00000000",
        "approve": "Usage: /kafka approve",
        "frobnicate": "unknown",
        "help frobnicate": "unknown",
    }
    for line, expected in cases.items():
        reply = alice.command(line)
        assert reply["event"] == "error", (line, reply)
        assert expected.lower() in reply["text"].lower(), (line, reply["text"])
    listed = alice.command("runs")
    assert listed["event"] == "reply" and "No runs" in listed["text"]
