"""Human actions on existing runs: approve, abort, resume (retry). Any replica may take them.

Each goes through ``decide()`` on the freshly loaded run and a compare-and-set write, so a click
on a card whose run another replica drives still works, and a double click approves once: the
second one loses the CAS or finds the approval already recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from handlers.ports import Clock, Ids, RunRepository, VersionConflict
from handlers.replies import Reply, quote
from handlers.runs import log_context
from handlers.runs.run_text import run_card
from runbooks.engine.decide import decide
from runbooks.engine.events import Abort, Approve, Event, Notify, Retry
from runbooks.engine.models import Actor, AuditEntry, Run
from runbooks.engine.transitions import IllegalTransition

_CAS_ATTEMPTS = 5
_STEPS_LISTED = 20
_EventFactory = Callable[[Run], Event]


class RunActions:
    def __init__(self, *, runs: RunRepository, clock: Clock, ids: Ids) -> None:
        self._runs = runs
        self._clock = clock
        self._ids = ids

    async def approve(
        self, run_id: str, actor: Actor, *, step_id: str | None = None, nonce: str | None = None,
        plan_hash: str | None = None,
    ) -> Reply:
        """Approve the waiting step. A button carries the nonce and plan hash it was shown with; a
        typed console approval names the step it means and is checked against the current request."""

        def event(run: Run) -> Event:
            request = run.approval
            return Approve(
                actor=actor,
                step_id=step_id or (request.step_id if request else ""),
                nonce=nonce if nonce is not None else (request.nonce if request else ""),
                plan_hash=plan_hash if plan_hash is not None else run.plan_hash,
            )

        return await self._apply(run_id, event, verb="approve", actor=actor, step=(step_id, actor) if step_id else None)

    async def abort(self, run_id: str, actor: Actor) -> Reply:
        return await self._apply(run_id, lambda run: Abort(actor=actor), verb="abort", actor=actor)

    async def resume(self, run_id: str, actor: Actor, *, step_id: str | None = None) -> Reply:
        """Resume the paused step. A Retry button carries the step it was shown for: the engine refuses
        it once the run is paused on another step; a typed resume (None) means the current one."""
        return await self._apply(run_id, lambda run: Retry(actor=actor, step_id=step_id), verb="resume", actor=actor)

    async def _apply(self, run_id: str, make_event: _EventFactory, *, verb: str, actor: Actor,
                     step: tuple[str, Actor] | None = None) -> Reply:
        """``step``: the step id the actor named, checked against the run's steps first."""
        with log_context.bound(run_id=run_id, step_id=step[0] if step else None, actor=actor.id):
            return await self._apply_once_settled(run_id, make_event, verb=verb, step=step)

    async def _apply_once_settled(self, run_id: str, make_event: _EventFactory, *, verb: str,
                                  step: tuple[str, Actor] | None) -> Reply:
        for _ in range(_CAS_ATTEMPTS):
            loaded = await self._runs.load(run_id)
            if loaded is None:
                return Reply.error(f"No run {run_id}. `/kafka runs` lists the recent ones.")
            run, version = loaded
            now: datetime = self._clock.now()
            if step is not None and not any(s.id == step[0] for s in run.steps):
                return await self._no_such_step(run, step[0], verb, now, step[1])
            try:
                decision = decide(run, make_event(run), now, self._ids)
            except IllegalTransition as exc:
                return Reply.error(f"Cannot {verb} run {run_id}: {exc}.")
            if decision.refusal is not None:
                await self._runs.append_audit(run_id, decision.audit)
                return Reply.error(decision.refusal.message)
            if not decision.audit:
                return Reply(text=run_card(run, now), run=run)
            notes = [e for e in decision.effects if isinstance(e, Notify)]
            try:
                await self._runs.save(decision.run, expected_version=version, audit=decision.audit, notes=notes)
            except VersionConflict:
                continue  # someone moved the run meanwhile: judge the click against the new state
            return Reply(text=run_card(decision.run, now), run=decision.run)
        return Reply.error(f"Run {run_id} is changing too fast to {verb} right now; try again.")

    async def _no_such_step(self, run: Run, step_id: str, verb: str, now: datetime, actor: Actor) -> Reply:
        """A step id the run never had (typed wrong, or a forged button): say so, and which steps it has.
        Audited like any refused approval."""
        steps = [step.id for step in run.steps]
        shown = ", ".join(steps[:_STEPS_LISTED]) + (f" and {len(steps) - _STEPS_LISTED} more"
                                                    if len(steps) > _STEPS_LISTED else "")
        waiting = run.approval.step_id if run.approval is not None else None
        now_waiting = f" It is waiting for approval of step {waiting}." if waiting else ""
        message = f"Run {run.id} has no step {quote(step_id)}: its steps are {shown or '(none)'}.{now_waiting}"
        await self._runs.append_audit(run.id, [AuditEntry(
            at=now, run_id=run.id, actor=actor.id, action=f"{verb}_refused", from_state=run.state,
            to_state=run.state, step_id=None, detail=f"no_such_step: {message}")])
        return Reply.error(message)
