"""The run a log line is about: ``run_id``, ``cluster``, ``step_id`` and ``actor``, kept in a context
variable while the bot works on a run, so every line logged meanwhile (by us or a library) can carry
them. Plain ``contextvars``: the bot's log formatter (``bot.observability.logs``) reads them, and
nothing here knows how lines are written.

asyncio copies the context into each task it creates, so a binding made while driving one run never
leaks into another run's task.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

FIELDS = ("run_id", "cluster", "step_id", "actor")
_CONTEXT: ContextVar[dict[str, str]] = ContextVar("kafka_chatops_run_context", default={})  # noqa: B039


def current() -> dict[str, str]:
    """The fields bound now (a copy)."""
    return dict(_CONTEXT.get())


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (None values left out) to the context for the block, then restore it."""
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown log context field(s) {sorted(unknown)}: the fields are {', '.join(FIELDS)}")
    token = _CONTEXT.set({**_CONTEXT.get(), **{k: str(v) for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _CONTEXT.reset(token)
