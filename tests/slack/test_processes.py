"""``kafka-chatops run [--http] --processes N``: request servers beside the bot, sharing its HTTP
port or each with its own Socket Mode connection.

The supervisor (``RequestServers``) is driven with small real programs standing in for a request
server; the bot itself runs as a real process with the stub Web API (and the stub Socket Mode
server) and a real Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.foreground import SharedInFlight
from bot.slack.processes import READY, RequestServerFailed, RequestServers
from tests.fakes.cluster import APPROVER, REQUESTER
from tests.fixtures.waiting import wait_until
from tests.slack.bot_server import UNREACHABLE_KUBECONFIG, SlackBotProcess, bot_env, clusters_yaml
from tests.slack.payloads import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET, signed_headers, slash_body, slash_payload
from tests.slack.stub_socket_mode import StubSocketMode
from tests.slack.stub_web_api import StubWebApi

CLUSTER = "east"
# Stands in for a request server: ready at once, then alive until SIGTERM or its stdin closes.
SERVES_UNTIL_STOPPED = f"import sys; print({READY!r}, flush=True); sys.stdin.read()"


def alive(pid: int) -> bool:
    """Running: a zombie (exited, not yet reaped by whoever inherited it) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and alive(int(entry.name)):
                found.append(int(entry.name))
    return found


async def test_request_servers_start_and_stop_with_the_bot() -> None:
    """start() returns once every one said ready; stop() ends them all."""
    servers = RequestServers([sys.executable, "-c", SERVES_UNTIL_STOPPED], 3)
    await servers.start()
    pids = servers.pids
    assert len(pids) == 3 and all(alive(pid) for pid in pids)
    await servers.stop()
    assert not any(alive(pid) for pid in pids) and servers.pids == []


async def test_a_request_server_that_exits_before_ready_fails_the_start() -> None:
    """The error names the exit code, and the ones that did start are stopped again."""
    servers = RequestServers([sys.executable, "-c", "raise SystemExit(3)"], 2)
    with pytest.raises(RequestServerFailed, match="exited with code 3 before it was ready"):
        await servers.start()
    assert servers.pids == []


async def test_a_request_server_that_never_says_ready_is_killed_and_fails_the_start() -> None:
    servers = RequestServers([sys.executable, "-c", "import time; time.sleep(60)"], 1, start_timeout_s=1,
                             stop_timeout_s=1)
    started = time.monotonic()
    with pytest.raises(RequestServerFailed, match="was not ready within 1 s"):
        await servers.start()
    assert time.monotonic() - started < 10


async def test_a_request_server_that_dies_is_started_again() -> None:
    servers = RequestServers([sys.executable, "-c", SERVES_UNTIL_STOPPED], 1)
    await servers.start()
    try:
        [first] = servers.pids
        os.kill(first, signal.SIGKILL)
        await wait_for_new_pid(servers, first)
        [second] = servers.pids
        assert second != first and alive(second)
    finally:
        await servers.stop()


async def test_the_slot_of_a_request_server_that_died_mid_request_is_cleared(tmp_path: Path) -> None:
    """Each request server gets its own slot of the bot's in-flight board; one killed while answering
    a request leaves its count up, and the supervisor zeroes it, so the bot's background work is
    not held back by a process that is gone. (The stand-in writes its slot only in its first life.)"""
    first_life = tmp_path / "first-life"
    code = ("import sys, pathlib; from bot.foreground import SharedInFlight; "
            f"board = SharedInFlight.from_environment(); marker = pathlib.Path({str(first_life)!r}); "
            "first = not marker.exists(); marker.touch(); "
            "board.publish(3, 0.0) if first else None; "  # a later life leaves its slot as it finds it
            f"print({READY!r}, flush=True); sys.stdin.read()")
    board = SharedInFlight.create(2)
    servers = RequestServers([sys.executable, "-c", code], 1, board=board)
    await servers.start()
    try:
        assert board.others_busy(time.monotonic(), settle_s=0), "the request server's count is on the board"
        [busy] = servers.pids
        os.kill(busy, signal.SIGKILL)
        await wait_for_new_pid(servers, busy)
        assert not board.others_busy(time.monotonic(), settle_s=0)
    finally:
        await servers.stop()
        board.close()


async def wait_for_new_pid(servers: RequestServers, old: int) -> None:
    deadline = time.monotonic() + 20
    while servers.pids in ([], [old]):
        assert time.monotonic() < deadline, "the dead request server was not replaced within 20 s"
        await asyncio.sleep(0.1)


def settings_env(tmp_path: Path, **slack: str) -> dict[str, str]:
    (tmp_path / "clusters.yaml").write_text(clusters_yaml(CLUSTER, approvers=[REQUESTER, APPROVER]))
    (tmp_path / "kubeconfig").write_text(UNREACHABLE_KUBECONFIG)
    return bot_env(SLACK_BOT_TOKEN=BOT_TOKEN, KAFKA_CHATOPS_CONFIG=str(tmp_path / "clusters.yaml"),
                   KUBECONFIG=str(tmp_path / "kubeconfig"), **slack)


