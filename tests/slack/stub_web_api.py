"""A local stand-in for Slack's Web API, after bolt-python's ``tests/mock_web_api_server``.

An aiohttp server on loopback, in its own thread and event loop, so the bot under test may run in
the test's loop or in another process. It records every call (method, arguments, HTTP status it
answered), answers the methods the bot uses the way Slack does (``ts`` for posted messages, a
``usergroups.users.list`` from a table), keeps each message's latest text and blocks, and fails
on demand: ``fail("chat.update", status=429, retry_after=1, times=5)`` answers the next five
``chat.update`` calls with a 429 and a ``Retry-After`` header (bolt's mock has no header), or a
500. Slash-command and interaction ``response_url`` POSTs are recorded too, as method
``response_url``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

HOST = "127.0.0.1"
BOT_USER_ID = "U0BOT"


@dataclass
class ApiCall:
    method: str
    args: dict[str, Any]
    status: int
    at: float  # time.monotonic() when it arrived
    token: str = ""


@dataclass
class _Failure:
    status: int
    retry_after: int | None
    remaining: int
    error: str


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None


class ServerThread:
    """An aiohttp application served from a daemon thread with its own event loop."""

    def __init__(self, app: web.Application, host: str = HOST) -> None:
        self._app = app
        self._host = host
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self._error: BaseException | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="stub-slack", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"stub server did not start: {self._error}")

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._runner = web.AppRunner(self._app, access_log=None)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, self._host, 0)
            loop.run_until_complete(site.start())
            self.port = int(self._runner.addresses[0][1])
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        """Run a coroutine on the server's loop from any other thread and wait for its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def call_async(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """The same from a coroutine on another loop, without blocking that loop."""
        assert self._loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


class StubWebApi:
    def __init__(self, *, usergroups: dict[str, list[str]] | None = None) -> None:
        self._lock = threading.Lock()
        self.calls: list[ApiCall] = []
        self.messages: dict[tuple[str, str], Message] = {}
        self.usergroups: dict[str, list[str]] = dict(usergroups or {})
        self.socket_mode_url: str | None = None
        self._failures: dict[str, list[_Failure]] = {}
        self.response_url_delay_s = 0.0  # a slow response_url endpoint: the call is recorded, then answered late
        self._ts = 0
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)  # the SDK GETs a few methods (usergroups.users.list)
        app.router.add_post("/response/{key}", self._response_url)
        self._server = ServerThread(app)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> StubWebApi:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> StubWebApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The value for ``SLACK_API_URL``."""
        return f"http://{HOST}:{self._server.port}/api/"

    def response_url(self, key: str = "r1") -> str:
        return f"http://{HOST}:{self._server.port}/response/{key}"

    # -- failure injection -----------------------------------------------------------------------
    def fail(self, method: str, *, status: int = 429, retry_after: int | None = 1, times: int = 1,
             error: str = "ratelimited") -> None:
        """Answer the next ``times`` calls of ``method`` with ``status`` (429 carries Retry-After)."""
        with self._lock:
            self._failures.setdefault(method, []).append(_Failure(status, retry_after, times, error))

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    # -- what was called -------------------------------------------------------------------------
    def calls_to(self, method: str, *, ok_only: bool = False) -> list[ApiCall]:
        with self._lock:
            return [c for c in self.calls if c.method == method and (not ok_only or c.status == 200)]

    def count(self, method: str | None = None) -> int:
        with self._lock:
            return sum(1 for c in self.calls if method is None or c.method == method)

    def message(self, channel: str, ts: str) -> Message | None:
        with self._lock:
            return self.messages.get((channel, ts))

    def cards(self) -> list[Message]:
        """Top-level messages (run cards), oldest first."""
        with self._lock:
            return [m for m in self.messages.values() if m.thread_ts is None]

    def thread(self, channel: str, ts: str) -> list[Message]:
        with self._lock:
            return [m for m in self.messages.values() if m.channel == channel and m.thread_ts == ts]

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.messages.clear()
            self._failures.clear()

    # -- the server ------------------------------------------------------------------------------
    async def _arguments(self, request: web.Request) -> dict[str, Any]:
        raw = await request.text()
        if request.content_type == "application/json":
            args: dict[str, Any] = json.loads(raw) if raw else {}
        else:
            args = dict(parse_qsl(raw, keep_blank_values=True))
        args.update(request.query)
        for name in ("blocks", "attachments"):
            if isinstance(args.get(name), str):
                args[name] = json.loads(args[name])
        return args

    def _take_failure(self, method: str) -> _Failure | None:
        queue = self._failures.get(method) or self._failures.get("*")
        if not queue:
            return None
        failure = queue[0]
        failure.remaining -= 1
        if failure.remaining <= 0:
            queue.pop(0)
        return failure

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._arguments(request)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            failure = self._take_failure(method)
            status = failure.status if failure else 200
            self.calls.append(ApiCall(method, args, status, time.monotonic(), token))
            if failure is None:
                body = self._answer(method, args, token)
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            if failure.status >= 500:
                return web.Response(status=failure.status, text="stub: internal error", headers=headers)
            return web.json_response({"ok": False, "error": failure.error}, status=failure.status, headers=headers)
        return web.json_response(body)

    def _answer(self, method: str, args: dict[str, Any], token: str) -> dict[str, Any]:
        """Slack's answer to one call (under the lock)."""
        if not token.startswith(("xoxb-", "xapp-")):
            return {"ok": False, "error": "invalid_auth"}
        if method == "auth.test":
            return {"ok": True, "url": "https://stub.slack.test/", "team": "Stub", "user": "kafka-chatops",
                    "team_id": "T0STUB", "user_id": BOT_USER_ID, "bot_id": "B0BOT", "is_enterprise_install": False}
        if method == "chat.postMessage":
            self._ts += 1
            ts = f"{1700000000 + self._ts}.{self._ts:06d}"
            channel = str(args.get("channel", ""))
            self.messages[(channel, ts)] = Message(channel, ts, str(args.get("text", "")), args.get("blocks") or [],
                                                   args.get("thread_ts"))
            return {"ok": True, "channel": channel, "ts": ts, "message": {"text": args.get("text"), "ts": ts}}
        if method == "chat.update":
            key = (str(args.get("channel", "")), str(args.get("ts", "")))
            if key not in self.messages:
                return {"ok": False, "error": "message_not_found"}
            message = self.messages[key]
            message.text, message.blocks = str(args.get("text", "")), args.get("blocks") or []
            return {"ok": True, "channel": key[0], "ts": key[1], "text": message.text}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": f"{time.time():.6f}"}
        if method == "usergroups.users.list":
            group = str(args.get("usergroup", ""))
            if group not in self.usergroups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": list(self.usergroups[group])}
        if method == "apps.connections.open":
            if not token.startswith("xapp-") or self.socket_mode_url is None:
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "url": self.socket_mode_url}
        return {"ok": True}

    async def _response_url(self, request: web.Request) -> web.Response:
        raw = await request.text()
        args = json.loads(raw) if raw else {}
        args["key"] = request.match_info["key"]
        with self._lock:
            self.calls.append(ApiCall("response_url", args, 200, time.monotonic()))
        if self.response_url_delay_s:
            await asyncio.sleep(self.response_url_delay_s)
        return web.Response(text="ok")
