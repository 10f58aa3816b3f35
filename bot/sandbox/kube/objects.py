"""Small helpers over plain-dict Kubernetes objects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, TypeVar

from bot.sandbox.kube.api_errors import bad_request

_Json = TypeVar("_Json")


def clone(value: _Json) -> _Json:
    # A JSON round trip rather than deepcopy: it also proves an in-process body is JSON-able,
    # which is what the HTTP side would need anyway.
    copied: _Json = json.loads(json.dumps(value))
    return copied


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def accepted_body(body: Any) -> dict[str, Any]:
    """A private copy of a request body, refused unless it is a JSON object with object metadata."""
    try:
        copied = clone(body)
    except (TypeError, ValueError) as error:
        raise bad_request(f"the body is not JSON: {error}") from error
    if not isinstance(copied, dict):
        raise bad_request("the body must be a JSON object")
    metadata = copied.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise bad_request("metadata must be an object")
    return copied


def with_type_identity(api_version: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with apiVersion and kind first, whatever the body said they were."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        **{key: value for key, value in obj.items() if key not in ("apiVersion", "kind")},
    }


def desired_state(obj: dict[str, Any]) -> dict[str, Any]:
    """What a generation counts: everything but metadata, status and the type's identity."""
    return {key: value for key, value in obj.items() if key not in ("apiVersion", "kind", "metadata", "status")}
