"""The bot's logs: JSON (one object per line, for a log pipeline or a SIEM) or text, through the
standard ``logging`` module so every library's lines take the same shape.

structlog's ``ProcessorFormatter`` renders each stdlib record; the processors add the time (UTC,
ISO 8601), the level, the logger, the process id (replicas sharing a log are told apart), the run
the line is about (``handlers.runs.log_context``: run_id, cluster, step_id, actor) and any
``extra={...}`` fields the call gave. Chosen by ``KAFKA_CHATOPS_LOG_FORMAT`` (``text``, the default,
or ``json``) and ``LOG_LEVEL`` (``INFO`` by default).

Secrets never reach a line: the bot logs no token, password or kubeconfig, and the SDKs that log
request headers at DEBUG are held at WARNING whatever ``LOG_LEVEL`` says.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import IO, Any

from handlers.runs import log_context

LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
AUDIT_LOGGER = "kafka_chatops.audit"
# The SDKs log request details (headers included) at DEBUG: kept above that in every case.
NOISY = ("slack_sdk", "slack_bolt", "aiohttp.access", "kafka", "aiokafka", "kubernetes", "urllib3")
# Attributes every LogRecord has: anything else on a record came from ``extra=`` and is logged.
_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def log_settings_problem(fmt: str, level: str) -> str | None:
    if fmt not in LOG_FORMATS:
        return f"KAFKA_CHATOPS_LOG_FORMAT {fmt!r} is not a log format: give {' or '.join(LOG_FORMATS)}"
    if level.upper() not in LOG_LEVELS:
        return f"LOG_LEVEL {level!r} is not a level: give one of {', '.join(LOG_LEVELS)}"
    return None


def _run_context(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in log_context.current().items():
        event.setdefault(key, value)
    return event


def _record_extras(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    record = event.get("_record")
    if isinstance(record, logging.LogRecord):
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_") and value is not None:
                event.setdefault(key, value)
    event["pid"] = os.getpid()
    return event


def formatter(fmt: str) -> logging.Formatter:
    """The formatter of every handler: the processors above, then JSON or text."""
    # Imported here, not with the module: every front end checks the log settings (bot.startup), and
    # structlog (with rich, where installed) is some MB resident a console that logs nothing never uses.
    import structlog

    renderer: Any = (structlog.processors.JSONRenderer(sort_keys=False) if fmt == "json"
                     else structlog.dev.ConsoleRenderer(colors=False, pad_event_to=0))
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _record_extras,
            _run_context,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if fmt == "json" else _keep,
            renderer,
        ],
    )


def _keep(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return event


def configure_logging(fmt: str = "text", level: str = "INFO", *, stream: IO[str] | None = None) -> None:
    """Route every logger through one handler on ``stream`` (stderr) in ``fmt``, at ``level``."""
    problem = log_settings_problem(fmt, level)
    if problem is not None:
        raise ValueError(problem)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
