"""Requests a person is waiting on go first; background work waits for a quiet moment.

The Slack front end, the engine worker and the card publisher share one event loop. A burst of
slash commands and clicks each has Slack's 3-second ack deadline and a person watching; the
worker's next look at a run and a card edit have neither (a card edit is already debounced by
a quarter of a second). So background work asks ``quiet_moment()`` before it starts: it runs at
once when no request is in flight, else when the burst ends, and never later than
``max_wait_s`` after it asked, so a steady stream of requests cannot starve a run.

Only the start of a piece of background work waits; once running it is not interrupted, and a
request that arrives meanwhile interleaves with it as any coroutine does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

DEFAULT_MAX_WAIT_S = 0.1


class Foreground:
    def __init__(self, *, max_wait_s: float = DEFAULT_MAX_WAIT_S) -> None:
        self.max_wait_s = max_wait_s
        self._in_flight = 0
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
            if self._in_flight == 0:
                self._quiet.set()

    async def quiet_moment(self) -> None:
        """Return when no request is in flight, or after ``max_wait_s`` at the latest."""
        if self._in_flight == 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quiet.wait(), self.max_wait_s)
