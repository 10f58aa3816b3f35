"""The use cases' RunRepository and ClusterLocks ports over the Redis store.

The store keeps JSON documents; this adapter turns them into the engine's pydantic models (a run
through its versioned record, ``bot.store.record``) and
the store's exceptions into the ports' ones, so handlers never import redis. Every write also
publishes the run event (``bot.store.run_events``) from the same script, so a write and its event happen
together or not at all.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

from bot import store
from bot.store.record import load_run, run_record
from bot.store.run_events import RUN_EVENTS_CHANNEL, event_header
from handlers import ports
from runbooks.engine.events import Notify
from runbooks.engine.models import AuditEntry, Run

_TOKEN_FIELD = "fencing_token"
# Every audit entry is also a log line on this logger (bot.observability.logs.AUDIT_LOGGER), once
# it is stored: a SIEM that reads the logs sees who did what to which run without reading Redis.
audit_log = logging.getLogger("kafka_chatops.audit")


def _log_audit(entries: Sequence[AuditEntry], cluster: str | None) -> None:
    for e in entries:
        audit_log.info("%s %s: %s -> %s%s", e.run_id, e.action, e.from_state.value, e.to_state.value,
                       f" ({e.detail})" if e.detail else "",
                       extra={"run_id": e.run_id, "cluster": cluster, "step_id": e.step_id, "actor": e.actor,
                              "action": e.action, "from_state": e.from_state.value, "to_state": e.to_state.value,
                              "detail": e.detail, "at": e.at.isoformat()})


def _audit_docs(entries: Sequence[AuditEntry]) -> list[store.JsonText]:
    return [store.JsonText(e.model_dump_json()) for e in entries]


class RedisRunRepository:
    def __init__(self, runs: store.RunStore, *, events_channel: str | None = RUN_EVENTS_CHANNEL) -> None:
        self._runs = runs
        self._supersessions = store.Supersessions(runs)
        self._events_channel = events_channel  # None: writes announce nothing (tools, tests)

    def _event(self, run: Run, notes: Sequence[Notify]) -> store.Event | None:
        if self._events_channel is None:
            return None
        return store.Event(channel=self._events_channel, header=event_header(run, notes))

    async def create(self, run: Run, audit: Sequence[AuditEntry], *, notes: Sequence[Notify] = ()) -> int:
        # The store writes the lock's token into the document as it takes the lock.
        document = run_record(run, exclude={_TOKEN_FIELD})
        with _translated():
            version = await self._runs.create_run_holding_lock(
                run.id, run.cluster, document, token_field=_TOKEN_FIELD, audit=_audit_docs(audit),
                event=self._event(run, notes))
        _log_audit(audit, run.cluster)
        return version

    async def supersede(self, run: Run, audit: Sequence[AuditEntry], *, notes: Sequence[Notify] = (),
                        old: Run, old_version: int, old_audit: Sequence[AuditEntry],
                        old_notes: Sequence[Notify] = ()) -> int:
        new_event, old_event = self._event(run, notes), self._event(old, old_notes)
        with _translated():
            version = await self._supersessions.create_run_superseding(
                run.id, run.cluster, run_record(run, exclude={_TOKEN_FIELD}),
                token_field=_TOKEN_FIELD, audit=_audit_docs(audit), superseded_id=old.id,
                superseded_document=run_record(old), superseded_version=old_version,
                superseded_audit=_audit_docs(old_audit),
                events=(new_event, old_event) if new_event is not None and old_event is not None else None)
        _log_audit(old_audit, old.cluster)
        _log_audit(audit, run.cluster)
        return version

    async def load(self, run_id: str) -> tuple[Run, int] | None:
        with _translated():
            loaded = await self._runs.load_run(run_id)
        if loaded is None:
            return None
        document, version = loaded
        return load_run(document), version

    async def save(self, run: Run, *, expected_version: int, audit: Sequence[AuditEntry],
                   notes: Sequence[Notify] = ()) -> int:
        with _translated():
            version = await self._runs.save_run(
                run.id, run_record(run), expected_version=expected_version,
                audit=_audit_docs(audit) or None, active=not run.state.terminal, event=self._event(run, notes),
            )
        _log_audit(audit, run.cluster)
        return version

    async def append_audit(self, run_id: str, entries: Sequence[AuditEntry]) -> None:
        with _translated():
            for doc in _audit_docs(entries):
                await self._runs.append_audit(run_id, doc)
        _log_audit(entries, None)

    async def audit(self, run_id: str) -> list[AuditEntry]:
        with _translated():
            docs = await self._runs.audit_entries(run_id)
        return [AuditEntry.model_validate(d) for d in docs]

    async def active(self, cluster: str | None = None) -> list[str]:
        with _translated():
            return await self._runs.active_runs(cluster)

    async def recent(self, cluster: str | None = None, limit: int = 20) -> list[str]:
        with _translated():
            return await self._runs.recent_runs(cluster, limit)


class RedisClusterLocks:
    def __init__(self, locks: store.ClusterLock) -> None:
        self._locks = locks

    async def holder(self, cluster: str) -> str | None:
        with _translated():
            return await self._locks.holder(cluster)

    async def release(self, cluster: str, run_id: str) -> bool:
        with _translated():
            return await self._locks.release(cluster, run_id)

    async def check_token(self, cluster: str, token: int) -> bool:
        with _translated():
            return await self._locks.check_token(cluster, token)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """Map the store's exceptions onto the ports' (the use cases know only those)."""
    try:
        yield
    except store.ClusterHeld as exc:
        raise ports.ClusterHeld(exc.holder) from exc
    except store.RunExists as exc:
        raise ports.RunExists(str(exc)) from exc
    except store.VersionConflict as exc:
        raise ports.VersionConflict(str(exc)) from exc
    except store.StoreUnavailable as exc:
        raise ports.StoreUnavailable(str(exc)) from exc
