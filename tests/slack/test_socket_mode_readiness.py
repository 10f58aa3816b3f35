"""``/readyz`` of the real bot process in Socket Mode against the stubs: ready once the websocket is
connected; 503 naming Slack while Slack has dropped it and refuses reconnects; ready again, without a
restart, once reconnects are allowed (the SDK reconnects on its own, every ping interval: 10 s)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.cluster import APPROVER, REQUESTER
from tests.fixtures.redis_server import free_port
from tests.fixtures.waiting import wait_until
from tests.slack.bot_server import UNREACHABLE_KUBECONFIG, SlackBotProcess, bot_env, clusters_yaml
from tests.slack.payloads import APP_TOKEN, BOT_TOKEN
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


def readyz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:  # not listening yet
        return 0, str(exc)


def test_readyz_follows_the_socket_mode_connection(tmp_path: Path, redis_url: str, slack_api: StubWebApi,
                                                   socket_server: StubSocketMode) -> None:
    (tmp_path / "clusters.yaml").write_text(clusters_yaml("east", approvers=[REQUESTER, APPROVER]))
    (tmp_path / "kubeconfig").write_text(UNREACHABLE_KUBECONFIG)
    health_port = free_port()
    env = bot_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=APP_TOKEN, SLACK_API_URL=slack_api.url,
                  REDIS_URL=redis_url, KAFKA_CHATOPS_CONFIG=str(tmp_path / "clusters.yaml"),
                  KUBECONFIG=str(tmp_path / "kubeconfig"), KAFKA_CHATOPS_HTTP_PORT=str(health_port),
                  KAFKA_CHATOPS_HTTP_HOST="127.0.0.1")
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
