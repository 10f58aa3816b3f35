"""What ``/readyz`` says about the bot's Slack transport.

The health server starts before the transport connects (it is part of the runtime), so a front end
registers one ``SlackReadiness`` with it first and tells it what happened as the transport comes up:
until then, and again once it stops, ``/readyz`` answers 503 naming Slack.

- Socket Mode: ready only while the Socket Mode websocket is connected, as the Slack SDK's client
  judges it (``is_connected()``: a session that is open, not stale, and answering its pings). While
  Slack is unreachable the SDK keeps reconnecting on its own; the pod is taken out of the Service
  meanwhile, and comes back once it is connected again.
- HTTP: there is no connection to hold (Slack calls the bot), so ready once the ``/slack/events``
  listener is bound and serving. The start already asked ``auth.test``: a refused token stops the
  start; a Slack that did not answer then is only warned about, as the cards catch up once it does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol


class ReadinessCheck(Protocol):
    async def problem(self) -> str | None:
        """What is not ready, named for the ``/readyz`` body (``slack: ...``); None when ready."""
        ...


class SlackReadiness:
    def __init__(self) -> None:
        self._connected: Callable[[], Awaitable[bool]] | None = None
        self._state = "slack: not connected yet"

    def socket_mode(self, is_connected: Callable[[], Awaitable[bool]]) -> None:
        """The Socket Mode client is up: from now on ready exactly while ``is_connected()`` says so."""
        self._connected = is_connected

    def http_serving(self) -> None:
        self._connected = _always
        self._state = "ready"

    def stopped(self) -> None:
        """The transport is closing: out of the Service before the last requests are answered."""
        self._connected = None
        self._state = "slack: transport stopped"

    async def problem(self) -> str | None:
        if self._connected is None:
            return self._state
        try:
            if await self._connected():
                return None
        except Exception as exc:  # the SDK could not say: not a connection to count on
            return f"slack: socket mode state unknown ({type(exc).__name__})"
        return "slack: socket mode disconnected"


async def _always() -> bool:
    return True
