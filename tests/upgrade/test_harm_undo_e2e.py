"""Harm, pause, undo, end to end on real brokers, under an acks=all producer: two console bot processes,
a real Redis, a 3-broker Kafka 4.3.1 sandbox of this module's own.

The change passes every check but keeps a broker from starting: the sandbox's ``start-failure`` fault
(``sandbox fault start-failure --when auto.create.topics.enable=true``) makes every start of a broker
whose config has that value die at start-up. The operator rolls the first broker, it crash-loops; the
run pauses within seconds (not at its 600 s step timeout) saying which broker and what its pod says.
The undo, asked for by the requester and approved by another approver, is allowed on the NotReady
cluster because that is the run's own harm; it takes over the cluster lock, puts the key back, follows
the operator's roll of the broken broker and verifies. The cluster is Ready again, only the broken
broker was restarted, and the producer lost nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.engine.harness import PodUidTracker, read_run, run_id_of
from tests.fixtures.sandbox import SandboxInfo
from tests.sandbox.cluster_helpers import StrimziCluster
from tests.upgrade.scenario import PARTITIONS, TOPIC, console_bots, healthy, kafka_status, make_topic
from tests.upgrade.traffic import Traffic

pytestmark = pytest.mark.sandbox
KEY = "auto.create.topics.enable"
PAUSE_WITHIN_S = 60.0  # the crash shows ~3-8 s after the pod starts; the step's own timeout is 600 s


@pytest.fixture(scope="module")
def harm_sandbox(sandbox_factory: Callable[..., SandboxInfo]) -> Iterator[tuple[SandboxInfo, StrimziCluster]]:
    info = sandbox_factory("harm-e2e", kafka_version="4.3.1", brokers=3)
    try:
        yield info, make_topic(info)
    finally:
        info.down()


def test_a_change_that_keeps_a_broker_from_starting_pauses_and_its_undo_repairs_the_cluster(
    harm_sandbox: tuple[SandboxInfo, StrimziCluster], redis_url: str, tmp_path: Path,
) -> None:
    sandbox, cluster = harm_sandbox
    c = sandbox.cluster
    sandbox.cli("fault", "start-failure", "--when", f"{KEY}=true")
    try:
        with console_bots(sandbox, redis_url, tmp_path) as bots, PodUidTracker(sandbox) as pods, \
                Traffic(sandbox.bootstrap_servers, TOPIC, partitions=PARTITIONS) as traffic:
            requester, approver = bots.requester, bots.approver
            run_id = run_id_of(requester.command(f"config {c} set {KEY}=true"))
            ask = approver.expect(lambda e: e.get("run_id") == run_id and e["event"] == "step_awaiting_approval",
                                  timeout=120, what="the patch's approval request")
            approver.send(f"approve {run_id} {ask['step_id']}")
            approved_at = time.monotonic()
            paused = approver.expect(lambda e: e.get("run_id") == run_id and e["event"] in ("step_paused",
                                                                                           "run_finished"),
                                     timeout=600, what="the run to pause")
            paused_after = time.monotonic() - approved_at
            run = read_run(redis_url, run_id)
            status_at_pause = kafka_status(cluster)

            reply = requester.command(f"undo {c} {run_id}")
            undo_id = run_id_of(reply)
            ask = approver.expect(lambda e: e.get("run_id") == undo_id and e["event"] == "step_awaiting_approval",
                                  timeout=120, what="the undo's approval request")
            refused = requester.command(f"approve {undo_id} {ask['step_id']}")
            approver.send(f"approve {undo_id} {ask['step_id']}")
            finished = approver.expect(lambda e: e.get("run_id") == undo_id and e["event"] == "run_finished",
                                       timeout=600, what="the undo to finish")
            time.sleep(1)
    finally:
        sandbox.cli("fault", "start-failure", "--clear")

    assert paused["event"] == "step_paused", run.get("outcome")
    assert paused_after < PAUSE_WITHIN_S, f"paused {paused_after:.0f} s after the approval"
    reason = run["pause_reason"] or ""
    broken = run["steps"][run["current"]]["spec"]["args"]["broker"]
    assert f"broker {broken} is down (pod {c}-dual-role-{broken}: " in reason, reason
    assert "container restart" in reason or "CrashLoopBackOff" in reason, reason
    assert status_at_pause.get("observedGeneration") is not None

    assert refused["event"] == "error" and "Four-eyes" in refused["text"], refused
    assert finished["final_state"] == "succeeded", read_run(redis_url, undo_id).get("pause_reason")
    ended = read_run(redis_url, run_id)
    assert ended["state"] == "aborted"
    assert f"Superseded by undo run {undo_id}" in ended["outcome"]
    undo = read_run(redis_url, undo_id)
    assert [s["spec"]["id"] for s in undo["steps"]] == ["revert", f"undo-{broken}", "undo-done", "verify"]
    assert all(s["state"] == "done" for s in undo["steps"])

    status = kafka_status(cluster)
    ready = next(cond for cond in status["conditions"] if cond["type"] in ("Ready", "NotReady"))
    assert ready["type"] == "Ready" and ready["status"] == "True", status
    assert KEY not in (cluster.kafka()["spec"]["kafka"].get("config") or {})
    assert healthy(sandbox)
    restarts = pods.restarts()
    assert restarts.pop(f"{c}-dual-role-{broken}") >= 2, "restarted by the change, then by the undo"
    assert not any(restarts.values()), f"no other broker was restarted: {restarts}"
    traffic.report().assert_exactly_once()
