"""HTTP mode end to end: ``python -m bot run --http`` as a real process on loopback, real Redis,
the stub Web API, and requests signed (or not) the way Slack signs them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.fakes.cluster import APPROVER, REQUESTER
from tests.slack.bot_server import UNREACHABLE_KUBECONFIG, SlackBotProcess, bot_env, clusters_yaml
from tests.slack.payloads import (
    BOT_TOKEN,
    SIGNING_SECRET,
    block_actions_body,
    block_actions_payload,
    signed_headers,
    slash_body,
    slash_payload,
)
from tests.slack.stub_web_api import StubWebApi

CLUSTER = "east"


@pytest.fixture
def http_bot(tmp_path: Path, redis_url: str, slack_api: StubWebApi) -> Iterator[SlackBotProcess]:
    (tmp_path / "clusters.yaml").write_text(clusters_yaml(CLUSTER, approvers=[REQUESTER, APPROVER]))
    (tmp_path / "kubeconfig").write_text(UNREACHABLE_KUBECONFIG)
    # The cluster is unreachable on purpose; with the monitors on, its alert would fire while a slow
    # test runs and write keys and post messages that the request tests count as the requests' own.
    env = bot_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack_api.url,
                  REDIS_URL=redis_url, KAFKA_CHATOPS_CONFIG=str(tmp_path / "clusters.yaml"),
                  KUBECONFIG=str(tmp_path / "kubeconfig"), KAFKA_CHATOPS_MONITORS="false")
    bot = SlackBotProcess(env, tmp_path / "bot.log", http=True).start()
    try:
        yield bot
    finally:
        bot.stop()
    assert BOT_TOKEN not in bot.log() and SIGNING_SECRET not in bot.log(), "a secret reached the log"


def test_signed_slash_command_is_answered_over_http(http_bot: SlackBotProcess, slack_api: StubWebApi) -> None:
    """A correctly signed `/kafka clusters` gets a 200 with the answer in the body, well within 3 s."""
    body = slash_body(slash_payload("clusters", REQUESTER, response_url=slack_api.response_url()))
    status, text, seconds = http_bot.post(body, signed_headers(body))
    assert status == 200, text
    assert CLUSTER in json.loads(text)["text"]
    assert seconds < 3


def test_unsigned_forged_and_replayed_requests_are_rejected_and_change_nothing(
        http_bot: SlackBotProcess, slack_api: StubWebApi, redis_url: str) -> None:
    """A forged signature, a missing one and a 6-minute-old timestamp get 401: no run, no key, no Web API call."""
    admin = redis.Redis.from_url(redis_url)
    keys_before, calls_before = sorted(admin.keys("*")), slack_api.count()
    restart = slash_body(slash_payload(f"restart {CLUSTER}", REQUESTER, response_url=slack_api.response_url()))
    click = block_actions_body(block_actions_payload("kco_approve", '{"run":"r-1"}', APPROVER))
    old = int(time.time()) - 360
    attempts = {
        "forged": (restart, signed_headers(restart, secret="0" * 32)),
        "missing": (restart, {"Content-Type": "application/x-www-form-urlencoded"}),
        "replayed": (restart, signed_headers(restart, timestamp=old)),
        "forged click": (click, signed_headers(click, secret="f" * 32)),
        "tampered body": (restart.replace("east", "west"), signed_headers(restart)),
    }
    for name, (body, headers) in attempts.items():
        status, text, _ = http_bot.post(body, headers)
        assert status == 401, f"{name}: {status} {text}"
    assert sorted(admin.keys("*")) == keys_before
    assert slack_api.count() == calls_before
    admin.close()


def test_a_click_on_an_unknown_run_is_answered_privately(http_bot: SlackBotProcess, slack_api: StubWebApi) -> None:
    """A signed block_actions is acked (200) and the clicker alone hears why nothing happened."""
    body = block_actions_body(block_actions_payload(
        "kco_approve", '{"run":"r-00000000","step":"restart-0","nonce":"n","plan":"p"}', APPROVER,
        response_url=slack_api.response_url("click")))
    status, _, seconds = http_bot.post(body, signed_headers(body))
    assert status == 200 and seconds < 3
    deadline = time.monotonic() + 10
    while not slack_api.calls_to("response_url") and time.monotonic() < deadline:
        time.sleep(0.05)
    [answer] = slack_api.calls_to("response_url")
    assert answer.args["response_type"] == "ephemeral" and "No run r-00000000" in answer.args["text"]
