"""Advances one run by one decision: the worker's rules, free of Redis and of asyncio tasks.

Load the record, let the clock speak (deadlines), derive the next piece of work from the state
(``pending_work``), do it (``handlers.runs.execute``), hand the result to ``decide`` and write the
new record with compare-and-set before anything else happens. Nothing is kept that the record
does not hold (but the schedule of advisory re-checks), so a crash at any instant resumes from the
store. The caller (``bot.worker``) owns the loop, the wake-ups and the leases; it is told whether
the run is finished and how long it may wait before asking again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from handlers.clusters import ManagedCluster
from handlers.mirror_ports import MirrorCanary, MirrorMakers
from handlers.ports import Clock, ClusterGateway, ClusterLocks, Ids, KafkaAdmin, RunRepository, VersionConflict
from handlers.rebalances import KafkaRebalances
from handlers.runs import log_context
from handlers.runs.execute import StepExecution, unchecked
from runbooks.engine.decide import decide
from runbooks.engine.events import CheckCondition, CheckGate, Effect, GateChecked, Notify, ReleaseLock, Tick
from runbooks.engine.models import AuditEntry, Run, RunState
from runbooks.engine.pending import pending_work
from runbooks.engine.transitions import IllegalTransition

IDLE_RECHECK_S = 5.0
# While a step waits for approval its advisory gate ("At risk: ...") is asked again this often, so
# the card follows a broker that dies meanwhile. The run is written only when the answer changed,
# or when the shown check is older than ADVISORY_REFRESH_S (its "checked" time stays recent
# without an audit entry per re-check). The real gate still decides when the step is approved.
ADVISORY_RECHECK_S = 15.0
ADVISORY_REFRESH_S = 300.0


@dataclass(frozen=True)
class Next:
    """What the driver does after one step: stop (``finished``), or look again after ``wait_s``
    seconds (None: at once). A wait ends early when the run changes (a click, on any replica)."""

    finished: bool = False
    wait_s: float | None = None


FINISHED = Next(finished=True)
AGAIN = Next()


class RunStepper:
    def __init__(
        self, *, runs: RunRepository, locks: ClusterLocks, clusters: Mapping[str, ManagedCluster],
        gateway: ClusterGateway, admin: KafkaAdmin, clock: Clock, ids: Ids, owner: str,
        poll_interval_s: float = 0.5, advisory_recheck_s: float = ADVISORY_RECHECK_S,
        monotonic: Callable[[], float] = time.monotonic, rebalances: KafkaRebalances | None = None,
        mirror_makers: MirrorMakers | None = None, canary: MirrorCanary | None = None,
    ) -> None:
        self._runs = runs
        self._locks = locks
        self._clock = clock
        self._ids = ids
        self._owner = owner
        self._poll = poll_interval_s
        self._advisory_recheck_s = advisory_recheck_s
        self._monotonic = monotonic
        self._advised: dict[str, float] = {}  # run id -> monotonic time of its last advisory check
        self._execution = StepExecution(clusters=clusters, gateway=gateway, admin=admin, locks=locks, clock=clock,
                                        rebalances=rebalances, mirror_makers=mirror_makers, canary=canary)

    def forget(self, run_id: str) -> None:
        """The driver stopped driving the run: drop its advisory schedule."""
        self._advised.pop(run_id, None)

    async def step_once(self, run_id: str) -> Next:
        """Advance the run by one decision (or say how long to wait). StoreUnavailable goes to the
        caller, which holds the run until the store is back."""
        loaded = await self._runs.load(run_id)
        if loaded is None:
            return FINISHED
        run, version = loaded
        step = run.current_step
        with log_context.bound(run_id=run.id, cluster=run.cluster, step_id=step.id if step else None):
            return await self._step(run, version)

    async def _step(self, run: Run, version: int) -> Next:
        if run.state.terminal:
            await self._release_lock(run)
            return FINISHED
        ticked = decide(run, Tick(), self._clock.now(), self._ids)
        if ticked.audit:
            await self._commit(run, version, ticked.run, ticked.audit, ticked.effects)
            return AGAIN
        work = pending_work(run)
        if not work:
            await self._recheck_advisory(run, version)
            return Next(wait_s=self._idle_wait_s(run))  # awaiting a human
        effect = work[0]
        event = await self._execution.execute(run, effect)
        if event is None:
            return Next(wait_s=self._poll)
        try:
            decision = decide(run, event, self._clock.now(), self._ids)
        except IllegalTransition:
            return AGAIN  # the run moved under us (a click): look again
        if decision.audit:
            await self._commit(run, version, decision.run, decision.audit, decision.effects)
        elif isinstance(effect, CheckCondition):
            return Next(wait_s=self._poll)
        return AGAIN

    async def _recheck_advisory(self, run: Run, version: int) -> None:
        """Ask the waiting step's gate again (see ADVISORY_RECHECK_S) and record a changed answer."""
        step = run.current_step
        if run.state is not RunState.AWAITING_APPROVAL or step is None or not step.detail:
            return
        now_s = self._monotonic()
        if now_s - self._advised.setdefault(run.id, now_s) < self._advisory_recheck_s:
            return
        self._advised[run.id] = now_s
        event = await self._execution.execute(run, CheckGate(step_id=step.id, advisory=True))
        if not isinstance(event, GateChecked):
            return  # the check itself failed: the last answer stays, with the time it was made
        changed = (event.findings, unchecked(event.reason)) != (step.findings, unchecked(step.detail))
        stale = (self._clock.now() - run.updated_at).total_seconds() >= ADVISORY_REFRESH_S
        if not (changed or stale):
            return
        try:
            decision = decide(run, event, self._clock.now(), self._ids)
        except IllegalTransition:
            return  # approved or aborted meanwhile
        if decision.audit:
            await self._commit(run, version, decision.run, decision.audit, decision.effects)

    def _idle_wait_s(self, run: Run) -> float:
        """A run waiting for a human wakes on its run event (a click, on any replica); the clock
        only matters at the approval's deadline. IDLE_RECHECK_S bounds the wait in case an event
        was missed (a resubscribing bus), so an idle run costs a read every few seconds, not more."""
        if run.state is RunState.AWAITING_APPROVAL and run.approval is not None:
            until = (run.approval.expires_at - self._clock.now()).total_seconds()
            return min(IDLE_RECHECK_S, self._advisory_recheck_s, max(until, 0.0) + 0.01)
        return IDLE_RECHECK_S

    async def _commit(
        self, old: Run, version: int, new: Run, audit: tuple[AuditEntry, ...], effects: tuple[Effect, ...],
    ) -> None:
        # The audit says which replica decided, so "one driver per run" can be checked afterwards.
        audit = tuple(e.model_copy(update={"actor": f"{e.actor}@{self._owner}"}) if e.actor in ("worker", "clock")
                      else e for e in audit)
        try:
            await self._runs.save(new, expected_version=version, audit=audit,
                                  notes=[e for e in effects if isinstance(e, Notify)])
        except VersionConflict:
            return  # someone else decided first; the next loop judges against their record
        if any(isinstance(e, ReleaseLock) for e in effects):
            await self._release_lock(new)

    async def _release_lock(self, run: Run) -> None:
        await self._locks.release(run.cluster, run.id)
