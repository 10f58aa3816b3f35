"""``/readyz`` of the real bot process against the stubs. Socket Mode: not ready before the websocket
is first connected, ready once it is; 503 naming Slack while Slack has dropped it and refuses
reconnects; ready again, without a restart, once reconnects are allowed (the SDK retries on its own,
every ping interval: 10 s). HTTP mode: ready once the ``/slack/events`` listener serves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.cluster import APPROVER, REQUESTER
from tests.fixtures.redis_server import free_port
from tests.fixtures.waiting import wait_until
from tests.slack.bot_server import UNREACHABLE_KUBECONFIG, SlackBotProcess, bot_env, clusters_yaml, readyz
from tests.slack.payloads import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET
from tests.slack.stub_socket_mode import StubSocketMode
from tests.slack.stub_web_api import StubWebApi

pytestmark = pytest.mark.timeout(120)

DISCONNECTED = "slack: socket mode disconnected"


@pytest.fixture
def socket_server(slack_api: StubWebApi) -> Iterator[StubSocketMode]:
    server = StubSocketMode().start()
    slack_api.socket_mode_url = server.url
    try:
        yield server
    finally:
        server.stop()


def environment(tmp_path: Path, redis_url: str, slack_api: StubWebApi, health_port: int,
                **slack: str) -> dict[str, str]:
    (tmp_path / "clusters.yaml").write_text(clusters_yaml("east", approvers=[REQUESTER, APPROVER]))
    (tmp_path / "kubeconfig").write_text(UNREACHABLE_KUBECONFIG)
    return bot_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=slack_api.url, REDIS_URL=redis_url,
                   KAFKA_CHATOPS_CONFIG=str(tmp_path / "clusters.yaml"), KUBECONFIG=str(tmp_path / "kubeconfig"),
                   KAFKA_CHATOPS_HTTP_PORT=str(health_port), KAFKA_CHATOPS_HTTP_HOST="127.0.0.1", **slack)


def test_readyz_follows_the_socket_mode_connection(tmp_path: Path, redis_url: str, slack_api: StubWebApi,
                                                   socket_server: StubSocketMode) -> None:
    health_port = free_port()
    env = environment(tmp_path, redis_url, slack_api, health_port, SLACK_APP_TOKEN=APP_TOKEN)
    bot = SlackBotProcess(env, tmp_path / "bot.log", http=False).start()
    try:
        wait_until(lambda: readyz(health_port) == (200, "ready\n"), timeout=20, interval=0.2,
                   message=f"/readyz to say ready once connected (last: {readyz(health_port)})")

        socket_server.drop(refuse=True)  # Slack closes the websocket and turns reconnects away
        wait_until(lambda: readyz(health_port)[0] == 503, timeout=10, interval=0.2,
                   message="/readyz to answer 503 once the websocket is closed")
        assert readyz(health_port) == (503, f"not ready: {DISCONNECTED}\n")
        # Not ready for as long as Slack refuses: through at least one refused reconnect.
        wait_until(lambda: socket_server.refused >= 1, timeout=30, interval=0.2, message="a reconnect attempt")
        assert readyz(health_port) == (503, f"not ready: {DISCONNECTED}\n")
        assert socket_server.open_connections == 0

        socket_server.allow()
        wait_until(lambda: readyz(health_port) == (200, "ready\n"), timeout=30, interval=0.2,
                   message=f"/readyz to say ready again once reconnected (last: {readyz(health_port)})")
        assert socket_server.open_connections == 1
        assert socket_server.connections == 2  # the same process, reconnected: no restart
    finally:
        bot.stop()
    assert APP_TOKEN not in bot.log() and BOT_TOKEN not in bot.log()


def test_not_ready_before_socket_mode_first_connects(tmp_path: Path, redis_url: str, slack_api: StubWebApi,
                                                    socket_server: StubSocketMode) -> None:
    """The health server is up before the transport: while Slack refuses the first websocket, /readyz
    answers 503 "not connected yet" (the pod takes no traffic it cannot serve), then ready."""
    socket_server.drop(refuse=True)
    health_port = free_port()
    env = environment(tmp_path, redis_url, slack_api, health_port, SLACK_APP_TOKEN=APP_TOKEN)
    bot = SlackBotProcess(env, tmp_path / "bot.log", http=False).start(wait=False)
    try:
        wait_until(lambda: socket_server.refused >= 1 and readyz(health_port)[0] != 0, timeout=30, interval=0.2,
                   message="the health server up and a refused connection attempt")
        assert readyz(health_port) == (503, "not ready: slack: not connected yet\n")
        socket_server.allow()
        wait_until(lambda: readyz(health_port) == (200, "ready\n"), timeout=30, interval=0.2,
                   message=f"/readyz to say ready once connected (last: {readyz(health_port)})")
        assert socket_server.open_connections == 1
    finally:
        bot.stop()


def test_in_http_mode_ready_once_the_listener_serves(tmp_path: Path, redis_url: str,
                                                     slack_api: StubWebApi) -> None:
    """No connection to hold in HTTP mode: the Slack check passes once /slack/events serves."""
    health_port = free_port()
    env = environment(tmp_path, redis_url, slack_api, health_port, SLACK_SIGNING_SECRET=SIGNING_SECRET)
    bot = SlackBotProcess(env, tmp_path / "bot.log", http=True).start()
    try:
        wait_until(lambda: readyz(health_port) == (200, "ready\n"), timeout=20, interval=0.2,
                   message=f"/readyz to say ready (last: {readyz(health_port)})")
    finally:
        bot.stop()
