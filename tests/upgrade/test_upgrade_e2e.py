"""The version upgrade end to end: console bot processes on a real Redis, a fresh 3-broker sandbox at
Kafka 4.2.2 (real JVMs behind the emulated Strimzi), real traffic. Each test has its own sandbox (a
finished upgrade cannot be undone) and tears it down, so at most one of these runs at a time."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.engine.harness import PodUidTracker, assert_audit_is_a_chain, read_audit, read_run
from tests.fixtures.bot_process import Event
from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_until
from tests.upgrade.scenario import (
    PARTITIONS,
    TOPIC,
    Bots,
    console_bots,
    healthy,
    kafka_status,
    make_topic,
    run_with_approvals,
)
from tests.upgrade.traffic import Traffic

pytestmark = pytest.mark.sandbox


@pytest.fixture
def old_sandbox(sandbox_factory: Callable[..., SandboxInfo], request: pytest.FixtureRequest) -> Iterator[SandboxInfo]:
    name = "up-" + request.node.name.removeprefix("test_")[:12].replace("_", "-").rstrip("-")
    info = sandbox_factory(name, kafka_version="4.2.2", brokers=3)
    try:
        yield info
    finally:
        info.down()


def test_upgrade_to_4_3_1_under_traffic_loses_nothing_and_restarts_each_broker_once(
    old_sandbox: SandboxInfo, redis_url: str, tmp_path: Path,
) -> None:
    """4.2.2 -> 4.3.1 with approvals while an idempotent acks=all producer and a consumer run: every record
    consumed exactly once, no failed send, each broker restarted exactly once and running 4.3.1, metadata
    raised to 4.3-IV0, the cluster healthy at the end."""
    cluster = make_topic(old_sandbox)
    names = {f"{old_sandbox.cluster}-dual-role-{n}" for n in range(3)}
    with console_bots(old_sandbox, redis_url, tmp_path) as bots, PodUidTracker(old_sandbox) as pods, \
            Traffic(old_sandbox.bootstrap_servers, TOPIC, partitions=PARTITIONS) as traffic:
        run_id, last, wall = run_with_approvals(bots, f"upgrade {old_sandbox.cluster} 4.3.1")
        time.sleep(2)  # a little traffic on the finished cluster too
    assert last["final_state"] == "succeeded", read_run(redis_url, run_id).get("pause_reason")
    report = traffic.report()
    report.assert_exactly_once()
    assert report.sent > 1000
    assert pods.restarts() == dict.fromkeys(sorted(names), 1)
    status = kafka_status(cluster)
    assert (status["kafkaVersion"], status["kafkaMetadataVersion"]) == ("4.3.1", "4.3-IV0")
    assert cluster.kafka()["spec"]["kafka"]["metadataVersion"] == "4.3-IV0"
    assert all(node["version"] == "4.3.1" and node["ready"] for node in old_sandbox.status()["nodes"])
    assert all(p.metadata.annotations["strimzi.io/kafka-version"] == "4.3.1" for p in cluster.pods().values())
    assert healthy(old_sandbox)
    approved = [e["step_id"] for e in bots.events if e["event"] == "step_awaiting_approval"]
    assert approved == ["roll-version", "raise-metadata"]
    followed = [e["step_id"] for e in bots.events if e["event"] == "step_done" and e["step_id"][5:].isdigit()]
    assert sorted(followed) == ["roll-0", "roll-1", "roll-2"], "each broker's health gate is its own step"
    run = read_run(redis_url, run_id)
    assert "Kafka 4.3.1 on brokers 0, 1, 2" in run["steps"][-1]["detail"]
    assert_audit_is_a_chain(read_audit(redis_url, run_id))
    print(f"upgrade wall {wall:.1f} s, {report.sent} records, longest ack gap {report.longest_ack_gap_s:.2f} s")


def test_broker_killed_mid_upgrade_pauses_the_run_until_retry(
    old_sandbox: SandboxInfo, redis_url: str, tmp_path: Path,
) -> None:
    """A broker killed (down 40 s) right after its own restart: the run pauses on the next broker with the
    reason, takes no further step (metadata stays pinned), and after Retry once the broker is back it
    finishes; every broker was restarted exactly once by the operator."""
    cluster = make_topic(old_sandbox)
    killed: list[str] = []

    def strike(event: Event) -> str | None:
        step = str(event.get("step_id") or "")
        if event["event"] == "step_done" and step.startswith("roll-") and step[5:].isdigit() and not killed:
            killed.append(step[5:])
            old_sandbox.cli("kill-broker", step[5:], "--down-for", "40")
        if event["event"] == "step_paused":
            return "stop"
        return None

    with console_bots(old_sandbox, redis_url, tmp_path) as bots, PodUidTracker(old_sandbox) as pods:
        run_id, paused, _ = run_with_approvals(bots, f"upgrade {old_sandbox.cluster} 4.3.1", on_event=strike)
        assert paused["event"] == "step_paused", paused
        victim = killed[0]
        run = read_run(redis_url, run_id)
        assert run["state"] == "paused"
        current = run["steps"][run["current"]]["spec"]["id"]
        assert current.startswith("roll-") and current != f"roll-{victim}", current
        assert f"broker {victim} is down" in run["pause_reason"], run["pause_reason"]
        assert cluster.kafka()["spec"]["kafka"]["metadataVersion"] == "4.2-IV1", "nothing may follow on a sick cluster"
        time.sleep(3)
        assert read_run(redis_url, run_id)["current"] == run["current"], "a paused run does not move"

        wait_until(lambda: healthy(old_sandbox), timeout=240, interval=2,
                   message=f"broker {victim} back, every partition fully replicated")
        resumed = bots.approver.command(f"resume {run_id}")
        assert resumed["event"] == "reply", resumed
        bots.approver.events.clear()
        run_id, last, _ = _finish(bots, run_id)
    assert last.get("final_state") == "succeeded", read_run(redis_url, run_id).get("pause_reason")
    assert pods.restarts() == {f"{old_sandbox.cluster}-dual-role-{n}": 1 for n in range(3)}
    assert kafka_status(cluster)["kafkaMetadataVersion"] == "4.3-IV0"
    assert healthy(old_sandbox)


def _finish(bots: Bots, run_id: str) -> tuple[str, Event, float]:
    start, seen = time.monotonic(), 0
    while True:
        event = bots.approver.expect(lambda e: e.get("run_id") == run_id, timeout=900, what="the run to end",
                                     since=seen)
        seen = bots.approver.past(event, seen)
        if event["event"] in ("run_finished", "step_paused"):
            return run_id, event, time.monotonic() - start
        if event["event"] == "step_awaiting_approval":
            bots.approver.send(f"approve {run_id} {event['step_id']}")
