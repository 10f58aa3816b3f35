"""``pending_work(run)``: what the worker must do next for a run, from its state alone.

``decide`` (``runbooks.engine.decide``) moves a run; this reads one. A restarted worker calls it to resume
a run exactly where the last one left off, without remembering anything itself.
"""

from __future__ import annotations

from runbooks.engine.events import ApplyAction, CheckCondition, CheckGate, Effect, Observe, ReleaseLock
from runbooks.engine.models import Run, RunState, StepPhase


def pending_work(run: Run) -> list[Effect]:
    """What the worker must do next for ``run``, derived from its state alone (used on resume)."""
    step = run.current_step
    if run.state.terminal:
        return [ReleaseLock()]
    if step is None:
        return []
    if run.state is RunState.RUNNING:
        if step.phase is StepPhase.GATE:
            return [CheckGate(step_id=step.id)]
        if not step.observed:
            return [Observe(step_id=step.id)]
        return [ApplyAction(step_id=step.id)]
    if run.state is RunState.WAITING:
        return [CheckCondition(step_id=step.id)]
    if run.state is RunState.AWAITING_APPROVAL and not step.detail:
        return [CheckGate(step_id=step.id, advisory=True)]  # so the approver sees what is at risk
    return []
