"""Who may ask for what, and where, in the real process: ``python -m bot run --http`` reads the
clusters file's requesters and channels, and a signed `/kafka restart` from an outsider, or from the
wrong channel, is refused in the ephemeral answer and logged as one JSON audit line. Its Kubernetes
API does not answer: a refusal never needs it, while a requester's restart gets past the rule and
stops there (real Redis, the stub Web API, real HTTP)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.cluster import APPROVER, OUTSIDER, REQUESTER
from tests.slack.bot_server import UNREACHABLE_KUBECONFIG, SlackBotProcess, bot_env, clusters_yaml
from tests.slack.payloads import BOT_TOKEN, CHANNEL, SIGNING_SECRET, signed_headers, slash_body, slash_payload
from tests.slack.stub_web_api import StubWebApi

pytestmark = pytest.mark.timeout(120)

CLUSTER = "east"


@pytest.fixture
def bot(tmp_path: Path, redis_url: str, slack_api: StubWebApi) -> Iterator[SlackBotProcess]:
    access = f"    requesters: [{REQUESTER}]\n    channels: [{CHANNEL}]\n"
    config = clusters_yaml(CLUSTER, approvers=[APPROVER]) + access
    (tmp_path / "clusters.yaml").write_text(config)
    (tmp_path / "kubeconfig").write_text(UNREACHABLE_KUBECONFIG)
    env = bot_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack_api.url,
                  REDIS_URL=redis_url, KAFKA_CHATOPS_CONFIG=str(tmp_path / "clusters.yaml"),
                  KUBECONFIG=str(tmp_path / "kubeconfig"), KAFKA_CHATOPS_MONITORS="false",
                  KAFKA_CHATOPS_LOG_FORMAT="json")
    process = SlackBotProcess(env, tmp_path / "bot.log", http=True).start()
    try:
        yield process
    finally:
        process.stop()


def slash(bot: SlackBotProcess, api: StubWebApi, text: str, user: str, channel: str = CHANNEL) -> dict[str, Any]:
    body = slash_body(slash_payload(text, user, channel=channel, response_url=api.response_url()))
    status, answer, _ = bot.post(body, signed_headers(body), timeout=30)
    assert status == 200, answer
    return dict(json.loads(answer))


def refused_lines(bot: SlackBotProcess) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in bot.log().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "kafka_chatops.audit" and line.get("action") == "refused"]


def test_an_outsiders_restart_is_refused_privately_and_audited_and_a_requester_gets_past_the_rule(
        bot: SlackBotProcess, slack_api: StubWebApi) -> None:
    outsider = slash(bot, slack_api, f"restart {CLUSTER}", OUTSIDER)
    assert outsider == {"response_type": "ephemeral", "text": f"{OUTSIDER} may not start restart on {CLUSTER}: only "
                        f"the requesters of {CLUSTER} ({REQUESTER}) may."}
    misplaced = slash(bot, slack_api, f"restart {CLUSTER}", REQUESTER, channel="D0SOMEDM")
    assert misplaced["response_type"] == "ephemeral"
    assert misplaced["text"] == f"Commands for {CLUSTER} are taken in #{CHANNEL} only (this was #D0SOMEDM)."
    assert [(line["actor"], line["verb"], line["cluster"], line["channel"], line["code"])
            for line in refused_lines(bot)] == [(OUTSIDER, "restart", CLUSTER, CHANNEL, "not_requester"),
                                                (REQUESTER, "restart", CLUSTER, "D0SOMEDM", "wrong_channel")]
    assert "Traceback" not in bot.log(), "the refusals never reached for the Kubernetes API"

    requester = slash(bot, slack_api, f"restart {CLUSTER}", REQUESTER)
    assert requester["text"].startswith("Could not do that"), requester  # the unreachable Kubernetes API
    assert len(refused_lines(bot)) == 2, "the requester's restart was not refused: it went on to the cluster"
