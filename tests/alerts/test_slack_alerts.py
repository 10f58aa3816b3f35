"""Alerts through the Slack front end: the message blocks, the channel on the stub Web API, and
two in-process replicas (real Redis, the session sandbox) of which one posts; the Snooze and
next-action buttons clicked as Slack sends them (signed block_actions into the real Bolt app)."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.app import Runtime, build_runtime
from bot.config.settings import Settings
from bot.slack.alert_posts import COMMAND_ACTION, SNOOZE_ACTION, SlackAlertChannel, alert_blocks, attach_slack_alerts
from bot.slack.app import SlackFrontEnd, build_front_end, build_web_client
from handlers.alerting.alert_text import AlertButton, AlertView
from runbooks.alerting.lifecycle import Condition, MessageRef, Phase
from tests.alerts.harness import clusters_file, commit, create_topic, produce
from tests.fakes.alerts import cluster
from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_for
from tests.slack.payloads import (
    BOT_TOKEN,
    CHANNEL,
    SIGNING_SECRET,
    block_actions_body,
    block_actions_payload,
    signed_headers,
)
from tests.slack.stub_web_api import StubWebApi

ONCALL = "U0ONCALL"
OUTSIDER = "U0OUTSIDER"


@pytest.fixture(scope="module")
def stub() -> Iterator[StubWebApi]:
    with StubWebApi() as api:
        yield api


def view() -> AlertView:
    return AlertView(alert_id="a-1b2c3d4e", cluster="prod", condition=Condition.UNDER_REPLICATED,
                     subject="broker-2", phase=Phase.FIRING, headline="🔴 prod: under-replicated <now>",
                     lines=("3 partitions & more",),
                     buttons=(AlertButton(label="Snooze 30 min", action="snooze", value="30m"),
                              AlertButton(label="Snooze 2 h", action="snooze", value="2h"),
                              AlertButton(label="Restart broker 2", action="command",
                                          value="/kafka restart prod --brokers 2", style="primary")))


def test_alert_blocks_carry_the_alert_id_the_choices_and_a_confirmed_command() -> None:
    """Unique action ids per snooze choice, escaped text, and a confirm dialog before a command runs."""
    blocks = alert_blocks(view())
    assert blocks[0]["text"]["text"] == "*🔴 prod: under-replicated &lt;now&gt;*"
    assert blocks[1]["text"]["text"] == "3 partitions &amp; more"
    snooze, snooze_2h, restart = blocks[2]["elements"]
    assert (snooze["action_id"], snooze_2h["action_id"]) == (f"{SNOOZE_ACTION}-30m", f"{SNOOZE_ACTION}-2h")
    assert json.loads(snooze["value"]) == {"alert": "a-1b2c3d4e", "for": "30m"}
    assert restart["action_id"] == COMMAND_ACTION and restart["style"] == "primary"
    assert json.loads(restart["value"])["command"] == "/kafka restart prod --brokers 2"
    assert restart["confirm"]["confirm"]["text"] == "Run it"


async def test_the_channel_posts_in_the_clusters_channel_and_edits_that_message(stub: StubWebApi) -> None:
    """chat.postMessage in the cluster's channel, then chat.update of the same ts."""
    stub.reset()
    channel = SlackAlertChannel(build_web_client(BOT_TOKEN, stub.url))
    prod = cluster().model_copy(update={"channel": CHANNEL})
    ref = await channel.post(prod, view())
    await channel.update(prod, ref, view().model_copy(update={"phase": Phase.RESOLVED, "headline": "✅ resolved"}))
    assert ref.channel == CHANNEL
    message = stub.message(CHANNEL, ref.id)
    assert message is not None and "resolved" in message.text
    assert len(stub.calls_to("chat.postMessage")) == 1 and len(stub.calls_to("chat.update")) == 1
    silent = await channel.post(cluster().model_copy(update={"channel": None}), view())  # logged, not posted
    assert silent == MessageRef(channel=None, id="unposted:a-1b2c3d4e")
    assert len(stub.calls_to("chat.postMessage")) == 1


async def replica(
    settings: Settings, owner: str, stub: StubWebApi, stack: AsyncExitStack,
) -> tuple[Runtime, SlackFrontEnd]:
    runtime = await build_runtime(settings, owner=owner)
    front = build_front_end(runtime, build_web_client(BOT_TOKEN, stub.url), signing_secret=SIGNING_SECRET,
                            socket_mode=False)
    attach_slack_alerts(runtime, front)
    await runtime.start()
    await front.start()
    stack.push_async_callback(runtime.close)
    stack.push_async_callback(front.close)
    return runtime, front