@pytest.fixture
def two_process_bot(tmp_path: Path, redis_url: str, slack_api: StubWebApi) -> Iterator[SlackBotProcess]:
    env = settings_env(tmp_path, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack_api.url, REDIS_URL=redis_url)
    bot = SlackBotProcess(env, tmp_path / "bot.log", http=True, processes=2).start()
    try:
        yield bot
    finally:
        bot.stop()
    assert BOT_TOKEN not in bot.log() and SIGNING_SECRET not in bot.log(), "a secret reached the log"


def answer_or_nothing(bot: SlackBotProcess, body: str, headers: dict[str, str]) -> tuple[int, str]:
    """(status, body), or (0, what went wrong) when nothing answers within 3 s."""
    try:
        status, text, _ = bot.post(body, headers, timeout=3)
    except OSError as exc:
        return 0, repr(exc)
    return status, text


def clusters_request(slack_api: StubWebApi) -> str:
    return slash_body(slash_payload("clusters", REQUESTER, response_url=slack_api.response_url()))


def test_the_request_server_answers_signed_requests_and_refuses_forged_ones(
        two_process_bot: SlackBotProcess, slack_api: StubWebApi) -> None:
    """With the bot's own process frozen (SIGSTOP), the connections the kernel gives the request server
    are still answered, and its answers are the bot's: the answer to a signed command, 401 to a forgery."""
    bot = two_process_bot
    assert bot.process is not None
    body = clusters_request(slack_api)
    attempts = [(body, signed_headers(body))] * 16 + [(body, signed_headers(body, secret="0" * 32))] * 16
    os.kill(bot.process.pid, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(len(attempts)) as pool:
            answers = list(pool.map(lambda a: answer_or_nothing(bot, *a), attempts))
    finally:
        os.kill(bot.process.pid, signal.SIGCONT)
    signed = [(status, text) for status, text in answers[:16] if status != 0]
    forged = [status for status, _ in answers[16:] if status != 0]
    assert signed, f"no signed request was answered while the bot's own process was stopped: {answers}"
    assert all(status == 200 and CLUSTER in json.loads(text)["text"] for status, text in signed), signed
    assert forged and set(forged) == {401}, forged


def test_a_killed_request_server_is_replaced_and_every_request_is_answered(
        two_process_bot: SlackBotProcess, slack_api: StubWebApi) -> None:
    bot = two_process_bot
    assert bot.process is not None
    [child] = children_of(bot.process.pid)
    os.kill(child, signal.SIGKILL)
    wait_until(lambda: "started again" in bot.log(), timeout=60, interval=0.1, message="a new request server")
    assert "exited with code -9; starting another" in bot.log()
    [replacement] = children_of(bot.process.pid)
    assert replacement != child
    body = clusters_request(slack_api)
    with ThreadPoolExecutor(16) as pool:
        statuses = [status for status, _, _ in pool.map(lambda _: bot.post(body, signed_headers(body)), range(16))]
    assert statuses == [200] * 16


def test_stopping_the_bot_stops_its_request_server(two_process_bot: SlackBotProcess) -> None:
    bot = two_process_bot
    assert bot.process is not None
    [child] = children_of(bot.process.pid)
    bot.stop()
    assert bot.process.returncode == 0
    wait_until(lambda: not alive(child), timeout=10, interval=0.1, message="the request server to stop")


def test_a_request_server_does_not_outlive_a_killed_bot(two_process_bot: SlackBotProcess) -> None:
    """SIGKILL gives the bot no chance to stop anything: its request server sees its stdin close and stops."""
    bot = two_process_bot
    assert bot.process is not None
    [child] = children_of(bot.process.pid)
    bot.process.kill()
    bot.process.wait(10)
    wait_until(lambda: not alive(child), timeout=15, interval=0.1, message="the orphaned request server to stop")


def test_in_socket_mode_each_process_answers_on_its_own_connection(
        tmp_path: Path, redis_url: str, slack_api: StubWebApi) -> None:
    """Three processes open three connections; a command sent on any of them is answered, and a killed
    request server's connection is opened again by its replacement."""
    socket_server = StubSocketMode().start()
    try:
        slack_api.socket_mode_url = socket_server.url
        env = settings_env(tmp_path, SLACK_APP_TOKEN=APP_TOKEN, SLACK_API_URL=slack_api.url, REDIS_URL=redis_url)
        bot = SlackBotProcess(env, tmp_path / "bot.log", http=False, processes=3).start()
        try:
            assert bot.process is not None
            assert socket_server.open_connections == 3
            for connection in range(3):
                ack = socket_server.slash_command(slash_payload("clusters", REQUESTER), connection=connection)
                assert CLUSTER in ack["payload"]["text"], (connection, ack)
            children = children_of(bot.process.pid)
            assert len(children) == 2
            os.kill(children[0], signal.SIGKILL)
            wait_until(lambda: "started again" in bot.log(), timeout=60, interval=0.1, message="a new request server")
            wait_until(lambda: socket_server.open_connections == 3, timeout=30, interval=0.1,
                       message="three connections again")
            ack = socket_server.slash_command(slash_payload("clusters", REQUESTER))  # the newest: the replacement's
            assert CLUSTER in ack["payload"]["text"]
        finally:
            bot.stop()
        assert APP_TOKEN not in bot.log() and BOT_TOKEN not in bot.log()
    finally:
        socket_server.stop()
