"""Socket Mode end to end against the stub Socket Mode server: ``hello``, ``slash_commands`` and
``interactive`` envelopes in, acks (with their response payloads) out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from bot.slack.app import build_front_end, build_web_client
from bot.slack.blocks import APPROVE_ACTION
from runbooks.engine.models import RunState
from tests.fakes.cluster import APPROVER, REQUESTER, FakeCluster, managed
from tests.fixtures.fake_runtime import close_runtime, fake_runtime
from tests.fixtures.waiting import wait_for, wait_until
from tests.slack.bot_server import UNREACHABLE_KUBECONFIG, SlackBotProcess, bot_env, clusters_yaml
from tests.slack.harness import InProcessBot
from tests.slack.payloads import APP_TOKEN, BOT_TOKEN, block_actions_payload, find_button, slash_payload
from tests.slack.stub_socket_mode import StubSocketMode
from tests.slack.stub_web_api import StubWebApi

CLUSTER = "east"


@pytest.fixture
def socket_server(slack_api: StubWebApi) -> Iterator[StubSocketMode]:
    server = StubSocketMode().start()
    slack_api.socket_mode_url = server.url
    try:
        yield server
    finally:
        server.stop()


def test_the_bot_process_speaks_socket_mode(tmp_path: Path, redis_url: str, slack_api: StubWebApi,
                                            socket_server: StubSocketMode) -> None:
    """`python -m bot run` with SLACK_APP_TOKEN connects, acks each envelope by id, answers in the ack payload."""
    (tmp_path / "clusters.yaml").write_text(clusters_yaml(CLUSTER, approvers=[REQUESTER, APPROVER]))
    (tmp_path / "kubeconfig").write_text(UNREACHABLE_KUBECONFIG)
    env = bot_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=APP_TOKEN, SLACK_API_URL=slack_api.url,
                  REDIS_URL=redis_url, KAFKA_CHATOPS_CONFIG=str(tmp_path / "clusters.yaml"),
                  KUBECONFIG=str(tmp_path / "kubeconfig"))
    bot = SlackBotProcess(env, tmp_path / "bot.log", http=False).start()
    try:
        wait_until(lambda: socket_server.connections >= 1, timeout=20, message="a Socket Mode connection")
        assert slack_api.calls_to("apps.connections.open")[0].token == APP_TOKEN
        ack = socket_server.slash_command(slash_payload("clusters", REQUESTER, response_url=slack_api.response_url()))
        assert CLUSTER in ack["payload"]["text"]
        ack = socket_server.slash_command(slash_payload("approve r-12345678", APPROVER))
        assert ack["payload"]["response_type"] == "ephemeral" and "*Approve* button" in ack["payload"]["text"]
        click = block_actions_payload(APPROVE_ACTION, '{"run":"r-00000000"}', APPROVER,
                                      response_url=slack_api.response_url("click"))
        ack = socket_server.interactive(click)
        assert "envelope_id" in ack
        wait_until(lambda: slack_api.calls_to("response_url"), timeout=10, message="the private answer")
        assert "No run r-00000000" in slack_api.calls_to("response_url")[0].args["text"]
    finally:
        bot.stop()
    assert APP_TOKEN not in bot.log() and BOT_TOKEN not in bot.log()


async def test_a_whole_run_over_socket_mode(redis_url: str, slack_api: StubWebApi,
                                            socket_server: StubSocketMode) -> None:
    """`/kafka restart` then Approve clicks, all as Socket Mode envelopes: the run succeeds and the card says so."""
    runtime = await fake_runtime(redis_url, {CLUSTER: managed(CLUSTER)}, FakeCluster())
    client = build_web_client(BOT_TOKEN, slack_api.url)
    front = build_front_end(runtime, client, signing_secret=None, socket_mode=True)
    handler = AsyncSocketModeHandler(front.app, APP_TOKEN, web_client=client)
    await runtime.start()
    await handler.connect_async()
    bot = InProcessBot(runtime, front, slack_api, front.cards._runs)
    try:
        ack = await socket_server.slash_command_async(slash_payload(f"restart {CLUSTER} --brokers 1", REQUESTER))
        run_id = ack["payload"]["text"].split("`")[1]
        for step_id in ("restart-1", "elect-leaders"):
            value = await bot.approve_button(run_id, step_id)
            card = await bot.card(run_id)
            await socket_server.interactive_async(block_actions_payload(APPROVE_ACTION, value, APPROVER,
                                                                        message_ts=card.ts))
        await bot.wait_state(run_id, RunState.SUCCEEDED)
        card = await bot.card_showing(run_id, RunState.SUCCEEDED)
        assert find_button(card.blocks, APPROVE_ACTION) is None
        await wait_for(lambda: socket_server.received, timeout=5, message="acks")
        assert all(set(json.loads(json.dumps(m))) >= {"envelope_id"} for m in socket_server.received)
    finally:
        await handler.close_async()
        await front.close()
        await close_runtime(runtime)
