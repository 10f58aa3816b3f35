"""Errors of the Kubernetes adapter.

Messages name the resource and the HTTP status, and carry at most the API server's own Status
message: never request headers, the kubeconfig or a token, because these messages end up in Slack.
"""

from __future__ import annotations

import json
import re

from kubernetes.client.exceptions import ApiException

_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


class KubeError(Exception):
    """A Kubernetes call failed for a reason a human has to look at (RBAC, a bad request, ...)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status, when the server answered


class KubeNotFound(KubeError):
    """The resource the call named does not exist."""


class KubeUnavailable(KubeError):
    """The API server could not be reached or answered 5xx: retrying later may help."""


def redact(text: str) -> str:
    """Strip anything shaped like a bearer token; belt and braces for server-echoed text."""
    return _BEARER.sub(r"\1<redacted>", text)


def _server_message(exc: ApiException) -> str:
    """The ``message`` of a Kubernetes Status body, if the server sent one."""
    body = exc.body
    if not body:
        return ""
    try:
        status = json.loads(body)
    except (TypeError, ValueError):
        return ""
    message = status.get("message", "") if isinstance(status, dict) else ""
    return redact(str(message))[:300]


def from_api_exception(exc: ApiException, what: str) -> KubeError:
    """Translate an ``ApiException`` into our error type; ``what`` is e.g. ``"get Kafka ns/prod"``."""
    status = exc.status or 0
    detail = _server_message(exc)
    text = f"Kubernetes API: {what}: HTTP {status} {exc.reason or ''}".rstrip()
    if detail:
        text += f": {detail}"
    if status == 404:
        return KubeNotFound(text, status=status)
    if status == 0 or status == 429 or status >= 500:
        return KubeUnavailable(text, status=status or None)
    return KubeError(text, status=status)


def from_transport_error(exc: BaseException, what: str) -> KubeUnavailable:
    """A connection-level failure (refused, timeout, TLS): name the call, not the URL's credentials."""
    return KubeUnavailable(f"Kubernetes API unreachable: {what}: {type(exc).__name__}: {redact(str(exc))[:300]}")
