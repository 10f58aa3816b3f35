"""The engine worker: drives every run whose lease this process holds.

One loop per run: load the record, let the clock speak (deadlines), derive the next piece of work
from the state (``pending_work``), do it through a step executor, hand the result to ``decide``
and write the new record with compare-and-set before anything else happens. Nothing is kept in
memory that the record does not hold, so a crash at any instant resumes from Redis: the step's
done-check is asked before its action, and actions carry preconditions (a pod uid), so no side
effect is repeated. A Redis outage holds the loop (nothing is applied without a write first) and
it carries on when Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from bot import store
from bot.foreground import Foreground
from bot.store.run_events import RunEvent
from handlers.clusters import ManagedCluster
from handlers.ports import (
    Clock,
    ClusterGateway,
    ClusterLocks,
    Ids,
    KafkaAdmin,
    RunRepository,
    StoreUnavailable,
    VersionConflict,
)
from handlers.steps.registry import EXECUTORS, StepContext, StepError
from runbooks.engine.decide import decide
from runbooks.engine.events import (
    ActionApplied,
    ActionFailed,
    ApplyAction,
    CheckCondition,
    CheckGate,
    ConditionChecked,
    Effect,
    Event,
    GateChecked,
    Notify,
    Observe,
    Observed,
    ReleaseLock,
    Tick,
)
from runbooks.engine.models import AuditEntry, Run, RunState
from runbooks.engine.pending import pending_work
from runbooks.engine.transitions import IllegalTransition

log = logging.getLogger(__name__)

IDLE_RECHECK_S = 5.0
# While a step waits for approval its advisory gate ("At risk: ...") is asked again this often, so
# the card follows a broker that dies meanwhile. The run is written only when the answer changed,
# or when the shown check is older than ADVISORY_REFRESH_S (its "checked" time stays recent
# without an audit entry per re-check). The real gate still decides when the step is approved.
ADVISORY_RECHECK_S = 15.0
ADVISORY_REFRESH_S = 300.0
_CHECKED = " (checked "


class Worker:
    def __init__(
        self, *, runs: RunRepository, locks: ClusterLocks, leases: store.RunLease,
        clusters: Mapping[str, ManagedCluster], gateway: ClusterGateway, admin: KafkaAdmin,
        clock: Clock, ids: Ids, owner: str, lease_ttl_s: float = 10.0, poll_interval_s: float = 0.5,
        scan_interval_s: float = 1.0, foreground: Foreground | None = None,
        advisory_recheck_s: float = ADVISORY_RECHECK_S,
    ) -> None:
        self._runs = runs
        self._locks = locks
        self._leases = leases
        self._clusters = clusters
        self._gateway = gateway
        self._admin = admin
        self._clock = clock
        self._ids = ids
        self.owner = owner
        self._lease_ttl = lease_ttl_s
        self._poll = poll_interval_s
        self._scan_interval = scan_interval_s
        self._driving: dict[str, asyncio.Task[None]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._scanner: asyncio.Task[None] | None = None
        self._pickups: set[asyncio.Task[None]] = set()
        self._advisory_recheck_s = advisory_recheck_s
        self._advised: dict[str, float] = {}  # run id -> loop time of its last advisory check (a schedule only)
        # Each look at a run first lets in-flight requests (Slack acks) finish: bot.foreground.
        self._foreground = foreground or Foreground()

    @property
    def driving(self) -> set[str]:
        return set(self._driving)

    async def start(self) -> None:
        self._scanner = asyncio.create_task(self._scan_forever(), name="worker-scan")

    async def stop(self) -> None:
        """Stop driving and hand the leases back, so another replica takes over at once."""
        tasks = [t for t in (self._scanner, *self._pickups, *self._driving.values()) if t is not None]
        for task in tasks:
            task.cancel()
        # Cancel until done: on 3.11 asyncio.wait_for (in _wait) can swallow a cancel that lands as
        # a run event sets the wakeup, and that drive loop would go on. Bounded, so a task stuck in a
        # client call (Kafka calls run in a thread) cannot hold the shutdown: its lease lapses.
        deadline = asyncio.get_running_loop().time() + 10
        while (pending := [t for t in tasks if not t.done()]) and asyncio.get_running_loop().time() < deadline:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=0.5)
        for run_id in list(self._driving):
            with contextlib.suppress(store.StoreError):
                await self._leases.release(run_id, self.owner)
        self._driving.clear()

    async def on_run_event(self, event: RunEvent) -> None:
        """A run changed somewhere: wake its driver, or pick up a new run without waiting for a scan.
        Returns at once: the bus hands events to every listener in turn."""
        if event.run_id in self._wakeups:
            self._wakeups[event.run_id].set()
        elif not event.state.terminal:
            task = asyncio.create_task(self._pick_up(event.run_id), name=f"pick-up-{event.run_id}")
            self._pickups.add(task)
            task.add_done_callback(self._pickups.discard)

    async def _pick_up(self, run_id: str) -> None:
        await self._foreground.quiet_moment()
        await self._try_drive(run_id)

    async def scan(self) -> None:
        """Take every unfinished run whose lease has expired (a crashed or stopped replica's)."""
        await self._foreground.quiet_moment()
        for run_id in await self._runs.active():
            await self._try_drive(run_id)

    async def _scan_forever(self) -> None:
        while True:
            try:
                await self.scan()
            except StoreUnavailable as exc:
                log.warning("worker scan held: %s", exc)
            except store.StoreError as exc:
                log.warning("worker scan failed: %s", exc)
            await asyncio.sleep(self._scan_interval)

    async def _try_drive(self, run_id: str) -> None:
        if run_id in self._driving:
            return
        try:
            if not await self._leases.try_acquire(run_id, self.owner, self._lease_ttl):
                return
        except store.StoreError:
            return
        if run_id in self._driving:  # another coroutine won while we awaited the lease
            return
        self._wakeups[run_id] = asyncio.Event()
        self._driving[run_id] = asyncio.create_task(self._drive(run_id), name=f"drive-{run_id}")

    async def _drive(self, run_id: str) -> None:
        renewer = asyncio.create_task(self._renew_lease(run_id), name=f"lease-{run_id}")
        try:
            await self._drive_until_done(run_id, renewer)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("driving run %s failed; another scan will pick it up", run_id)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            self._driving.pop(run_id, None)
            self._wakeups.pop(run_id, None)
            self._advised.pop(run_id, None)
            with contextlib.suppress(store.StoreError):
                await self._leases.release(run_id, self.owner)

    async def _renew_lease(self, run_id: str) -> None:
        while True:
            await asyncio.sleep(self._lease_ttl / 3)
            try:
                still_ours = await self._leases.renew(run_id, self.owner, self._lease_ttl)
            except store.StoreError:
                continue  # Redis down: the loop holds too; if the lease lapses meanwhile, renew says so
            if not still_ours:
                log.warning("lost the lease on %s; stopping here so only one replica drives it", run_id)
                task = self._driving.get(run_id)
                if task is not None:
                    task.cancel()
                return

    async def _drive_until_done(self, run_id: str, renewer: asyncio.Task[None]) -> None:
        backoff = self._poll
        while not renewer.done():
            await self._foreground.quiet_moment()
            try:
                finished = await self._step_once(run_id)
                backoff = self._poll
            except StoreUnavailable as exc:
                log.warning("run %s held: %s", run_id, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if finished:
                return

    async def _step_once(self, run_id: str) -> bool:
        """Advance the run by one decision (or wait). Returns True when the run is finished."""
        loaded = await self._runs.load(run_id)
        if loaded is None:
            return True
        run, version = loaded
        if run.state.terminal:
            await self._release_lock(run)
            return True
        ticked = decide(run, Tick(), self._clock.now(), self._ids)
        if ticked.audit:
            await self._commit(run, version, ticked.run, ticked.audit, ticked.effects)
            return False
        work = pending_work(run)
        if not work:
            await self._recheck_advisory(run, version)
            await self._wait(run_id, seconds=self._idle_wait_s(run))  # awaiting a human
            return False
        effect = work[0]
        event = await self._execute(run, effect)
        if event is None:
            await self._wait(run_id, seconds=self._poll)
            return False
        try:
            decision = decide(run, event, self._clock.now(), self._ids)
        except IllegalTransition:
            return False  # the run moved under us (a click): look again
        if decision.audit:
            await self._commit(run, version, decision.run, decision.audit, decision.effects)
        elif isinstance(effect, CheckCondition):
            await self._wait(run_id, seconds=self._poll)
        return False

    async def _recheck_advisory(self, run: Run, version: int) -> None:
        """Ask the waiting step's gate again (see ADVISORY_RECHECK_S) and record a changed answer."""
        step = run.current_step
        if run.state is not RunState.AWAITING_APPROVAL or step is None or not step.detail:
            return
        loop_now = asyncio.get_running_loop().time()
        if loop_now - self._advised.setdefault(run.id, loop_now) < self._advisory_recheck_s:
            return
        self._advised[run.id] = loop_now
        event = await self._execute(run, CheckGate(step_id=step.id, advisory=True))
        if not isinstance(event, GateChecked):
            return  # the check itself failed: the last answer stays, with the time it was made
        changed = (event.findings, _unchecked(event.reason)) != (step.findings, _unchecked(step.detail))
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
        audit = tuple(e.model_copy(update={"actor": f"{e.actor}@{self.owner}"}) if e.actor in ("worker", "clock")
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

    async def _wait(self, run_id: str, *, seconds: float) -> None:
        wakeup = self._wakeups.get(run_id)
        if wakeup is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wakeup.wait(), seconds)
        wakeup.clear()

    def _context(self, run: Run) -> StepContext:
        cluster = self._clusters.get(run.cluster)
        if cluster is None:
            raise StepError(f"cluster {run.cluster} is no longer in the configuration", permanent=True)
        return StepContext(cluster=cluster.ref, gateway=self._gateway, admin=self._admin, clock=self._clock)

    async def _execute(self, run: Run, effect: Effect) -> Event | None:
        """Do one piece of work; the answer is an event for decide(), or None to look again later."""
        step = run.current_step
        assert step is not None
        executor = EXECUTORS.get(step.spec.kind)
        if executor is None:
            return ActionFailed(step_id=step.id, error=f"unknown step kind {step.spec.kind}", permanent=True)
        try:
            ctx = self._context(run)
            match effect:
                case CheckGate(advisory=advisory):
                    gate = await executor.gate(ctx, step)
                    reason = gate.reason if gate.ok or not advisory else f"not yet safe: {gate.reason}"
                    if advisory:  # the card says how fresh the advice is (it is re-checked while waiting)
                        reason += f"{_CHECKED}{self._clock.now():%H:%M:%S} UTC)"
                    return GateChecked(step_id=step.id, ok=gate.ok, findings=gate.findings, reason=reason)
                case Observe():
                    return Observed(step_id=step.id, data=await executor.observe(ctx, step))
                case ApplyAction():
                    try:
                        done = await executor.done(ctx, step)
                    except StepError:
                        raise
                    except Exception as exc:
                        # Cannot tell whether it is done yet: never act blind, look again later.
                        log.info("run %s step %s: done-check failed (%s); retrying", run.id, step.id, exc)
                        return None
                    if done.done:
                        return ConditionChecked(step_id=step.id, done=True, detail=done.detail)
                    if run.fencing_token is not None and not await self._locks.check_token(
                            run.cluster, run.fencing_token):
                        return ActionFailed(step_id=step.id, error="this run no longer holds the cluster lock")
                    return ActionApplied(step_id=step.id, detail=await executor.act(ctx, step))
                case CheckCondition():
                    result = await executor.done(ctx, step)
                    return ConditionChecked(step_id=step.id, done=result.done, detail=result.detail,
                                            failure=result.failure)
        except StepError as exc:
            if isinstance(effect, ApplyAction | Observe) or exc.permanent:
                return ActionFailed(step_id=step.id, error=str(exc), permanent=exc.permanent)
            log.info("run %s step %s: %s (will look again)", run.id, step.id, exc)
            return None
        except StoreUnavailable:
            raise
        except Exception as exc:
            # Kafka or Kubernetes hiccups: checks are retried until the step's deadline pauses the
            # run; an action that failed pauses at once, so a human sees it.
            if isinstance(effect, ApplyAction):
                return ActionFailed(step_id=step.id, error=f"{type(exc).__name__}: {exc}")
            log.info("run %s step %s: check failed (%s: %s); retrying", run.id, step.id, type(exc).__name__, exc)
            return None
        return None


def _unchecked(detail: str) -> str:
    """An advisory gate's answer without the time it was checked, to compare two answers."""
    head, found, _ = detail.rpartition(_CHECKED)
    return head if found else detail
