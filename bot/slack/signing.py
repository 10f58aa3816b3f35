"""Slack's request signature, checked on the raw bytes before anything reads the body.

Bolt verifies signatures too, but only after it has parsed the body (``AsyncBoltRequest`` parses
in its constructor, and its verification is a middleware of the dispatch that follows): an
unsigned request with a malformed body raised in the parser, a 500 and a traceback in the log
for anyone who could reach the port. Here the HMAC covers the bytes as received, the timestamp
must be digits within Slack's 5-minute window, and nothing else of the request is read until
both hold.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import parse_qs

REPLAY_WINDOW_S = 300  # Slack's: older (or future) timestamps are refused, so a captured request cannot be replayed
SSL_CHECK_MAX_BYTES = 512


def signed_by_slack(secret: str, body: bytes, timestamp: str | None, signature: str | None, *,
                    now: float | None = None) -> bool:
    """True when ``signature`` is ``v0=HMAC-SHA256(secret, "v0:<timestamp>:<body>")`` and the
    timestamp is recent; any header missing or malformed is simply not a signature."""
    if not timestamp or not signature or not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > REPLAY_WINDOW_S:
        return False
    expected = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(f"v0={expected}".encode(), signature.encode("utf-8", "replace"))


def is_ssl_check(body: bytes) -> bool:
    """Slack's certificate check of a slash command URL (``ssl_check=1``), which Bolt answers
    without a signature: a few hundred bytes of form data at most, parsed only up to that size."""
    if len(body) > SSL_CHECK_MAX_BYTES:
        return False
    return parse_qs(body.decode("ascii", "replace")).get("ssl_check") == ["1"]
