"""The Slack scenario on the real sandbox: ``python -m bot run --http`` against real Kafka brokers
behind the emulated Strimzi, clicked through with signed ``block_actions`` like Slack sends them,
each request on a new connection.

Broker restarts cost ~15 s each, so the module restarts all three brokers once (the full scenario,
with every refusal checked on the way) and one broker once more (the 429 storm).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis

from bot.store.record import load_run
from runbooks.engine.models import AuditEntry, Run, RunState
from tests.fakes.cluster import APPROVER, APPROVER_GROUP, OUTSIDER, REQUESTER
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_until
from tests.slack.bot_server import SlackBotProcess, bot_env, clusters_yaml
from tests.slack.payloads import (
    BOT_TOKEN,
    SIGNING_SECRET,
    block_actions_body,
    block_actions_payload,
    card_text,
    find_button,
    signed_headers,
    slash_body,
    slash_payload,
)
from tests.slack.stub_web_api import StubWebApi

pytest_plugins = ["tests.fixtures.sandbox"]
pytestmark = pytest.mark.sandbox

RUN_TIMEOUT_S = 300.0


class Scenario:
    """The bot process, the stub, Redis and the sandbox, with the few moves the tests make."""

    def __init__(self, bot: SlackBotProcess, api: StubWebApi, redis_url: str, sandbox: SandboxInfo) -> None:
        self.bot, self.api, self.sandbox = bot, api, sandbox
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)

    def command(self, text: str, user: str) -> dict[str, Any]:
        body = slash_body(slash_payload(text, user, response_url=self.api.response_url("cmd")))
        status, answer, seconds = self.bot.post(body, signed_headers(body))
        assert status == 200 and seconds < 3, (status, answer, seconds)
        return dict(json.loads(answer))

    def click(self, action_id: str, value: str, user: str) -> None:
        body = block_actions_body(block_actions_payload(action_id, value, user,
                                                        response_url=self.api.response_url(f"click-{user}")))
        status, answer, seconds = self.bot.post(body, signed_headers(body))
        assert status == 200 and seconds < 3, (status, answer, seconds)

    def run(self, run_id: str) -> Run:
        return load_run(json.loads(self.redis.hget(f"kco:run:{run_id}", "doc") or "{}"))

    def audit(self, run_id: str) -> list[AuditEntry]:
        return [AuditEntry.model_validate_json(fields["entry"])
                for _, fields in self.redis.xrange(f"kco:audit:{run_id}")]

    def card(self, run_id: str) -> tuple[str, str, list[dict[str, Any]]]:
        card = self.redis.hgetall(f"kco:slack:card:{run_id}")
        message = self.api.message(card.get("channel", ""), card.get("ts", ""))
        assert message is not None, f"no card for {run_id}"
        return message.channel, message.ts, message.blocks

    def approve_value(self, run_id: str, step_id: str) -> str:
        def button() -> str | None:
            if not self.redis.hget(f"kco:slack:card:{run_id}", "ts"):
                return None
            found = find_button(self.card(run_id)[2], "kco_approve")
            return str(found["value"]) if found and f'"step":"{step_id}"' in found["value"] else None
        return str(wait_until(button, timeout=RUN_TIMEOUT_S, interval=0.2,
                              message=f"the card of {run_id} to ask for {step_id} (log: {self.bot.log_path})"))

    def wait_finished(self, run_id: str) -> Run:
        run = wait_until(lambda: (r := self.run(run_id)).state.terminal and r, timeout=RUN_TIMEOUT_S, interval=0.5,
                         message=f"run {run_id} to finish (log: {self.bot.log_path})")
        assert isinstance(run, Run)
        return run

    def final_card(self, run_id: str) -> list[dict[str, Any]]:
        """The card once it shows the finished run, as the stub holds it after the last edit."""
        def finished() -> list[dict[str, Any]] | None:
            blocks = self.card(run_id)[2]
            return blocks if "*succeeded*" in card_text(blocks) else None
        wait_until(finished, timeout=60, interval=0.2, message=f"the card of {run_id} to show success")
        time.sleep(2)  # nothing may overwrite it afterwards: give a late edit the chance to show up
        return self.card(run_id)[2]

    def replies_to(self, user: str, at_least: int = 0) -> list[str]:
        """The private answers clicks by ``user`` got (they are sent just after the ack: wait for them)."""
        def replies() -> list[str]:
            return [c.args["text"] for c in self.api.calls_to("response_url") if c.args.get("key") == f"click-{user}"]
        if at_least:
            wait_until(lambda: len(replies()) >= at_least, timeout=10, message=f"{at_least} answers to {user}")
        return replies()


class PodWatcher:
    """Every uid each broker pod had while the test ran (a restart gives the pod a new uid)."""

    def __init__(self, sandbox: SandboxInfo) -> None:
        from kubernetes import client

        self._api = client.CoreV1Api(sandbox.api_client())
        self._namespace = sandbox.namespace
        self.uids: dict[str, set[str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                for pod in self._api.list_namespaced_pod(self._namespace).items:
                    self.uids.setdefault(pod.metadata.name, set()).add(pod.metadata.uid)
            except Exception:  # a missed poll only means fewer samples
                pass
            self._stop.wait(0.5)

    def __enter__(self) -> PodWatcher:
        self._thread.start()
        wait_until(lambda: self.uids, timeout=10, message="the first pod listing")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture(scope="module")
def scenario(sandbox: SandboxInfo, redis_server: RedisServer, stub_api_server: StubWebApi,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    redis_server.ensure_running()
    with redis.Redis.from_url(redis_server.url) as admin:
        admin.flushall()
    workdir = tmp_path_factory.mktemp("slack-sandbox")
    config = workdir / "clusters.yaml"
    config.write_text(clusters_yaml(sandbox.cluster, namespace=sandbox.namespace, approvers=[REQUESTER, APPROVER],
                                    approver_groups=[APPROVER_GROUP]))
    env = bot_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=stub_api_server.url,
                  REDIS_URL=redis_server.url, KAFKA_CHATOPS_CONFIG=str(config), KUBECONFIG=sandbox.kubeconfig)
    bot = SlackBotProcess(env, Path(workdir) / "bot.log", http=True).start()
    try:
        yield Scenario(bot, stub_api_server, redis_server.url, sandbox)
    finally:
        bot.stop()


@pytest.fixture
def api(scenario: Scenario) -> StubWebApi:
    scenario.api.reset()
    scenario.api.usergroups = {APPROVER_GROUP: []}
    return scenario.api


def test_restart_from_slack_with_every_step_approved_by_button(scenario: Scenario, api: StubWebApi) -> None:
    """Forged requests change nothing; then /kafka restart, refused clicks on the way, each step approved once,
    every broker restarted exactly once, and a final card with every step done and no buttons."""
    cluster = scenario.sandbox.cluster
    text = f"restart {cluster}"
    body = slash_body(slash_payload(text, REQUESTER, response_url=api.response_url("cmd")))
    for headers in (signed_headers(body, secret="0" * 32), {"Content-Type": "application/x-www-form-urlencoded"},
                    signed_headers(body, timestamp=int(time.time()) - 301)):
        assert scenario.bot.post(body, headers)[0] == 401
    assert not scenario.redis.keys("kco:run:*") and api.count() == 0

    with PodWatcher(scenario.sandbox) as pods:
        answer = scenario.command(text, REQUESTER)
        run_id = answer["text"].split("`")[1]
        run = scenario.run(run_id)  # in Redis by the time the ack came back
        steps = [s.id for s in run.steps]
        restart_steps = [s for s in steps if s.startswith("restart-")]
        assert len(restart_steps) == 3 and steps[-1] == "elect-leaders"

        first = scenario.approve_value(run_id, restart_steps[0])
        before = scenario.run(run_id)
        scenario.click("kco_approve", first, OUTSIDER)
        scenario.click("kco_approve", first, REQUESTER)
        assert scenario.run(run_id).approval == before.approval
        assert "not an approver" in scenario.replies_to(OUTSIDER, 1)[0]
        assert "Four-eyes" in scenario.replies_to(REQUESTER, 1)[0]
        with ThreadPoolExecutor(2) as pool:  # a double click
            list(pool.map(lambda _: scenario.click("kco_approve", first, APPROVER), range(2)))

        second = scenario.approve_value(run_id, restart_steps[1])
        scenario.click("kco_approve", first, APPROVER)  # a stale button: the step it shows is done
        refusals = scenario.replies_to(APPROVER, 2)
        assert len(refusals) == 2 and all("no longer waiting" in r for r in refusals), refusals
        scenario.click("kco_approve", second, APPROVER)
        for step_id in steps[3:]:
            scenario.click("kco_approve", scenario.approve_value(run_id, step_id), APPROVER)
        final = scenario.wait_finished(run_id)
    assert final.state is RunState.SUCCEEDED, final.outcome

    audit = scenario.audit(run_id)
    approvals = [e.step_id for e in audit if e.action == "approve"]
    assert approvals == steps[1:], "each step approved exactly once"
    assert [(e.actor, e.detail.split(":")[0]) for e in audit if e.action == "approve_refused"][:2] == [
        (OUTSIDER, "not_approver"), (REQUESTER, "self_approval")]
    broker_pods = {s.spec.args.pod for s in final.steps if s.id.startswith("restart-")}
    assert {pod: len(pods.uids[pod]) for pod in broker_pods} == dict.fromkeys(broker_pods, 2), pods.uids

    blocks = scenario.final_card(run_id)
    assert not [b for b in blocks if b.get("type") == "actions"]
    assert card_text(blocks).count("✅") == len(steps)
    _, ts, _ = scenario.card(run_id)
    assert len([c for c in api.calls_to("chat.postMessage") if "thread_ts" not in c.args]) == 1
    last_update = [c for c in api.calls_to("chat.update", ok_only=True) if c.args["ts"] == ts][-1]
    assert last_update.args["blocks"] == blocks


def test_a_429_storm_during_a_run_loses_nothing(scenario: Scenario, api: StubWebApi) -> None:
    """Slack rate-limits the card for a while mid-run (Retry-After honoured): the run completes, the card ends right."""
    cluster = scenario.sandbox.cluster
    run_id = scenario.command(f"restart {cluster} --brokers 0", REQUESTER)["text"].split("`")[1]
    value = scenario.approve_value(run_id, "restart-0")
    api.fail("chat.update", status=429, retry_after=1, times=8)
    api.fail("chat.postMessage", status=429, retry_after=1, times=4)
    scenario.click("kco_approve", value, APPROVER)
    value = scenario.approve_value(run_id, "elect-leaders")
    api.fail("chat.update", status=429, retry_after=2, times=5)
    scenario.click("kco_approve", value, APPROVER)
    final = scenario.wait_finished(run_id)
    assert final.state is RunState.SUCCEEDED, final.outcome
    blocks = scenario.final_card(run_id)
    assert not [b for b in blocks if b.get("type") == "actions"]
    assert card_text(blocks).count("✅") == len(final.steps)
    assert len([c for c in api.calls_to("chat.update") if c.status == 429]) == 13
