"""The Clock and Ids ports for tests: time that moves only when told, ids in sequence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """Starts at ``start`` and moves only by :meth:`advance` (or by setting ``at``)."""

    def __init__(self, start: datetime = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)) -> None:
        self.at = start

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> datetime:
        self.at += timedelta(seconds=seconds)
        return self.at


class SequentialIds:
    """Run ids r-00000001, r-00000002, ... and nonces n1, n2, ... (the shape RandomIds makes)."""

    def __init__(self) -> None:
        self.runs = 0
        self.nonces = 0

    def run_id(self) -> str:
        self.runs += 1
        return f"r-{self.runs:08x}"

    def nonce(self) -> str:
        self.nonces += 1
        return f"n{self.nonces}"
