"""The run-store ports in memory: RunRepository, ClusterLocks and RunLease over one shared state.

Same contract as the Redis adapters (``bot.store.repository``, ``bot.store.locks``), held by the
shared contract tests in tests/contracts: versioned records (stored as ``bot.store.record`` writes them,
read back through the catalogue) written with compare-and-set; a run
created together with its cluster's lock and a fencing token from a per-cluster counter that never
goes back; a supersession that passes the lock with a new token; leases that lapse unless renewed.
Writes are recorded in ``announced`` (what the Redis adapter publishes on the run-event channel).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.store.record import load_run, run_record
from handlers.ports import ClusterHeld, RunExists, StoreUnavailable, VersionConflict
from runbooks.engine.events import Notify
from runbooks.engine.models import AuditEntry, Run


@dataclass
class _Record:
    document: str  # the run as JSON: a loaded run is a copy, never the object that was saved
    version: int
    cluster: str
    seq: int
    active: bool = True
    audit: list[AuditEntry] = field(default_factory=list)


class MemoryRunStore:
    """The state the three fakes share, like the keys the Redis adapters share in one database.
    ``down``: every call raises StoreUnavailable, as the adapters do when Redis cannot be reached."""

    def __init__(self) -> None:
        self.records: dict[str, _Record] = {}
        self.locks: dict[str, tuple[str, int]] = {}  # cluster -> (run id, token)
        self.fences: dict[str, int] = {}  # cluster -> last token handed out
        self.announced: list[tuple[str, int, tuple[Notify, ...]]] = []  # (run id, version, notes)
        self.seq = 0
        self.down = False

    def check(self) -> None:
        if self.down:
            raise StoreUnavailable("the in-memory store is down")

    def take_token(self, cluster: str) -> int:
        self.fences[cluster] = self.fences.get(cluster, 0) + 1
        return self.fences[cluster]

    def add(self, run: Run, token: int, audit: Sequence[AuditEntry], notes: Sequence[Notify]) -> None:
        self.seq += 1
        stored = run.model_copy(update={"fencing_token": token})
        self.records[run.id] = _Record(run_record(stored), 1, run.cluster, self.seq, audit=list(audit))
        self.announced.append((run.id, 1, tuple(notes)))


class MemoryRunRepository:
    def __init__(self, state: MemoryRunStore | None = None, *, recent_cap: int = 1000) -> None:
        self.state = state or MemoryRunStore()
        self._recent_cap = recent_cap

    async def create(self, run: Run, audit: Sequence[AuditEntry], *, notes: Sequence[Notify] = ()) -> int:
        state = self.state
        state.check()
        holder = state.locks.get(run.cluster)
        if holder is not None and holder[0] != run.id:
            raise ClusterHeld(holder[0])
        if run.id in state.records:
            raise RunExists(run.id)
        token = holder[1] if holder is not None else state.take_token(run.cluster)
        state.locks[run.cluster] = (run.id, token)
        state.add(run, token, audit, notes)
        return token

    async def supersede(self, run: Run, audit: Sequence[AuditEntry], *, notes: Sequence[Notify] = (),
                        old: Run, old_version: int, old_audit: Sequence[AuditEntry],
                        old_notes: Sequence[Notify] = ()) -> int:
        state = self.state
        state.check()
        if run.id in state.records:
            raise RunExists(run.id)
        holder = state.locks.get(run.cluster)
        if holder is None or holder[0] != old.id:
            raise ClusterHeld(holder[0] if holder is not None else "nobody")
        previous = state.records.get(old.id)
        if previous is None or previous.version != old_version:
            raise VersionConflict(f"run {old.id} is not at version {old_version}")
        token = state.take_token(run.cluster)
        state.locks[run.cluster] = (run.id, token)
        state.add(run, token, audit, notes)
        previous.document, previous.version, previous.active = run_record(old), old_version + 1, False
        previous.audit.extend(old_audit)
        state.announced.append((old.id, previous.version, tuple(old_notes)))
        return token

    async def load(self, run_id: str) -> tuple[Run, int] | None:
        self.state.check()
        record = self.state.records.get(run_id)
        if record is None:
            return None
        return load_run(json.loads(record.document)), record.version

    async def save(self, run: Run, *, expected_version: int, audit: Sequence[AuditEntry],
                   notes: Sequence[Notify] = ()) -> int:
        self.state.check()
        record = self.state.records.get(run.id)
        if record is None or record.version != expected_version:
            found = None if record is None else record.version
            raise VersionConflict(f"run {run.id} is at version {found}, not {expected_version}")
        record.document, record.version = run_record(run), record.version + 1
        record.active = not run.state.terminal
        record.audit.extend(audit)
        self.state.announced.append((run.id, record.version, tuple(notes)))
        return record.version

    async def append_audit(self, run_id: str, entries: Sequence[AuditEntry]) -> None:
        self.state.check()
        record = self.state.records.get(run_id)
        if record is not None:
            record.audit.extend(entries)

    async def audit(self, run_id: str) -> list[AuditEntry]:
        self.state.check()
        record = self.state.records.get(run_id)
        return list(record.audit) if record is not None else []

    async def active(self, cluster: str | None = None) -> list[str]:
        """Unfinished runs, oldest first."""
        self.state.check()
        found = sorted((r.seq, run_id) for run_id, r in self.state.records.items()
                       if r.active and (cluster is None or r.cluster == cluster))
        return [run_id for _, run_id in found]

    async def recent(self, cluster: str | None = None, limit: int = 20) -> list[str]:
        """Runs newest first, finished ones included (the last ``recent_cap``)."""
        self.state.check()
        found = sorted(((r.seq, run_id) for run_id, r in self.state.records.items()
                        if cluster is None or r.cluster == cluster), reverse=True)
        return [run_id for _, run_id in found[:min(max(limit, 0), self._recent_cap)]]


class MemoryClusterLocks:
    def __init__(self, state: MemoryRunStore) -> None:
        self.state = state

    async def holder(self, cluster: str) -> str | None:
        self.state.check()
        held = self.state.locks.get(cluster)
        return held[0] if held is not None else None

    async def release(self, cluster: str, run_id: str) -> bool:
        self.state.check()
        held = self.state.locks.get(cluster)
        if held is None or held[0] != run_id:
            return False
        del self.state.locks[cluster]
        return True

    async def check_token(self, cluster: str, token: int) -> bool:
        self.state.check()
        held = self.state.locks.get(cluster)
        return held is not None and held[1] == token

    def hand_to(self, cluster: str, run_id: str) -> int:
        """Give the lock to ``run_id`` with a new token, whoever held it (an operator freeing it by hand
        and another run taking it): what ``bot.store.ClusterLock`` release + acquire do."""
        token = self.state.take_token(cluster)
        self.state.locks[cluster] = (run_id, token)
        return token


class MemoryRunLease:
    """Leases that lapse ``ttl_s`` after they were taken or renewed, on ``monotonic`` time."""

    def __init__(self, state: MemoryRunStore | None = None, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.state = state or MemoryRunStore()
        self._monotonic = monotonic
        self.leases: dict[str, tuple[str, float]] = {}  # run id -> (owner, expires at)

    def owner(self, run_id: str) -> str | None:
        held = self.leases.get(run_id)
        if held is None or held[1] <= self._monotonic():
            return None
        return held[0]

    async def try_acquire(self, run_id: str, owner: str, ttl_s: float) -> bool:
        self.state.check()
        _positive(ttl_s)
        current = self.owner(run_id)
        if current is not None and current != owner:
            return False
        self.leases[run_id] = (owner, self._monotonic() + ttl_s)
        return True

    async def renew(self, run_id: str, owner: str, ttl_s: float) -> bool:
        self.state.check()
        _positive(ttl_s)
        if self.owner(run_id) != owner:
            return False
        self.leases[run_id] = (owner, self._monotonic() + ttl_s)
        return True

    async def release(self, run_id: str, owner: str) -> None:
        self.state.check()
        if self.owner(run_id) == owner:
            del self.leases[run_id]


def _positive(ttl_s: float) -> None:
    if ttl_s <= 0:
        raise ValueError(f"lease TTL must be positive, got {ttl_s}")
