"""The real clock and id factories the engine is given (tests give their own)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class RandomIds:
    def run_id(self) -> str:
        return "r-" + secrets.token_hex(4)

    def nonce(self) -> str:
        return secrets.token_urlsafe(12)
