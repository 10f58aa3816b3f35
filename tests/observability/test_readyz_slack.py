"""/readyz and the Slack transport (bot.observability.readiness): the health server on a real Redis
answers 503 naming Slack until the transport says it serves, while the Socket Mode client says it is
disconnected, and once the transport stops; 200 only when Slack and Redis are both fine."""

from __future__ import annotations

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.observability.http import HttpServer
from bot.observability.readiness import SlackReadiness
from bot.store import RunStore
from bot.store.alert_state import RedisAlertStore, RedisLagReports
from bot.store.repository import RedisRunRepository
from tests.fakes.alerts import cluster

pytestmark = pytest.mark.timeout(30)


class SocketModeClientState:
    """Stands in for the SDK client's ``is_connected()``: a port of the readiness check, not our code."""

    def __init__(self) -> None:
        self.connected = False

    async def is_connected(self) -> bool:
        return self.connected


async def readyz(server: HttpServer) -> tuple[int, str]:
    async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as http, http.get("/readyz") as answer:
        return answer.status, await answer.text()


def health_server(redis_client: aioredis.Redis, readiness: SlackReadiness) -> HttpServer:
    server = HttpServer(clusters={"prod": cluster()}, redis=redis_client,
                        runs=RedisRunRepository(RunStore(redis_client)), alerts=RedisAlertStore(redis_client),
                        reports=RedisLagReports(redis_client), monitors=None, host="127.0.0.1", port=0)
    server.add_check(readiness)
    return server


async def test_readyz_follows_the_socket_mode_connection(redis_client: aioredis.Redis) -> None:
    readiness = SlackReadiness()
    server = health_server(redis_client, readiness)
    socket = SocketModeClientState()
    await server.start()
    try:
        assert await readyz(server) == (503, "not ready: slack: not connected yet\n")
        readiness.socket_mode(socket.is_connected)
        assert await readyz(server) == (503, "not ready: slack: socket mode disconnected\n")
        socket.connected = True
        assert await readyz(server) == (200, "ready\n")
        socket.connected = False  # Slack dropped the websocket; the SDK is reconnecting
        assert await readyz(server) == (503, "not ready: slack: socket mode disconnected\n")
        socket.connected = True
        assert await readyz(server) == (200, "ready\n")
        readiness.stopped()  # SIGTERM: out of the Service before the last answers
        assert await readyz(server) == (503, "not ready: slack: transport stopped\n")
    finally:
        await server.stop()


async def test_in_http_mode_readyz_is_ready_once_the_listener_serves(redis_client: aioredis.Redis) -> None:
    readiness = SlackReadiness()
    server = health_server(redis_client, readiness)
    await server.start()
    try:
        assert (await readyz(server))[0] == 503
        readiness.http_serving()
        assert await readyz(server) == (200, "ready\n")
    finally:
        await server.stop()


async def test_readyz_names_both_slack_and_redis_when_both_are_down(redis_client: aioredis.Redis) -> None:
    readiness = SlackReadiness()
    socket = SocketModeClientState()
    readiness.socket_mode(socket.is_connected)
    # A client whose Redis answers nothing: the port is closed.
    unreachable = aioredis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=0.5, decode_responses=True)
    server = health_server(unreachable, readiness)
    await server.start()
    try:
        status, body = await readyz(server)
    finally:
        await server.stop()
        await unreachable.aclose()
    assert status == 503
    assert body.startswith("not ready: redis: ") and body.endswith("; slack: socket mode disconnected\n"), body
