"""Requests a person is waiting on go first; background work waits for a quiet moment.

The Slack front end, the engine worker and the card publisher share one event loop. A burst of
slash commands and clicks each has Slack's 3-second ack deadline and a person watching; the
worker's next look at a run and a card edit have neither (a card edit is already debounced by
a quarter of a second). So background work asks ``quiet_moment()`` before it starts: it runs at
once when no request is in flight, else when the burst ends, and never later than
``max_wait_s`` after it asked, so a steady stream of requests cannot starve a run.

With ``--processes N`` the bot's processes share the machine's cores, so a quiet moment is one
in which *none* of them is answering a request: each publishes its count in a small shared
memory board (:class:`SharedInFlight`), and background work in the bot's own process waits for
the request servers' bursts too (measured: it was taking the CPU their acks needed).

A burst's requests do not arrive at the same instant, so a moment counts as quiet only once no
request has been answered for ``SETTLE_S`` either: background work that started in the gap
between two requests of a burst would delay the second one.

Only the start of a piece of background work waits; once running it is not interrupted, and a
request that arrives meanwhile interleaves with it as any coroutine does.
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import os
import struct
import tempfile
import time
from collections.abc import AsyncIterator

DEFAULT_MAX_WAIT_S = 0.1
# Quiet means no request in flight and none answered for this long (a burst's arrivals spread).
SETTLE_S = 0.01
# How often background work looks at the other processes' counts while they are busy.
OTHERS_POLL_S = 0.002
# A request server finds its slot of the board here: "<fd>:<slot>:<slots>" (the fd is inherited).
IN_FLIGHT_ENV = "KAFKA_CHATOPS_IN_FLIGHT"

# One slot per process: requests in flight, and when the last one was answered (time.monotonic(),
# one clock for every process of the machine).
_SLOT = struct.Struct("=Id")


class SharedInFlight:
    """How many requests each of the bot's processes is answering, in memory all of them map.

    Each process writes only its own slot, so no locking is needed; a reader may see a count a
    moment old, which moves a piece of background work by a few milliseconds, never more than
    ``max_wait_s``. The memory is an unlinked temporary file passed by descriptor: nothing is
    left behind however the processes end.
    """

    def __init__(self, fd: int, slots: int, slot: int) -> None:
        if not 0 <= slot < slots:
            raise ValueError(f"slot {slot} is not one of the board's {slots}")
        self.fd = fd
        self.slots = slots
        self.slot = slot
        self._memory = mmap.mmap(fd, slots * _SLOT.size)

    @classmethod
    def create(cls, slots: int) -> SharedInFlight:
        """A new board, all counts zero; this process has slot 0."""
        with tempfile.TemporaryFile() as backing:
            fd = os.dup(backing.fileno())
        os.ftruncate(fd, slots * _SLOT.size)
        return cls(fd, slots, 0)

    @classmethod
    def from_environment(cls) -> SharedInFlight | None:
        """The board a request server was given by the bot that started it, if any."""
        value = os.environ.get(IN_FLIGHT_ENV)
        if not value:
            return None
        try:
            fd, slot, slots = (int(part) for part in value.split(":"))
            return cls(fd, slots, slot)
        except (ValueError, OSError) as exc:
            raise ValueError(f"{IN_FLIGHT_ENV}={value!r} is not '<fd>:<slot>:<slots>' of an open board") from exc

    def for_child(self, slot: int) -> str:
        """The ``IN_FLIGHT_ENV`` value for the process that will own ``slot``."""
        if not 0 <= slot < self.slots:
            raise ValueError(f"slot {slot} is not one of the board's {self.slots}")
        return f"{self.fd}:{slot}:{self.slots}"

    def publish(self, count: int, last_answered: float) -> None:
        _SLOT.pack_into(self._memory, self.slot * _SLOT.size, count, last_answered)

    def others_busy(self, now: float, settle_s: float) -> bool:
        """Whether another process has a request in flight, or answered one less than ``settle_s`` ago."""
        for i in range(self.slots):
            if i != self.slot:
                count, last_answered = _SLOT.unpack_from(self._memory, i * _SLOT.size)
                if count or now - last_answered < settle_s:
                    return True
        return False

    def clear(self, slot: int) -> None:
        """Zero another process's count: it died, perhaps in the middle of a request."""
        _SLOT.pack_into(self._memory, slot * _SLOT.size, 0, 0.0)

    def close(self) -> None:
        self._memory.close()
        with contextlib.suppress(OSError):
            os.close(self.fd)


class Foreground:
    def __init__(self, *, max_wait_s: float = DEFAULT_MAX_WAIT_S, settle_s: float = SETTLE_S) -> None:
        self.max_wait_s = max_wait_s
        self.settle_s = settle_s
        self._in_flight = 0
        self._last_answered = 0.0  # never: time.monotonic() counts from boot
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._shared: SharedInFlight | None = None

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def share(self, board: SharedInFlight | None) -> None:
        """Publish this process's count on ``board`` and wait for the other processes' requests too."""
        self._shared = board
        if board is not None:
            board.publish(self._in_flight, self._last_answered)

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """Around the handling of one request, up to its ack."""
        self._in_flight += 1
        self._quiet.clear()
        if self._shared is not None:
            self._shared.publish(self._in_flight, self._last_answered)
        try:
            yield
        finally:
            self._in_flight -= 1
            self._last_answered = time.monotonic()
            if self._shared is not None:
                self._shared.publish(self._in_flight, self._last_answered)
            if self._in_flight == 0:
                self._quiet.set()

    async def quiet_moment(self) -> None:
        """Return once no request is in flight in any of the bot's processes and none was answered
        in the last ``settle_s``, or after ``max_wait_s`` at the latest."""
        if not self._busy():
            return
        deadline = time.monotonic() + self.max_wait_s
        while self._busy() and (remaining := deadline - time.monotonic()) > 0:
            if self._in_flight:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._quiet.wait(), remaining)
            else:
                await asyncio.sleep(min(OTHERS_POLL_S, remaining))

    def _busy(self) -> bool:
        now = time.monotonic()
        return (self._in_flight > 0 or now - self._last_answered < self.settle_s
                or (self._shared is not None and self._shared.others_busy(now, self.settle_s)))
