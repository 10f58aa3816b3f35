"""HTTP mode checks Slack's signature on the raw bytes before anything reads the body: an unsigned
or forged request, however malformed its body, gets 401 and one log line without the body in it,
never a 500 and a traceback. ``python -m bot run --http`` runs as a real process (real Redis, the
stub Web API); the requests are real HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.cluster import APPROVER, REQUESTER
from tests.slack.bot_server import UNREACHABLE_KUBECONFIG, SlackBotProcess, bot_env, clusters_yaml
from tests.slack.payloads import BOT_TOKEN, SIGNING_SECRET, signed_headers, slash_body, slash_payload
from tests.slack.stub_web_api import StubWebApi

pytestmark = pytest.mark.timeout(120)

CLUSTER = "east"
MARK = "BODYMARK7f3a"  # in every malformed body: it must never reach the log


@pytest.fixture
def bot(tmp_path: Path, redis_url: str, slack_api: StubWebApi) -> Iterator[SlackBotProcess]:
    (tmp_path / "clusters.yaml").write_text(clusters_yaml(CLUSTER, approvers=[REQUESTER, APPROVER]))
    (tmp_path / "kubeconfig").write_text(UNREACHABLE_KUBECONFIG)
    env = bot_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack_api.url,
                  REDIS_URL=redis_url, KAFKA_CHATOPS_CONFIG=str(tmp_path / "clusters.yaml"),
                  KUBECONFIG=str(tmp_path / "kubeconfig"), KAFKA_CHATOPS_MONITORS="false")
    process = SlackBotProcess(env, tmp_path / "bot.log", http=True).start()
    try:
        yield process
    finally:
        process.stop()


def post(bot: SlackBotProcess, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(bot.events_url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def new_log_lines(bot: SlackBotProcess, before: str) -> list[str]:
    time.sleep(0.2)  # the bot writes its line before it answers; this is only for the pipe
    return bot.log()[len(before):].splitlines()


MALFORMED: dict[str, tuple[bytes, dict[str, str]]] = {
    "broken JSON": (f'{{"type": "{MARK}", '.encode(), {"Content-Type": "application/json"}),
    "broken payload JSON": (f"payload=%7B%22{MARK}".encode(), {"Content-Type": "application/x-www-form-urlencoded"}),
    "payload not an object": (f"payload=%5B%22{MARK}%22%5D".encode(),
                              {"Content-Type": "application/x-www-form-urlencoded"}),
    "not UTF-8": (MARK.encode() + b"\xff\xfe\xd0", {"Content-Type": "application/x-www-form-urlencoded"}),
    "timestamp not a number": (f"payload=%7B{MARK}".encode(),
                               {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=abc"}),
    "signature not ASCII": (f'{{"{MARK}": 1'.encode(), {"Content-Type": "application/json",
                                                        "X-Slack-Request-Timestamp": str(int(time.time())),
                                                        "X-Slack-Signature": "v0=\u00e9\u00e9"}),
}


def test_unsigned_malformed_requests_get_401_and_one_log_line(bot: SlackBotProcess) -> None:
    for name, (body, headers) in MALFORMED.items():
        before = bot.log()
        assert post(bot, body, headers) == 401, name
        lines = new_log_lines(bot, before)
        assert len(lines) == 1, f"{name}: {lines}"
        assert "401" in lines[0] and "signature" in lines[0], f"{name}: {lines[0]}"
        assert MARK not in lines[0], f"{name}: the body reached the log"
    assert "Traceback" not in bot.log()


def test_a_forged_signature_on_a_malformed_body_is_refused_the_same_way(bot: SlackBotProcess) -> None:
    body = f'{{"type": "{MARK}", '
    headers = signed_headers(body, secret="0" * 32)
    before = bot.log()
    assert post(bot, body.encode(), {**headers, "Content-Type": "application/json"}) == 401
    assert len(new_log_lines(bot, before)) == 1
    assert "Traceback" not in bot.log() and MARK not in bot.log()


def test_a_signed_malformed_body_is_a_400_without_a_traceback(bot: SlackBotProcess) -> None:
    """Only someone holding the secret can send this; still one line and a clear status."""
    body = f'{{"type": "{MARK}", '
    before = bot.log()
    assert post(bot, body.encode(), {**signed_headers(body), "Content-Type": "application/json"}) == 400
    lines = new_log_lines(bot, before)
    assert len(lines) == 1 and MARK not in lines[0], lines
    assert "Traceback" not in bot.log()


def test_signed_requests_still_work_after_a_flood(bot: SlackBotProcess, slack_api: StubWebApi) -> None:
    for _ in range(20):
        post(bot, f'{{"{MARK}": '.encode(), {"Content-Type": "application/json"})
    body = slash_body(slash_payload("clusters", REQUESTER, response_url=slack_api.response_url()))
    request = urllib.request.Request(bot.events_url, data=body.encode(), headers=signed_headers(body), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert CLUSTER in json.loads(response.read())["text"]
    assert "Traceback" not in bot.log()

