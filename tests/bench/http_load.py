"""Slack's side of the ack benchmark over HTTP: a separate process that sends signed requests.

``python -m tests.bench.http_load`` reads one JSON object per line on stdin,
``{"url": ..., "bodies": [...]}``, POSTs every body at once (each signed as it is sent, as Slack
does) over kept-alive loopback connections, and answers one JSON line per burst:
``{"ms": [...], "statuses": [...]}``, each latency from the request's first byte written to its
response read. It runs in its own process so the measured server's event loop has its core to
itself apart from its own work, as it has with Slack's servers at the other end.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from subprocess import PIPE, Popen

import aiohttp

from tests.slack.payloads import signed_headers


async def _post(session: aiohttp.ClientSession, url: str, body: str) -> tuple[float, int]:
    headers = signed_headers(body)
    started = time.perf_counter()
    async with session.post(url, data=body.encode(), headers=headers) as response:
        await response.read()
        return (time.perf_counter() - started) * 1000, response.status


async def _serve() -> None:
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    gc.freeze()  # the imports live as long as the process: no collection needs to scan them
    async with aiohttp.ClientSession(connector=connector) as session:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            order = json.loads(line)
            # A collection in here (measured: up to 12 ms) would be counted as the app's latency.
            # Slack's servers are not on the app's machine; their pauses are not its latency.
            gc.disable()
            try:
                results = await asyncio.gather(*(_post(session, order["url"], body) for body in order["bodies"]))
            finally:
                gc.enable()
            answer = {"ms": [ms for ms, _ in results], "statuses": [status for _, status in results]}
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()
            gc.collect()  # between bursts, while the bench pauses


class LoadGenerator:
    """The bench's handle on the load process (blocking pipe I/O runs in a thread)."""

    def __init__(self, proc: Popen[str]) -> None:
        self._proc = proc

    async def burst(self, url: str, bodies: list[str]) -> list[float]:
        answer = await asyncio.to_thread(self._exchange, json.dumps({"url": url, "bodies": bodies}))
        bad = [status for status in answer["statuses"] if status != 200]
        assert not bad, f"{url}: {len(bad)} requests answered {sorted(set(bad))}"
        return [float(ms) for ms in answer["ms"]]

    def _exchange(self, order: str) -> dict[str, list[float]]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(order + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        assert line, "the load generator exited"
        result: dict[str, list[float]] = json.loads(line)
        return result


@contextmanager
def load_generator() -> Iterator[LoadGenerator]:
    proc = Popen([sys.executable, "-m", "tests.bench.http_load"], stdin=PIPE, stdout=PIPE, text=True)
    try:
        yield LoadGenerator(proc)
    finally:
        proc.kill()
        proc.wait(10)


if __name__ == "__main__":
    asyncio.run(_serve())
