"""Slack's requests answered by several processes: ``kafka-chatops run [--http] --processes N``.

One Python process acks on one core, and under a burst every ack waits for the CPU of the whole
burst (BENCHMARKS.md, "Slack ack latency"). With ``--processes N`` the bot starts N-1 *request
servers* beside itself, each answering with the same listeners against the same Redis. Over HTTP
each binds the bot's port with ``SO_REUSEPORT``, so the kernel spreads connections over all N; in
Socket Mode each opens its own connection, and Slack gives every request to one connection at
random. Only the bot's own process runs the engine worker, the run cards' event listener, the
alerts and /metrics. Runs, cluster locks, card records and alert state live in Redis and are
written with compare-and-set, exactly as between replicas. The one thing shared in memory is a
board of in-flight request counts (``bot.foreground``), so the bot's background work yields to
the request servers' requests as it does to its own.

A request server
* prints ``ready`` on its stdout once it listens; the bot waits for all of them before it serves;
* stops on SIGTERM, or when its stdin closes: the bot that started it is gone, even by SIGKILL,
  so none outlives the bot;
* runs in its own session, so a Ctrl-C in a terminal reaches the bot, which then stops them;
* is started again when it dies, after a pause (1 s, doubling to 30 s while it keeps dying young),
  while the other processes go on serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from asyncio.subprocess import PIPE, Process
from collections.abc import Sequence

from bot.foreground import IN_FLIGHT_ENV, SharedInFlight

log = logging.getLogger(__name__)

READY = "ready"
MAX_PROCESSES = 32
# Slack allows about 10 Socket Mode connections per app, all replicas together (docs/slack.md §3.3).
MAX_SOCKET_MODE_PROCESSES = 10
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
FIRST_RESTART_DELAY_S = 1.0
MAX_RESTART_DELAY_S = 30.0
# A request server that served this long before dying was not crash-looping: restart it promptly.
HEALTHY_LIFETIME_S = 60.0


class RequestServerFailed(Exception):
    """A request server did not come up: it exited, or was not ready in time."""


class RequestServers:
    """The request servers the bot keeps running beside itself (the parent's side)."""

    def __init__(self, command: Sequence[str], count: int, *, start_timeout_s: float = START_TIMEOUT_S,
                 stop_timeout_s: float = STOP_TIMEOUT_S, board: SharedInFlight | None = None) -> None:
        """``board``: the bot's in-flight board (``bot.foreground``); request server ``i`` gets slot ``i + 1``."""
        self._command = list(command)
        self._count = count
        self._board = board
        self._start_timeout_s = start_timeout_s
        self._stop_timeout_s = stop_timeout_s
        self._procs: list[Process | None] = [None] * count
        self._keepers: list[asyncio.Task[None]] = []
        self._stopping = False

    @property
    def pids(self) -> list[int]:
        """The running request servers' process ids."""
        return [p.pid for p in self._procs if p is not None and p.returncode is None]

    async def start(self) -> None:
        """Start them all and wait until each listens; RequestServerFailed (none left running) otherwise."""
        results = await asyncio.gather(*(self._spawn(slot) for slot in range(self._count)), return_exceptions=True)
        started = [r for r in results if isinstance(r, Process)]
        failure = next((r for r in results if not isinstance(r, Process)), None)
        if failure is not None:
            await _end_all(started, self._stop_timeout_s)
            raise failure
        self._procs = list(started)
        self._keepers = [asyncio.create_task(self._keep(slot)) for slot in range(self._count)]

    async def stop(self) -> None:
        """SIGTERM each and wait for it (SIGKILL after the stop timeout)."""
        self._stopping = True
        for keeper in self._keepers:
            keeper.cancel()
        await asyncio.gather(*self._keepers, return_exceptions=True)
        await _end_all([p for p in self._procs if p is not None], self._stop_timeout_s)

    async def _spawn(self, slot: int) -> Process:
        env: dict[str, str] | None = None  # None: the bot's own environment
        pass_fds: tuple[int, ...] = ()
        if self._board is not None:
            env, pass_fds = {**os.environ, IN_FLIGHT_ENV: self._board.for_child(slot + 1)}, (self._board.fd,)
        proc = await asyncio.create_subprocess_exec(*self._command, stdin=PIPE, stdout=PIPE, start_new_session=True,
                                                    env=env, pass_fds=pass_fds)
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(self._start_timeout_s):
                line = await proc.stdout.readline()
        except TimeoutError:
            await _end_all([proc], self._stop_timeout_s)
            raise RequestServerFailed(
                f"a request server (pid {proc.pid}) was not ready within {self._start_timeout_s:.0f} s") from None
        except BaseException:
            await _end_all([proc], self._stop_timeout_s)
            raise
        if line.strip() != READY.encode():
            # Its stdout closed (or it said something else): it is on its way out. Wait for it rather
            # than signal it: signalling reaps an exited child before asyncio's watcher does, and
            # its exit code would be lost.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), self._stop_timeout_s)
            await _end_all([proc], self._stop_timeout_s)
            raise RequestServerFailed(f"a request server (pid {proc.pid}) exited with code {proc.returncode} "
                                      "before it was ready; its error is in the log above")
        return proc

    async def _keep(self, slot: int) -> None:
        delay = FIRST_RESTART_DELAY_S
        started = time.monotonic()
        while True:
            proc = self._procs[slot]
            if proc is not None:
                code = await proc.wait()
                if self._board is not None:
                    self._board.clear(slot + 1)  # it may have died in the middle of a request
                if self._stopping:
                    return
                if time.monotonic() - started >= HEALTHY_LIFETIME_S:
                    delay = FIRST_RESTART_DELAY_S
                log.error("request server (pid %d) exited with code %s; starting another in %.0f s; the other "
                          "processes go on serving", proc.pid, code, delay)
                self._procs[slot] = None
            await asyncio.sleep(delay)
            started = time.monotonic()
            try:
                self._procs[slot] = await self._spawn(slot)
                log.info("request server (pid %d) started again", self._procs[slot].pid)  # type: ignore[union-attr]
            except RequestServerFailed as exc:
                log.error("%s; trying again in %.0f s", exc, min(delay * 2, MAX_RESTART_DELAY_S))
            delay = min(delay * 2, MAX_RESTART_DELAY_S)


async def _end_all(procs: Sequence[Process], timeout_s: float) -> None:
    """SIGTERM and close stdin, wait, SIGKILL what is left."""
    for proc in procs:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        if proc.stdin is not None:
            proc.stdin.close()
    waits = [asyncio.ensure_future(proc.wait()) for proc in procs]
    if waits:
        _, late = await asyncio.wait(waits, timeout=timeout_s)
        for proc in procs:
            if proc.returncode is None:
                log.warning("request server (pid %d) did not stop within %.0f s; killing it", proc.pid, timeout_s)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        if late:
            await asyncio.wait(late)


async def serve_until_stopped(serving: contextlib.AbstractAsyncContextManager[object]) -> None:
    """A request server's life (the child's side): enter ``serving`` (listen on the shared port, or
    open a Socket Mode connection), say ready, and stay until SIGTERM or SIGINT, or until stdin
    closes because the bot that started it is gone; then leave ``serving``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watching = asyncio.create_task(_until_stdin_closes())
    watching.add_done_callback(lambda _: stop.set())
    try:
        async with serving:
            sys.stdout.write(READY + "\n")
            sys.stdout.flush()
            await stop.wait()
    finally:
        watching.cancel()


async def _until_stdin_closes() -> None:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass
