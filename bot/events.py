"""Run events between replicas: every change is published on a Redis channel, and each process
hands what it hears to its local listeners (the console printer, the Slack card updater, the
worker's wake-up). Events only say "look again": the run record in Redis is the truth, so a
lost event costs a delay, never a transition."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from runbooks.events import Notify
from runbooks.models import Run

log = logging.getLogger(__name__)

Listener = Callable[[Run, list[Notify]], Awaitable[None]]


class RunEventBus:
    def __init__(self, client: aioredis.Redis, *, channel: str = "kco:run-events") -> None:
        self._client = client
        self._channel = channel
        self._listeners: list[Listener] = []
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def run_changed(self, run: Run, notes: Sequence[Notify]) -> None:
        message = json.dumps({"run": run.model_dump(mode="json"), "notes": [n.model_dump() for n in notes]})
        try:
            await self._client.publish(self._channel, message)
        except (RedisError, OSError) as exc:
            log.warning("run event for %s not published (Redis: %s); listeners catch up on the next one", run.id, exc)

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
            payload = json.loads(data)
            run = Run.model_validate(payload["run"])
            notes = [Notify.model_validate(n) for n in payload["notes"]]
        except (ValueError, KeyError) as exc:
            log.warning("ignoring a malformed run event: %s", exc)
            return
        for listener in self._listeners:
            try:
                await listener(run, notes)
            except Exception:
                log.exception("a run event listener failed for %s", run.id)
