"""The zero-downtime proofs driven through Slack: ``python -m bot run --http`` as a subprocess, the stub
Slack Web API, signed ``/kafka`` commands and Approve clicks exactly as Slack sends them, under traffic.
One sandbox (4.2.2) and one bot process for the module: the upgrade first, then a config change that
needs a restart and one that does not (on the upgraded cluster). Built on the Slack front end's own
test harness (tests/slack)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from bot.store.record import load_run
from runbooks.engine.models import Run, RunState
from tests.engine.harness import PodUidTracker
from tests.fakes.cluster import APPROVER, REQUESTER
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_until
from tests.sandbox.cluster_helpers import StrimziCluster
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
from tests.upgrade.scenario import PARTITIONS, TOPIC, healthy, kafka_status, make_topic
from tests.upgrade.traffic import Traffic

pytestmark = pytest.mark.sandbox


class SlackSide:
    """The bot process, the stub and Redis, with the moves a person makes in Slack."""

    def __init__(self, bot: SlackBotProcess, api: StubWebApi, redis_url: str) -> None:
        self.bot, self.api = bot, api
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)

    def command(self, text: str, user: str) -> dict[str, Any]:
        body = slash_body(slash_payload(text, user, response_url=self.api.response_url("cmd")))
        status, answer, seconds = self.bot.post(body, signed_headers(body))
        assert status == 200 and seconds < 3, (status, answer, seconds)
        return dict(json.loads(answer))

    def new_run(self, before: set[str]) -> str:
        """The run the command created. Planning reads Kubernetes and Kafka, which may take longer than
        Slack's 3 s, in which case the ack says "working on it" and the answer follows by response_url:
        Redis is where the run is in either case."""
        key = wait_until(lambda: next(iter(set(self.redis.keys("kco:run:*")) - before), None), timeout=60,
                         interval=0.2, message=f"a run in Redis (log: {self.bot.log_path})")
        return str(key).removeprefix("kco:run:")

    def start(self, text: str, user: str) -> str:
        before = set(self.redis.keys("kco:run:*"))
        self.command(text, user)
        return self.new_run(before)

    def finish(self, run_id: str, approvals: tuple[str, ...], approver: str) -> Run:
        for step_id in approvals:
            self.approve_when_asked(run_id, step_id, approver)
        final = wait_until(lambda: (r := self.run(run_id)).state.terminal and r, timeout=300, interval=0.5,
                           message=f"run {run_id} to finish")
        assert isinstance(final, Run)
        return final

    def final_card(self, run_id: str) -> list[dict[str, Any]]:
        def finished_card() -> list[dict[str, Any]] | None:
            blocks = self.card(run_id)
            return blocks if "succeeded" in card_text(blocks) else None

        blocks: list[dict[str, Any]] = wait_until(finished_card, timeout=60, interval=0.3,
                                                  message="the card to show the finished run")
        assert not [b for b in blocks if b.get("type") == "actions"], "buttons left on a finished card"
        return blocks

    def run(self, run_id: str) -> Run:
        return load_run(json.loads(self.redis.hget(f"kco:run:{run_id}", "doc") or "{}"))

    def card(self, run_id: str) -> list[dict[str, Any]]:
        card = self.redis.hgetall(f"kco:slack:card:{run_id}")
        message = self.api.message(card.get("channel", ""), card.get("ts", ""))
        return list(message.blocks) if message is not None else []

    def approve_when_asked(self, run_id: str, step_id: str, user: str) -> None:
        def button() -> str | None:
            found = find_button(self.card(run_id), "kco_approve")
            return str(found["value"]) if found and f'"step":"{step_id}"' in found["value"] else None

        value = wait_until(button, timeout=300, interval=0.2,
                           message=f"the card of {run_id} to ask for {step_id} (run {self.run(run_id).state.value}, "
                                   f"log: {self.bot.log_path})")
        body = block_actions_body(block_actions_payload("kco_approve", value, user,
                                                        response_url=self.api.response_url(f"click-{user}")))
        status, answer, seconds = self.bot.post(body, signed_headers(body))
        assert status == 200 and seconds < 3, (status, answer, seconds)


@pytest.fixture(scope="module")
def slack_side(sandbox_factory: Callable[..., SandboxInfo], redis_server: RedisServer,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SlackSide, SandboxInfo]]:
    tmp_path = tmp_path_factory.mktemp("upgrade-slack")
    sandbox = sandbox_factory("up-slack", kafka_version="4.2.2", brokers=3)
    make_topic(sandbox)
    redis_server.ensure_running()
    with redis.Redis.from_url(redis_server.url) as admin:
        admin.flushall()
    config = tmp_path / "clusters.yaml"
    config.write_text(clusters_yaml(sandbox.cluster, namespace=sandbox.namespace, approvers=[REQUESTER, APPROVER]))
    try:
        with StubWebApi() as api:
            env = bot_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=api.url,
                          REDIS_URL=redis_server.url, KAFKA_CHATOPS_CONFIG=str(config), KUBECONFIG=sandbox.kubeconfig,
                          KAFKA_CHATOPS_POLL_INTERVAL="0.3")
            bot = SlackBotProcess(env, tmp_path / "bot.log", http=True).start()
            try:
                yield SlackSide(bot, api, redis_server.url), sandbox
            finally:
                bot.stop()
    finally:
        sandbox.down()


def test_upgrade_from_slack_with_button_approvals_loses_nothing(slack_side: tuple[SlackSide, SandboxInfo]) -> None:
    """`/kafka upgrade <cluster> 4.3.1` in Slack, the roll and the metadata raise approved with the card's
    buttons, under traffic: every record consumed once, each broker restarted once and on 4.3.1, metadata
    4.3-IV0, healthy, and the final card shows every step done with no buttons left."""
    slack, sandbox = slack_side
    with PodUidTracker(sandbox) as pods, Traffic(sandbox.bootstrap_servers, TOPIC, partitions=PARTITIONS) as traffic:
        run_id = slack.start(f"upgrade {sandbox.cluster} 4.3.1", REQUESTER)
        final = slack.finish(run_id, ("roll-version", "raise-metadata"), APPROVER)
        time.sleep(1)
    assert final.state is RunState.SUCCEEDED, final.pause_reason
    traffic.report().assert_exactly_once()
    assert pods.restarts() == {f"{sandbox.cluster}-dual-role-{n}": 1 for n in range(3)}
    status = kafka_status(StrimziCluster(sandbox.api_client(), sandbox.namespace, sandbox.cluster))
    assert (status["kafkaVersion"], status["kafkaMetadataVersion"]) == ("4.3.1", "4.3-IV0")
    assert healthy(sandbox)
    text = card_text(slack.final_card(run_id))
    assert text.count("✅") == len(final.steps) and "4.3.1" in text


@pytest.mark.parametrize(("change", "restarts"), [
    ("set auto.create.topics.enable=true", 1),  # read at start-up only: the operator rolls every broker
    ("set log.retention.ms=86400000", 0),  # dynamic: applied live
])
def test_config_change_from_slack_under_traffic(slack_side: tuple[SlackSide, SandboxInfo], change: str,
                                                restarts: int) -> None:
    """`/kafka config <cluster> <change>` approved with the card's button, under traffic: nothing lost; every
    broker restarted once for a start-up key and not at all for a dynamic one; the value on every broker."""
    slack, sandbox = slack_side
    with PodUidTracker(sandbox) as pods, Traffic(sandbox.bootstrap_servers, TOPIC, partitions=PARTITIONS) as traffic:
        run_id = slack.start(f"config {sandbox.cluster} {change}", REQUESTER)
        final = slack.finish(run_id, ("patch-config",), APPROVER)
        time.sleep(1)
    assert final.state is RunState.SUCCEEDED, final.pause_reason
    traffic.report().assert_exactly_once()
    assert pods.restarts() == {f"{sandbox.cluster}-dual-role-{n}": restarts for n in range(3)}
    verify = final.step("verify")
    assert verify is not None and "on every broker" in verify.detail
    assert ("applied without a restart" in verify.detail) == (restarts == 0)
    assert healthy(sandbox)
    slack.final_card(run_id)
