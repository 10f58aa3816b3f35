"""Run events between replicas: every write of a run publishes an event on a Redis channel (the
run store's script does, in the same atomic step: ``bot.store.repository``), and each process hands what it
hears to its local listeners (the console printer, the Slack card updater, the worker's
wake-up). Events only say "look again": the run record in Redis is the truth, so a lost event
(a process that was not subscribed yet) costs a delay, never a transition.

A message is a small JSON header (run id, state, notes) on its first line and the run document
as written after it. Listeners that only need to know which run moved (the worker, the card
publisher, which reload it anyway) read the header; the notes and the run are parsed only when a
listener asks for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.store.codec import from_json
from bot.store.record import load_run
from runbooks.engine.events import Notify
from runbooks.engine.models import Run, RunState

log = logging.getLogger(__name__)


RUN_EVENTS_CHANNEL = "kco:run-events"


def event_header(run: Run, notes: Sequence[Notify]) -> str:
    """The first line of a run event; the run store's write appends the run document it wrote."""
    return json.dumps({"run_id": run.id, "state": run.state.value, "notes": [n.model_dump() for n in notes]})


@dataclass
class RunEvent:
    run_id: str
    state: RunState
    raw_notes: list[dict[str, object]]
    run_json: str

    @cached_property
    def notes(self) -> list[Notify]:
        return [Notify.model_validate(n) for n in self.raw_notes]

    @cached_property
    def run(self) -> Run:
        """The run as this event's write stored it (not necessarily as it is now)."""
        return load_run(from_json(self.run_json, f"the run in an event of run {self.run_id}"))

    @classmethod
    def decode(cls, data: str | bytes) -> RunEvent:
        """Raises ValueError (or KeyError) on a message that is not a run event."""
        text = data.decode() if isinstance(data, bytes) else data
        header_line, _, run_json = text.partition("\n")
        header = json.loads(header_line)
        if not isinstance(header["notes"], list):
            raise ValueError("a run event's notes are a list")
        return cls(run_id=str(header["run_id"]), state=RunState(header["state"]), raw_notes=header["notes"],
                   run_json=run_json)


Listener = Callable[[RunEvent], Awaitable[None]]


class RunEventBus:
    def __init__(self, client: aioredis.Redis, *, channel: str = RUN_EVENTS_CHANNEL) -> None:
        self._client = client
        self._channel = channel
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="run-event-bus")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout=5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        backoff = 0.2
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    self._subscribed.set()
                    backoff = 0.2
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            await self._dispatch(message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("run event subscription lost (%s); reconnecting in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _dispatch(self, data: str | bytes) -> None:
        try:
            event = RunEvent.decode(data)
        except (ValueError, KeyError) as exc:
            log.warning("ignoring a malformed run event: %s", exc)
            return
        for listener in self._listeners:
            try:
                await listener(event)
            except Exception:
                log.exception("a run event listener failed for %s", event.run_id)
