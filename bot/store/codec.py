"""JSON encoding of stored values, and the client settings the store relies on."""

from __future__ import annotations

import json
import os
from typing import Any

import redis.asyncio as aioredis

from bot.store.errors import StoreError


class JsonText(str):
    """A JSON object's text, already encoded by the caller (e.g. pydantic's ``model_dump_json``,
    which is several times faster than a dict through ``json.dumps``): stored as it is."""


def to_json(value: dict[str, Any] | JsonText, what: str) -> str:
    if isinstance(value, JsonText):
        return str(value)
    if not isinstance(value, dict):
        raise TypeError(f"{what} must be a dict, got {type(value).__name__}")
    # allow_nan=False: NaN/Infinity are not JSON and would break other readers of the record.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def from_json(raw: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise StoreError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise StoreError(f"{what} is not a JSON object")
    return value


def new_op_token() -> str:
    """Random token marking one write, so a write retried by redis-py can recognise itself."""
    return os.urandom(8).hex()


def require_decoded(client: aioredis.Redis) -> None:
    """The store parses replies as ``str``; a bytes-returning client would fail far from here."""
    kwargs = getattr(client.connection_pool, "connection_kwargs", {})
    if not kwargs.get("decode_responses"):
        raise ValueError("the store needs a client with decode_responses=True (use bot.store.connect)")
