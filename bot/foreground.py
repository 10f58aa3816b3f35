"""Requests a person is waiting on go first; background work waits for a quiet moment.

The Slack front end, the engine worker and the card publisher share one event loop. A burst of
slash commands and clicks each has Slack's 3-second ack deadline and a person watching; the
worker's next look at a run and a card edit have neither (a card edit is already debounced by
a quarter of a second). So background work asks ``quiet_moment()`` before it starts: it runs at
once when no request is in flight, else when the burst ends, and never later than
``max_wait_s`` after it asked, so a steady stream of requests cannot starve a run.

A burst's requests do not arrive at the same instant, so a moment counts as quiet only once no
request has been answered for ``SETTLE_S`` either: background work that started in the gap
between two requests of a burst would delay the second one.

Only the start of a piece of background work waits; once running it is not interrupted, and a
request that arrives meanwhile interleaves with it as any coroutine does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

DEFAULT_MAX_WAIT_S = 0.1
# Quiet means no request in flight and none answered for this long (a burst's arrivals spread).
SETTLE_S = 0.01


class Foreground:
    def __init__(self, *, max_wait_s: float = DEFAULT_MAX_WAIT_S, settle_s: float = SETTLE_S) -> None:
        self.max_wait_s = max_wait_s
        self.settle_s = settle_s
        self._in_flight = 0
        self._last_answered = 0.0  # never: time.monotonic() counts from boot
        self._quiet = asyncio.Event()
        self._quiet.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """Around the handling of one request, up to its ack."""
        self._in_flight += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            self._last_answered = time.monotonic()
            if self._in_flight == 0:
                self._quiet.set()

    async def quiet_moment(self) -> None:
        """Return once no request is in flight and none was answered in the last ``settle_s``, or
        after ``max_wait_s`` at the latest."""
        if not self._busy():
            return
        deadline = time.monotonic() + self.max_wait_s
        while self._busy() and (remaining := deadline - time.monotonic()) > 0:
            if self._in_flight:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._quiet.wait(), remaining)
            else:  # the settle window after the last answer
                await asyncio.sleep(min(self._last_answered + self.settle_s - time.monotonic(), remaining))

    def _busy(self) -> bool:
        return self._in_flight > 0 or time.monotonic() - self._last_answered < self.settle_s
