"""bot.foreground: background work waits for in-flight requests, in this process and in the bot's
other processes, but never longer than its bound."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest

from bot.foreground import IN_FLIGHT_ENV, Foreground, SharedInFlight


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


def another_process(board: SharedInFlight, slot: int = 1) -> SharedInFlight:
    """The board as another of the bot's processes maps it: the same memory, its own slot."""
    return SharedInFlight(board.fd, board.slots, slot)


async def test_background_waits_for_the_other_processes_requests() -> None:
    """With request servers, the bot's background work also waits while one of them answers a
    request, and goes once that one is answered (and the settle window has passed)."""
    board = SharedInFlight.create(2)
    try:
        bot, request_server = Foreground(max_wait_s=60, settle_s=0.01), Foreground(max_wait_s=60)
        bot.share(board)
        request_server.share(another_process(board))
        answered = asyncio.Event()
        order: list[str] = []

        async def request() -> None:
            async with request_server.serving():
                await answered.wait()
                order.append("request answered")

        async def background() -> None:
            await bot.quiet_moment()
            order.append("background")

        in_flight = asyncio.create_task(request())
        await asyncio.sleep(0)
        waiting = asyncio.create_task(background())
        await asyncio.sleep(0.05)
        assert order == [], "background work ran while the other process answered a request"
        answered.set()
        await asyncio.wait_for(asyncio.gather(in_flight, waiting), timeout=2)
        assert order == ["request answered", "background"]
    finally:
        board.close()


async def test_background_waits_out_the_settle_window_after_a_request() -> None:
    """Just after a request was answered the next one of its burst may be arriving: background
    work waits settle_s, then goes."""
    foreground = Foreground(max_wait_s=60, settle_s=0.05)
    async with foreground.serving():
        pass
    started = time.monotonic()
    await asyncio.wait_for(foreground.quiet_moment(), timeout=2)
    assert time.monotonic() - started >= 0.04


async def test_a_count_left_by_a_dead_process_holds_background_only_until_the_bound() -> None:
    """A request server killed mid-request leaves its count up: background work waits max_wait_s,
    not forever, and not at all once the supervisor clears the slot."""
    board = SharedInFlight.create(3)
    try:
        another_process(board, 2).publish(4, time.monotonic())
        foreground = Foreground(max_wait_s=0.1, settle_s=0.0)
        foreground.share(board)
        started = time.monotonic()
        await asyncio.wait_for(foreground.quiet_moment(), timeout=2)
        assert 0.09 <= time.monotonic() - started < 1
        board.clear(2)
        started = time.monotonic()
        await foreground.quiet_moment()
        assert time.monotonic() - started < 0.01
    finally:
        board.close()


def test_a_child_process_publishes_on_the_board_it_was_given() -> None:
    """The board crosses exec: a child given the descriptor and its slot in the environment maps the
    same memory, and its count is what the parent reads."""
    board = SharedInFlight.create(2)
    code = ("import sys; from bot.foreground import SharedInFlight; board = SharedInFlight.from_environment(); "
            "board.publish(1, 0.0); print('busy', flush=True); sys.stdin.readline(); board.publish(0, 0.0)")
    env = {**os.environ, IN_FLIGHT_ENV: board.for_child(1)}
    try:
        with subprocess.Popen([sys.executable, "-c", code], env=env, pass_fds=(board.fd,), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) as child:
            assert child.stdout is not None and child.stdin is not None
            assert child.stdout.readline().strip() == "busy"
            assert board.others_busy(time.monotonic(), settle_s=0)
            child.stdin.write("done\n")
            child.stdin.close()
            assert child.wait(10) == 0
        assert not board.others_busy(time.monotonic(), settle_s=0)
    finally:
        board.close()


@pytest.mark.parametrize("value", ["7", "a:b:c", "3:5:2", "999:1:2"])
def test_a_malformed_board_in_the_environment_is_refused_by_name(
        monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """A request server started with a bad board description says which variable and what form."""
    monkeypatch.setenv(IN_FLIGHT_ENV, value)
    with pytest.raises(ValueError, match=f"{IN_FLIGHT_ENV}=.*'<fd>:<slot>:<slots>'"):
        SharedInFlight.from_environment()
