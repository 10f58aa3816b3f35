"""A rolling update of the bot's Deployment while a run is under way, as Kubernetes does it: two
``python -m bot run --http`` replicas on real brokers behind the emulated Strimzi, real Redis and the
stub Web API; each replica is replaced mid-step the way ``maxSurge: 1, maxUnavailable: 0`` replaces a
pod: the new one started and Ready (``/readyz`` 200: Redis, the monitors, the Slack listener) before
the old one gets SIGTERM. Approvals are clicked on the card, through whichever replica is up. The run
succeeds, every broker restarted exactly once, each step approved once, the audit one chain driven by
more than one replica, and every old replica exited cleanly (0) within the pod's grace period."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.engine.harness import PodUidTracker, assert_audit_is_a_chain, read_audit, read_run, wait_for_run
from tests.fakes.cluster import APPROVER, REQUESTER
from tests.fixtures.redis_server import free_port
from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_until
from tests.slack.bot_server import SlackBotProcess, bot_env, clusters_yaml, readyz
from tests.slack.payloads import (
    BOT_TOKEN,
    SIGNING_SECRET,
    block_actions_body,
    block_actions_payload,
    find_button,
    signed_headers,
    slash_body,
    slash_payload,
)
from tests.slack.stub_web_api import StubWebApi

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(900)]

TERMINAL = ("succeeded", "failed", "aborted")


class Replicas:
    """The Deployment's pods, as bot processes; Slack's requests go to the newest one that is up."""

    def __init__(self, env: dict[str, str], workdir: Path, api: StubWebApi, redis_url: str) -> None:
        self._env, self._workdir, self._api = env, workdir, api
        self._redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.up: list[SlackBotProcess] = []
        self.stopped: list[SlackBotProcess] = []

    def start(self) -> SlackBotProcess:
        health = free_port()
        replica = SlackBotProcess({**self._env, "KAFKA_CHATOPS_HTTP_PORT": str(health)},
                                  self._workdir / f"bot-{len(self.up) + len(self.stopped)}.log", http=True).start()
        self.up.append(replica)
        wait_until(lambda: readyz(health) == (200, "ready\n"), timeout=60, interval=0.2,
                   message=f"the new replica to be Ready (last: {readyz(health)}; log: {replica.log_path})")
        return replica

    def replace(self, old: SlackBotProcess) -> SlackBotProcess:
        new = self.start()  # Ready first (maxUnavailable 0) ...
        old.stop()  # ... then SIGTERM to the old one
        self.up.remove(old)
        self.stopped.append(old)
        return new

    def command(self, text: str, user: str) -> dict[str, Any]:
        body = slash_body(slash_payload(text, user, response_url=self._api.response_url("cmd")))
        status, answer, _ = self.up[-1].post(body, signed_headers(body))
        assert status == 200, (status, answer)
        return dict(json.loads(answer))

    def approve(self, run_id: str, step_id: str) -> None:
        """Click Approve on the card once it asks for ``step_id``."""
        def button() -> str | None:
            card = self._redis.hgetall(f"kco:slack:card:{run_id}")
            message = self._api.message(card.get("channel", ""), card.get("ts", ""))
            found = find_button(message.blocks, "kco_approve") if message else None
            return str(found["value"]) if found and f'"step":"{step_id}"' in found["value"] else None

        value = wait_until(button, timeout=300, interval=0.2, message=f"the card of {run_id} to ask for {step_id}")
        body = block_actions_body(block_actions_payload("kco_approve", str(value), APPROVER,
                                                        response_url=self._api.response_url("click")))
        status, answer, _ = self.up[-1].post(body, signed_headers(body))
        assert status == 200, (status, answer)


def test_runs_in_flight_survive_a_rolling_update_of_the_deployment(
        sandbox: SandboxInfo, redis_url: str, stub_api_server: StubWebApi, tmp_path: Path) -> None:
    stub_api_server.reset()
    config = tmp_path / "clusters.yaml"
    config.write_text(clusters_yaml(sandbox.cluster, namespace=sandbox.namespace, approvers=[REQUESTER, APPROVER]))
    env = bot_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=stub_api_server.url,
                  REDIS_URL=redis_url, KAFKA_CHATOPS_CONFIG=str(config), KUBECONFIG=sandbox.kubeconfig,
                  KAFKA_CHATOPS_HTTP_HOST="127.0.0.1", KAFKA_CHATOPS_LEASE_TTL="3",
                  KAFKA_CHATOPS_POLL_INTERVAL="0.3")
    replicas = Replicas(env, tmp_path, stub_api_server, redis_url)

    def in_flight(step: str) -> None:
        wait_for_run(redis_url, run_id, lambda r: r["state"] == "waiting" and any(
            s["spec"]["id"] == step and s["state"] in ("running", "waiting") for s in r["steps"]),
            timeout=120, what=f"{step} to be in flight")

    try:
        pod_a, pod_b = replicas.start(), replicas.start()
        with PodUidTracker(sandbox) as pods:
            run_id = replicas.command(f"restart {sandbox.cluster}", REQUESTER)["text"].split("`")[1]
            steps = [s["spec"]["id"] for s in read_run(redis_url, run_id)["steps"]]
            restarts = [s for s in steps if s.startswith("restart-")]
            assert len(restarts) == sandbox.brokers and steps[-1] == "elect-leaders", steps

            replicas.approve(run_id, restarts[0])
            in_flight(restarts[0])
            replicas.replace(pod_a)  # pod A rolled while a broker restarts

            replicas.approve(run_id, restarts[1])
            in_flight(restarts[1])
            replicas.replace(pod_b)  # then pod B, mid-step again

            for step in (*restarts[2:], "elect-leaders"):
                replicas.approve(run_id, step)
            run = wait_for_run(redis_url, run_id, lambda r: r["state"] in TERMINAL, timeout=180,
                               what="the run to finish")
        assert run["state"] == "succeeded", run.get("pause_reason")
    finally:
        for replica in replicas.up:
            replica.stop()

    for old in replicas.stopped:  # SIGTERM handled: leases handed back, a clean exit within the grace period
        assert old.process is not None and old.process.returncode == 0, (old.process, old.log()[-2000:])
    assert pods.restarts() == {name: 1 for name in pods.restarts()}, pods.restarts()
    assert len(pods.restarts()) == sandbox.brokers
    entries = read_audit(redis_url, run_id)
    assert_audit_is_a_chain(entries)
    assert [e.step_id for e in entries if e.action == "approve"] == steps[1:], "each step approved once"
    drivers = {e.actor.split("@", 1)[1] for e in entries if "@" in e.actor}
    assert len(drivers) >= 2, f"the run was driven by {drivers} only: no hand-over happened"
