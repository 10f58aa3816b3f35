"""A local Socket Mode server, after bolt-python's ``tests/adapter_tests/socket_mode/mock_socket_mode_server``.

The bot asks the stub Web API's ``apps.connections.open`` for a URL and gets this server's
``ws://127.0.0.1:<port>/link``. On connect the server sends ``hello``; then a test pushes envelopes
(``slash_commands`` or ``interactive``, each with an ``envelope_id``) and waits for the client's
ack, ``{"envelope_id": ..., "payload": {...}}``, which it returns. Runs in its own thread, like the
stub Web API, so the bot may be in-process or a subprocess. ``drop(refuse=True)`` closes every
websocket and turns new ones away (503 at the upgrade) until ``allow()``: Slack going away.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from tests.slack.stub_web_api import HOST, ServerThread

HELLO = {"type": "hello", "num_connections": 1, "debug_info": {"host": "stub", "build_number": 1,
         "approximate_connection_time": 18060}, "connection_info": {"app_id": "A0STUB"}}


class StubSocketMode:
    def __init__(self) -> None:
        self._sockets: list[web.WebSocketResponse] = []
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.connections = 0
        self.refused = 0  # upgrades turned away while refusing
        self._refusing = False
        self.received: list[dict[str, Any]] = []
        app = web.Application()
        app.router.add_get("/link", self._link)
        self._server = ServerThread(app)

    def start(self) -> StubSocketMode:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.call(self._close_all())
        self._server.stop()

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self._server.port}/link"

    async def _close_all(self) -> None:
        for ws in list(self._sockets):
            await ws.close()

    def drop(self, *, refuse: bool) -> None:
        """Close every open websocket; with ``refuse``, answer new upgrades 503 until ``allow()``."""
        with self._lock:
            self._refusing = refuse
        self._server.call(self._close_all())

    def allow(self) -> None:
        with self._lock:
            self._refusing = False

    async def _link(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            if self._refusing:
                self.refused += 1
                return web.Response(status=503, text="stub: Socket Mode unavailable")
        ws = web.WebSocketResponse(autoping=True)  # answers the SDK's pings with pongs
        await ws.prepare(request)
        with self._lock:
            self.connections += 1
        self._sockets.append(ws)
        await ws.send_str(json.dumps(HELLO))
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                with self._lock:
                    self.received.append(data)
                future = self._acks.pop(str(data.get("envelope_id", "")), None)
                if future is not None and not future.done():
                    future.set_result(data)
        finally:
            self._sockets.remove(ws)
        return ws

    @property
    def open_connections(self) -> int:
        return len(self._sockets)

    async def _push(self, envelope_type: str, payload: dict[str, Any], accepts_response_payload: bool,
                    timeout: float,  # noqa: ASYNC109 - the caller's deadline for the ack
                    connection: int = -1) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + 10
        while not self._sockets:  # the client may still be connecting
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("no Socket Mode client connected to the stub")
            await asyncio.sleep(0.05)
        envelope_id = str(uuid.uuid4())
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = future
        envelope = {"envelope_id": envelope_id, "payload": payload, "type": envelope_type,
                    "accepts_response_payload": accepts_response_payload}
        await self._sockets[connection].send_str(json.dumps(envelope))
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise AssertionError(f"no ack for {envelope_type} envelope {envelope_id} within {timeout} s") from None

    def slash_command(self, payload: dict[str, Any], timeout: float = 5.0, connection: int = -1) -> dict[str, Any]:
        """Push a ``slash_commands`` envelope on one connection (by default the newest) and return the
        client's ack (blocking; any thread)."""
        return dict(self._server.call(self._push("slash_commands", payload, True, timeout, connection), timeout + 15))

    def interactive(self, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Push an ``interactive`` envelope (e.g. block_actions) and return the client's ack."""
        return dict(self._server.call(self._push("interactive", payload, False, timeout), timeout + 15))

    async def slash_command_async(self, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        return dict(await self._server.call_async(self._push("slash_commands", payload, True, timeout)))

    async def interactive_async(self, payload: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        return dict(await self._server.call_async(self._push("interactive", payload, False, timeout)))