async def click(front: SlackFrontEnd, stub: StubWebApi, action_id: str, value: str, key: str,
                user: str = ONCALL) -> None:
    payload = block_actions_payload(action_id, value, user, response_url=stub.response_url(key))
    body = block_actions_body(payload)
    response = await front.app.async_dispatch(AsyncBoltRequest(body=body, headers=signed_headers(body)))
    assert response.status == 200, response.body
    await front.background.wait()  # the clicker's private answer is sent after the ack


@pytest.fixture
async def two_replicas(sandbox: SandboxInfo, redis_url: str, stub: StubWebApi, tmp_path: Path,
                       ) -> AsyncIterator[list[tuple[Runtime, SlackFrontEnd]]]:
    stub.reset()
    config = clusters_file(tmp_path / "clusters.yaml", sandbox, {
        "lagslack": "{health_poll: 1s, lag_poll: 1s, update_interval: 1s, consumer_lag: {for: 0s, max_lag: 10, "
                    "growth: {enabled: false}, include_groups: 'slack-.*'}}"}, channel=CHANNEL)
    config.write_text(config.read_text() + f"    viewers: [{ONCALL}]\n")  # a snooze is judged like a view
    settings = Settings(redis_url=redis_url, kubeconfig=sandbox.kubeconfig, kafka_chatops_config=str(config),
                        kafka_chatops_watch_timeout=20)
    async with AsyncExitStack() as stack:
        yield [await replica(settings, f"replica-{i}", stub, stack) for i in range(2)]


@pytest.mark.sandbox
async def test_two_replicas_post_one_slack_message_and_its_buttons_work(
    sandbox: SandboxInfo, stub: StubWebApi, two_replicas: list[tuple[Runtime, SlackFrontEnd]],
) -> None:
    """A lagging group: one chat.postMessage from two replicas. Snooze 2 h clicked by someone who may
    not view the cluster: refused privately, nothing muted. Clicked by a viewer on the other replica:
    stored, answered privately, and the message edited to say who. "Show the group" answers with its
    partitions."""
    topic = group = f"slack-{secrets.token_hex(3)}"
    create_topic(sandbox.bootstrap_servers, topic)
    produce(sandbox.bootstrap_servers, topic, 50)
    commit(sandbox.bootstrap_servers, group, topic, 0)

    def alert_posts() -> list:  # type: ignore[type-arg]
        return [c for c in stub.calls_to("chat.postMessage", ok_only=True) if group in str(c.args.get("text", ""))]

    await wait_for(alert_posts, timeout=60, message="the lag alert posted in Slack")
    await asyncio.sleep(3)  # several more polls on both replicas
    posts = alert_posts()
    assert len(posts) == 1, [c.args for c in posts]
    ts = next(m.ts for m in stub.cards() if group in m.text)
    message = stub.message(CHANNEL, ts)
    assert message is not None
    snooze_2h = next(e for b in message.blocks if b["type"] == "actions" for e in b["elements"]
                     if e["action_id"] == f"{SNOOZE_ACTION}-2h")
    leader = two_replicas[0][0].alerting.monitors.leading.get("lagslack")  # type: ignore[union-attr]
    clicked_on = two_replicas[1][1] if leader else two_replicas[0][1]  # the replica that did not post
    await click(clicked_on, stub, snooze_2h["action_id"], snooze_2h["value"], "outsider", user=OUTSIDER)
    refused = stub.calls_to("response_url")[-1].args
    assert refused["response_type"] == "ephemeral"
    assert refused["text"].startswith(f"{OUTSIDER} may not use snooze on lagslack: only its viewers ({ONCALL})")
    assert "Snoozed by" not in (stub.message(CHANNEL, ts) or message).text
    await click(clicked_on, stub, snooze_2h["action_id"], snooze_2h["value"], "snooze")
    answer = stub.calls_to("response_url")[-1].args
    assert answer["response_type"] == "ephemeral" and "Snoozed" in answer["text"]
    edited = await wait_for(lambda: (m := stub.message(CHANNEL, ts)) is not None and f"<@{ONCALL}>" in m.text and m,
                            timeout=10, message="the message edited to show who snoozed it")
    assert "Snoozed by" in edited.text
    show = next(e for b in edited.blocks if b["type"] == "actions" for e in b["elements"]
                if e["action_id"] == COMMAND_ACTION)
    await click(clicked_on, stub, COMMAND_ACTION, show["value"], "show")
    shown = stub.calls_to("response_url")[-1].args
    assert f"{topic}-0" in shown["text"] and "Members: none" in shown["text"]
