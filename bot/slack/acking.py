"""Slack's 3-second rule, in one place.

The bot does the work first (so the run is in Redis before Slack hears "OK") and acks with the
answer. When the work is slow (a Kubernetes API or Kafka that takes its time), Slack must still
get its ack: past the budget the handler acks with "working on it", the work goes on, and its
answer is sent afterwards through the ``response_url``. Nothing is lost either way: the work was
started before the ack, and the run record is the truth.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from bot.foreground import Foreground

log = logging.getLogger(__name__)

# Slack waits 3 s for the ack; leave room for the network and for Bolt's own work.
ACK_BUDGET_S = 2.2

T = TypeVar("T")


class Background:
    """Keeps late answers alive until they are sent (asyncio keeps only weak references to tasks)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def wait(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def within_budget(
    work: Awaitable[T], *, budget_s: float, late: Callable[[T], Awaitable[None]], background: Background, name: str,
) -> T | None:
    """The result if ``work`` finished within the budget; else None, and ``late`` gets the result
    when it comes (run in the background). Exceptions within the budget propagate."""
    task: asyncio.Future[T] = asyncio.ensure_future(work)
    # asyncio.wait leaves the task running at the timeout (and on our own cancellation), which is
    # what wait_for(shield(task)) would do, with fewer futures per request.
    done, _ = await asyncio.wait((task,), timeout=budget_s)
    if done:
        return task.result()

    async def answer_late() -> None:
        try:
            result = await task
        except Exception:
            log.exception("%s failed after its ack", name)
            return
        await late(result)

    background.spawn(answer_late(), name=f"late-{name}")
    return None


def in_foreground(foreground: Foreground, listener: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """A Bolt listener that counts as a request in flight until it returns (it acks before it
    returns), so background work waits for it: ``bot.foreground``. Bolt reads the arguments to
    inject from the wrapped listener's signature (``functools.wraps``) and passes them by name."""

    @functools.wraps(listener)
    async def serving(**kwargs: Any) -> None:
        async with foreground.serving():
            await listener(**kwargs)

    return serving
