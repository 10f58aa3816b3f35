"""One decision being assembled (``Outcome``) and the ``Decision`` it becomes, with the small moves
every rule of the engine shares: refuse, start a step, finish the run.

Apart from ``decide`` so that the rules of an abort (``runbooks.engine.aborting``) and the rules of
the normal course (``runbooks.engine.decide``) are written with the same pieces and neither module
outgrows a read.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from runbooks.engine.approvals import Refusal
from runbooks.engine.events import Effect, Notify, ReleaseLock
from runbooks.engine.models import Actor, AuditEntry, Run, Step, StepPhase, StepState
from runbooks.engine.transitions import Trigger, transition


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    run: Run
    effects: tuple[Effect, ...] = ()
    audit: tuple[AuditEntry, ...] = ()
    refusal: Refusal | None = None

    @property
    def changed(self) -> bool:
        return self.refusal is None and bool(self.audit)


class Outcome:
    """The pieces of one decision being assembled: keeps decide() readable."""

    def __init__(self, run: Run, now: datetime, actor: str) -> None:
        self.run = run
        self.now = now
        self.actor = actor
        self.effects: list[Effect] = []
        self.audit: list[AuditEntry] = []

    def move(self, trigger: Trigger, *, step: Step | None = None, detail: str = "", **changes: object) -> None:
        source = self.run.state
        target = transition(source, trigger)
        updates: dict[str, object] = {"state": target, "updated_at": self.now, **changes}
        if step is not None:
            updates["steps"] = self.run.with_step(self.run.current, step)
        self.run = self.run.model_copy(update=updates)
        self.audit.append(AuditEntry(
            at=self.now, run_id=self.run.id, actor=self.actor, action=trigger.value, from_state=source,
            to_state=target, step_id=step.id if step else current_id(self.run), detail=detail,
        ))

    def notify(self, event: str, text: str, step_id: str | None = None) -> None:
        self.effects.append(Notify(event=event, step_id=step_id, text=text))

    def decision(self) -> Decision:
        return Decision(run=self.run, effects=tuple(self.effects), audit=tuple(self.audit))


def current_id(run: Run) -> str | None:
    step = run.current_step
    return step.id if step else None


def refuse(run: Run, now: datetime, actor: Actor, action: str, refusal: Refusal) -> Decision:
    entry = AuditEntry(
        at=now, run_id=run.id, actor=actor.id, action=f"{action}_refused", from_state=run.state,
        to_state=run.state, step_id=current_id(run), detail=f"{refusal.code.value}: {refusal.message}",
    )
    return Decision(run=run, audit=(entry,), refusal=refusal)


def started(step: Step, now: datetime) -> Step:
    return step.model_copy(update={
        "state": StepState.RUNNING, "phase": StepPhase.GATE, "attempt": step.attempt + 1,
        "started_at": step.started_at or now, "deadline": now + timedelta(seconds=step.spec.timeout_s),
    })


def finish(out: Outcome) -> None:
    out.effects.append(ReleaseLock())
    out.notify("run_finished", f"Run {out.run.state.value}: {out.run.outcome or ''}".strip())
