"""The ``log`` subresource of pods: ``kubectl logs [-f] [--tail N] [--previous] [--limit-bytes N]``.

The API server does not keep logs; it asks the kubelet, which reads the container's log file. The
sandbox's "kubelet" is whoever runs the process behind a pod: it hands the server a ``PodLogSource``
that says where a container's output is, a byte range of a file that grows while the container
runs. ``follow`` streams what the file gains until the container ends (the range's start moves,
as when the kubelet restarts it, or the pod goes away), the client leaves or the server stops.

Refused with 400, as the kubelet would: an unknown container, ``previous`` without a terminated
container, and the time-based options (``timestamps``, ``sinceSeconds``, ``sinceTime``), which need
the write time of each line, which the sandbox does not record.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from bot.sandbox.kube.api_errors import ApiError, bad_request

FOLLOW_POLL_S = 0.25
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class ContainerLog:
    """Where one container's output is: ``path`` from byte ``start`` to ``end`` (None: still running)."""

    path: Path
    start: int
    end: int | None = None


class PodLogSource(Protocol):
    def __call__(self, namespace: str, pod: str, container: str | None, previous: bool) -> ContainerLog:
        """The container's log; raises ``ApiError`` (400, the kubelet's wording) when there is none."""
        ...


@dataclass(frozen=True)
class LogRequest:
    container: str | None
    follow: bool
    previous: bool
    tail_lines: int | None
    limit_bytes: int | None

    @classmethod
    def from_query(cls, query: Any) -> LogRequest:
        unsupported = [name for name in ("sinceSeconds", "sinceTime") if query.get(name)]
        if _flag(query.get("timestamps")):
            unsupported.append("timestamps")
        if unsupported:
            raise bad_request(f"{', '.join(unsupported)}: not supported by the sandbox, which does not record when "
                              "each log line was written; use --tail or --limit-bytes")
        return cls(container=query.get("container") or None, follow=_flag(query.get("follow")),
                   previous=_flag(query.get("previous")), tail_lines=_count(query, "tailLines", minimum=0),
                   limit_bytes=_count(query, "limitBytes", minimum=1))


async def serve_pod_log(
    request: web.Request, source: PodLogSource | None, namespace: str, pod: str, stopping: asyncio.Event
) -> web.StreamResponse:
    options = LogRequest.from_query(request.query)
    if source is None:
        raise bad_request(f"pod {pod} does not have a host assigned")
    log = source(namespace, pod, options.container, options.previous)
    position = log.start
    if options.tail_lines is not None:
        position = _tail_start(log, options.tail_lines)
    budget = options.limit_bytes
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    if options.follow:
        response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        position, budget = await _copy(response, log, position, log.end, budget)
        while options.follow and log.end is None and budget != 0 and not stopping.is_set():
            await asyncio.sleep(FOLLOW_POLL_S)
            if request.transport is None or request.transport.is_closing():
                break
            now = _current(source, namespace, pod, options.container)
            ended_at = None if now is not None and now.start == log.start else _ended_at(log, now)
            position, budget = await _copy(response, log, position, ended_at, budget)
            if ended_at is not None:
                break
        await response.write_eof()
    except ConnectionResetError:
        pass
    return response


def _current(source: PodLogSource, namespace: str, pod: str, container: str | None) -> ContainerLog | None:
    try:
        return source(namespace, pod, container, False)
    except ApiError:
        return None  # the pod is gone: its container ended


def _ended_at(log: ContainerLog, now: ContainerLog | None) -> int:
    """Where the followed container's output ends, now that another one (or none) took over."""
    if now is not None and now.path == log.path and now.start > log.start:
        return now.start
    return _size(log.path)


async def _copy(response: web.StreamResponse, log: ContainerLog, position: int, end: int | None,
                budget: int | None) -> tuple[int, int | None]:
    """Send ``log`` from ``position`` to ``end`` (or the end of the file), within ``budget`` bytes."""
    stop = _size(log.path) if end is None else end
    while position < stop and budget != 0:
        want = min(_CHUNK, stop - position, budget if budget is not None else _CHUNK)
        chunk = _read(log.path, position, want)
        if not chunk:
            break
        await response.write(chunk)
        position += len(chunk)
        if budget is not None:
            budget -= len(chunk)
    return position, budget


def _tail_start(log: ContainerLog, lines: int) -> int:
    """The offset from which the last ``lines`` lines of the container's output begin."""
    end = _size(log.path) if log.end is None else log.end
    if lines == 0:
        return end
    position, newlines = end, 0
    if end > log.start and _read(log.path, end - 1, 1) == b"\n":
        newlines = -1  # the final newline ends the last line; it does not start another
    while position > log.start:
        size = min(_CHUNK, position - log.start)
        block = _read(log.path, position - size, size)
        for index in range(len(block) - 1, -1, -1):
            if block[index] == 0x0A:
                newlines += 1
                if newlines == lines:
                    return position - size + index + 1
        position -= size
    return log.start


def _read(path: Path, offset: int, size: int) -> bytes:
    try:
        with path.open("rb") as stream:
            stream.seek(offset)
            return stream.read(size)
    except FileNotFoundError:
        return b""


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _flag(text: str | None) -> bool:
    return (text or "").lower() in ("true", "1")


def _count(query: Any, name: str, *, minimum: int) -> int | None:
    text = query.get(name)
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError as error:
        raise bad_request(f"{name}: invalid value {text!r}: must be an integer >= {minimum}") from error
    if value < minimum:
        raise bad_request(f"{name}: invalid value {value}: must be {'greater than 0' if minimum else '>= 0'}")
    return value
