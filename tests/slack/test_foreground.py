"""bot.foreground: background work waits for in-flight requests, but never longer than its bound."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.foreground import Foreground


async def test_background_goes_at_once_when_no_request_is_in_flight() -> None:
    """Nothing to yield to: quiet_moment returns without sleeping (no timer, no extra loop turn)."""
    foreground = Foreground(max_wait_s=60)
    await asyncio.wait_for(foreground.quiet_moment(), timeout=0.5)
    assert foreground.in_flight == 0


async def test_background_waits_until_the_last_request_is_answered() -> None:
    """Two requests in flight: background work starts only after both have been answered."""
    foreground = Foreground(max_wait_s=60)
    order: list[str] = []
    first_done, second_done = asyncio.Event(), asyncio.Event()

    async def request(name: str, done: asyncio.Event) -> None:
        async with foreground.serving():
            await done.wait()
            order.append(f"{name} answered")

    async def background() -> None:
        await foreground.quiet_moment()
        order.append("background")

    requests = [asyncio.create_task(request("first", first_done)), asyncio.create_task(request("second", second_done))]
    await asyncio.sleep(0)  # both requests are in flight
    assert foreground.in_flight == 2
    waiting = asyncio.create_task(background())
    first_done.set()
    await asyncio.sleep(0.05)
    assert order == ["first answered"], "background work ran while a request was still in flight"
    second_done.set()
    await asyncio.gather(waiting, *requests)
    assert order == ["first answered", "second answered", "background"]
    assert foreground.in_flight == 0


async def test_a_request_that_never_ends_cannot_starve_background_work() -> None:
    """A stuck request holds background work back for max_wait_s, not forever."""
    foreground = Foreground(max_wait_s=0.05)
    stuck = asyncio.Event()

    async def request() -> None:
        async with foreground.serving():
            await stuck.wait()

    task = asyncio.create_task(request())
    await asyncio.sleep(0)
    await asyncio.wait_for(foreground.quiet_moment(), timeout=2)
    assert foreground.in_flight == 1
    stuck.set()
    await task
    assert foreground.in_flight == 0


async def test_a_failed_request_still_counts_as_answered() -> None:
    """An exception in a listener must not leave the count up (which would slow every later run)."""
    foreground = Foreground(max_wait_s=60)

    async def failing() -> None:
        async with foreground.serving():
            raise RuntimeError("listener failed")

    with pytest.raises(RuntimeError, match="listener failed"):
        await failing()
    assert foreground.in_flight == 0
    await asyncio.wait_for(foreground.quiet_moment(), timeout=0.5)


async def test_background_waits_out_the_settle_window_after_a_request() -> None:
    """Just after a request was answered the next one of its burst may be arriving: background
    work waits settle_s, then goes."""
    foreground = Foreground(max_wait_s=60, settle_s=0.05)
    async with foreground.serving():
        pass
    started = time.monotonic()
    await asyncio.wait_for(foreground.quiet_moment(), timeout=2)
    assert time.monotonic() - started >= 0.04
