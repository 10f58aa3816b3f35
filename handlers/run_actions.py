"""Human actions on existing runs: approve, abort, resume (retry). Any replica may take them.

Each goes through ``decide()`` on the freshly loaded run and a compare-and-set write, so a click
on a card whose run another replica drives still works, and a double click approves once: the
second one loses the CAS or finds the approval already recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from handlers.ports import Clock, Ids, RunRepository, VersionConflict
from handlers.replies import Reply
from handlers.views import run_card
from runbooks.engine import decide
from runbooks.events import Abort, Approve, Event, Notify, Retry
from runbooks.models import Actor, Run
from runbooks.transitions import IllegalTransition

_CAS_ATTEMPTS = 5
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

        return await self._apply(run_id, event, verb="approve")

    async def abort(self, run_id: str, actor: Actor) -> Reply:
        return await self._apply(run_id, lambda run: Abort(actor=actor), verb="abort")

    async def resume(self, run_id: str, actor: Actor) -> Reply:
        return await self._apply(run_id, lambda run: Retry(actor=actor), verb="resume")

    async def _apply(self, run_id: str, make_event: _EventFactory, *, verb: str) -> Reply:
        for _ in range(_CAS_ATTEMPTS):
            loaded = await self._runs.load(run_id)
            if loaded is None:
                return Reply.error(f"No run {run_id}. `/kafka runs` lists the recent ones.")
            run, version = loaded
            now: datetime = self._clock.now()
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
