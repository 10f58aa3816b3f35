"""``decide(run, event, now, ids) -> Decision``: the deterministic core of every run.

No I/O, no clock, no randomness: time and ids come in as arguments, so tests drive them and a
recorded history replays to the same states (temporal's workflow rule). The worker applies the
effects; ``pending_work(run)`` (``runbooks.engine.pending``) tells it, from the state alone, what is left
to do, so a restarted worker resumes from the stored record without remembering anything.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from runbooks.engine.aborting import (
    begin_cleanup,
    cleaning_up,
    continue_cleanup,
    end_without_cleanup,
    interrupted,
    stop_on_failure,
)
from runbooks.engine.approvals import (
    Refusal,
    RefusalCode,
    authorize_abort,
    authorize_approval,
    check_approval,
    check_button_step,
)
from runbooks.engine.events import (
    Abort,
    ActionApplied,
    ActionFailed,
    Approve,
    CheckGate,
    ConditionChecked,
    Event,
    GateChecked,
    Observed,
    Retry,
    Skip,
    Start,
    Tick,
)
from runbooks.engine.models import (
    Approval,
    ApprovalRequest,
    Run,
    RunState,
    Step,
    StepPhase,
    StepState,
)
from runbooks.engine.outcome import Decision, Outcome, finish, refuse, started
from runbooks.engine.transitions import IllegalTransition, Trigger


class IdFactory(Protocol):
    def nonce(self) -> str: ...


def decide(run: Run, event: Event, now: datetime, ids: IdFactory) -> Decision:
    """The new run and the effects to apply. Raises IllegalTransition for an event the run's state
    cannot take (the run is unchanged); human actions that fail a check come back as a refusal."""
    match event:
        case Start():
            return _on_start(run, event, now, ids)
        case Approve():
            return _on_approve(run, event, now, ids)
        case Abort():
            return _on_abort(run, event, now, ids)
        case Retry():
            return _on_retry(run, event, now, ids)
        case Skip():
            return _on_skip(run, event, now, ids)
        case GateChecked():
            return _on_gate(run, event, now)
        case Observed():
            return _on_observed(run, event, now)
        case ActionApplied():
            return _on_applied(run, event, now)
        case ActionFailed():
            return _on_failed(run, event, now)
        case ConditionChecked():
            return _on_condition(run, event, now, ids)
        case Tick():
            return _on_tick(run, now)


def _enter_step(out: Outcome, index: int, ids: IdFactory, *, via: tuple[Trigger, Trigger, Trigger]) -> None:
    """Move to step ``index``: ask for approval, run it, or finish the run when there is none."""
    awaiting, running, complete = via
    run = out.run
    stopping = run.abort_requested_by is not None and via[0] is Trigger.NEXT_AWAITING  # a step just finished
    if stopping and (index < len(run.steps) or interrupted(run)):
        # The cleanup steps left run by themselves, then the run ends (a skip from a paused step
        # is a human decision point, not an action in flight: it ends the run the same way).
        continue_cleanup(out, index)
        return
    if index >= len(run.steps):
        # Also when an abort was asked during the last step: nothing is left to stop, so say so.
        out.move(complete, finished_at=out.now, outcome="All steps done.", approval=None)
        finish(out)
        return
    out.run = run.model_copy(update={"current": index})
    step = run.steps[index]
    if step.spec.needs_approval:
        required = step.spec.approvals_required or run.policy.approvals_required
        request = ApprovalRequest(
            step_id=step.id, nonce=ids.nonce(), plan_hash=run.plan_hash, requested_at=out.now,
            expires_at=out.now + timedelta(seconds=run.policy.approval_timeout_s), required=required,
        )
        waiting = step.model_copy(update={"state": StepState.AWAITING_APPROVAL, "phase": None, "detail": ""})
        out.move(awaiting, step=waiting, approval=request, pause_reason=None)
        out.effects.append(CheckGate(step_id=step.id, advisory=True))
        out.notify("step_awaiting_approval", f"Waiting for approval: {step.spec.title}", step.id)
    else:
        out.move(running, step=started(step, out.now), approval=None, pause_reason=None)
        out.notify("step_started", step.spec.title, step.id)


def _advance(out: Outcome, ids: IdFactory, *, finished: StepState, detail: str = "") -> None:
    step = out.run.current_step
    assert step is not None
    done = step.model_copy(
        update={"state": finished, "phase": None, "finished_at": out.now, "detail": detail or step.detail}
    )
    out.run = out.run.model_copy(update={"steps": out.run.with_step(out.run.current, done)})
    out.notify("step_done" if finished is StepState.DONE else "step_skipped", step.spec.title, step.id)
    _enter_step(out, out.run.current + 1, ids,
                via=(Trigger.NEXT_AWAITING, Trigger.NEXT_RUNNING, Trigger.COMPLETE))


def _pause(out: Outcome, trigger: Trigger, reason: str) -> None:
    step = out.run.current_step
    assert step is not None
    paused = step.model_copy(update={"state": StepState.PAUSED, "detail": reason})
    out.move(trigger, step=paused, detail=reason, pause_reason=reason, approval=None)
    out.notify("step_paused", reason, step.id)


def _on_start(run: Run, event: Start, now: datetime, ids: IdFactory) -> Decision:
    out = Outcome(run, now, run.requested_by)
    out.notify("run_started", f"{run.runbook} on {run.cluster}")
    _enter_step(out, 0, ids, via=(Trigger.START_AWAITING, Trigger.START_RUNNING, Trigger.COMPLETE))
    return out.decision()


def _on_approve(run: Run, event: Approve, now: datetime, ids: IdFactory) -> Decision:
    refusal = check_approval(run, event.actor, step_id=event.step_id, nonce=event.nonce, plan_hash=event.plan_hash,
                             now=now)
    if refusal is not None:
        return refuse(run, now, event.actor, "approve", refusal)
    assert run.approval is not None
    out = Outcome(run, now, event.actor.id)
    approval = Approval(by=event.actor.id, at=now, nonce=event.nonce, plan_hash=event.plan_hash)
    request = run.approval.model_copy(update={"approvals": (*run.approval.approvals, approval)})
    step = run.current_step
    assert step is not None
    if len(request.approvals) < request.required:
        out.move(Trigger.APPROVE_PARTIAL, approval=request,
                 detail=f"{len(request.approvals)} of {request.required} approvals")
        return out.decision()
    out.move(Trigger.APPROVE, step=started(step, now), approval=None,
             detail=f"approved by {', '.join(a.by for a in request.approvals)}")
    out.notify("step_started", step.spec.title, step.id)
    return out.decision()


def _on_abort(run: Run, event: Abort, now: datetime, ids: IdFactory) -> Decision:
    if run.state.terminal:
        return refuse(run, now, event.actor, "abort",
                       Refusal(code=RefusalCode.FINISHED, message=f"Run {run.id} is already {run.state.value}."))
    refusal = authorize_abort(run, event.actor)
    if refusal is not None:
        return refuse(run, now, event.actor, "abort", refusal)
    out = Outcome(run, now, event.actor.id)
    step = run.current_step
    in_flight = (
        run.state is RunState.WAITING
        or (run.state is RunState.RUNNING and step is not None and step.phase is StepPhase.ACT and bool(step.observed))
    )
    if in_flight and step is not None and step.spec.interruptible and not cleaning_up(run) and begin_cleanup(
            out, Trigger.ABORT_TO_CLEANUP, by=event.actor.id, detail=event.reason or "abort: the step in flight is "
            "stopped, the cleanup steps run"):
        return out.decision()
    if in_flight:
        out.move(Trigger.ABORT_DEFERRED, abort_requested_by=run.abort_requested_by or event.actor.id,
                 detail="abort requested: stopping after the step in flight")
        out.notify("abort_requested", "Abort requested: the run stops once the step in flight is safe.")
        return out.decision()
    if not cleaning_up(run) and begin_cleanup(
            out, Trigger.ABORT_TO_CLEANUP, by=event.actor.id, detail=event.reason or "abort: cleanup steps run"):
        return out.decision()
    steps = run.steps
    if step is not None and step.state not in (StepState.DONE, StepState.SKIPPED):
        steps = run.with_step(run.current, step.model_copy(update={"state": StepState.ABORTED, "finished_at": now}))
    outcome = f"Aborted by {event.actor.id}. {event.reason}".rstrip() + end_without_cleanup(run)
    out.move(Trigger.ABORT, steps=steps, approval=None, finished_at=now, abort_requested_by=event.actor.id,
             outcome=outcome, detail=event.reason)
    finish(out)
    return out.decision()


def _on_retry(run: Run, event: Retry, now: datetime, ids: IdFactory) -> Decision:
    step = run.current_step
    if run.state is not RunState.PAUSED or step is None:
        return refuse(run, now, event.actor, "retry",
                       Refusal(code=RefusalCode.STALE, message=f"Run {run.id} is {run.state.value}, not paused."))
    refusal = check_button_step(run, event.step_id) or authorize_approval(run, event.actor)
    if refusal is not None:
        return refuse(run, now, event.actor, "retry", refusal)
    out = Outcome(run, now, event.actor.id)
    if step.applied:
        renewed = step.model_copy(update={
            "state": StepState.WAITING, "deadline": now + timedelta(seconds=step.spec.timeout_s)})
        out.move(Trigger.RETRY_WAITING, step=renewed, pause_reason=None, detail="retry: waiting again")
        return out.decision()
    required = step.spec.approvals_required or run.policy.approvals_required
    if step.spec.needs_approval and required > 1:
        _enter_step(out, run.current, ids, via=(Trigger.RETRY_AWAITING, Trigger.RETRY_RUNNING, Trigger.COMPLETE))
        return out.decision()
    out.move(Trigger.RETRY_RUNNING, step=started(step, now), pause_reason=None,
             detail=f"retry by {event.actor.id}")
    out.notify("step_started", step.spec.title, step.id)
    return out.decision()


def _on_skip(run: Run, event: Skip, now: datetime, ids: IdFactory) -> Decision:
    step = run.current_step
    if run.state is not RunState.PAUSED or step is None:
        return refuse(run, now, event.actor, "skip",
                       Refusal(code=RefusalCode.STALE, message=f"Run {run.id} is {run.state.value}, not paused."))
    if not step.spec.skippable:
        return refuse(run, now, event.actor, "skip",
                       Refusal(code=RefusalCode.NOT_ALLOWED, message=f"Step {step.id} cannot be skipped."))
    refusal = authorize_approval(run, event.actor)
    if refusal is not None:
        return refuse(run, now, event.actor, "skip", refusal)
    out = Outcome(run, now, event.actor.id)
    _advance(out, ids, finished=StepState.SKIPPED, detail=f"skipped by {event.actor.id}")
    return out.decision()


def _require_current(run: Run, step_id: str, *states: RunState, phase: StepPhase | None = None) -> Step:
    """Worker results must be for the current step, in a state (and phase) that expects them: a
    stale result (say an action reported while the step is back at its gate) changes nothing."""
    step = run.current_step
    if step is None or step.id != step_id or run.state not in states:
        raise IllegalTransition(run.state, Trigger.PROGRESS)
    if phase is not None and run.state is RunState.RUNNING and step.phase is not phase:
        raise IllegalTransition(run.state, Trigger.PROGRESS)
    return step


def _on_gate(run: Run, event: GateChecked, now: datetime) -> Decision:
    out = Outcome(run, now, "worker")
    if run.state is RunState.AWAITING_APPROVAL:
        step = _require_current(run, event.step_id, RunState.AWAITING_APPROVAL)
        checked = step.model_copy(update={"findings": event.findings, "detail": event.reason or "gate checked"})
        out.move(Trigger.GATE_ADVISORY, step=checked, detail=event.reason or "gate checked")
        return out.decision()
    step = _require_current(run, event.step_id, RunState.RUNNING)
    if step.phase is not StepPhase.GATE:
        raise IllegalTransition(run.state, Trigger.GATE_OK)
    if not event.ok:
        out.run = run.model_copy(update={"steps": run.with_step(run.current, step.model_copy(
            update={"findings": event.findings}))})
        _pause(out, Trigger.GATE_FAILED, f"Health gate failed before {step.spec.title}: {event.reason}")
        return out.decision()
    out.move(Trigger.GATE_OK, step=step.model_copy(update={"phase": StepPhase.ACT, "findings": event.findings}),
             detail=event.reason or "gate ok")
    return out.decision()


def _on_observed(run: Run, event: Observed, now: datetime) -> Decision:
    step = _require_current(run, event.step_id, RunState.RUNNING, phase=StepPhase.ACT)
    out = Outcome(run, now, "worker")
    out.move(Trigger.OBSERVED, step=step.model_copy(update={"observed": {**step.observed, **event.data}}))
    return out.decision()


def _on_applied(run: Run, event: ActionApplied, now: datetime) -> Decision:
    step = _require_current(run, event.step_id, RunState.RUNNING, phase=StepPhase.ACT)
    out = Outcome(run, now, "worker")
    out.move(Trigger.APPLIED, step=step.model_copy(update={
        "state": StepState.WAITING, "applied": True, "detail": event.detail or step.detail}),
        detail=event.detail)
    return out.decision()


def _on_failed(run: Run, event: ActionFailed, now: datetime) -> Decision:
    step = _require_current(run, event.step_id, RunState.RUNNING, phase=StepPhase.ACT)
    out = Outcome(run, now, "worker")
    if event.permanent:
        failed = step.model_copy(update={"state": StepState.FAILED, "detail": event.error, "finished_at": now})
        if stop_on_failure(out, failed, event.error):
            return out.decision()
        out.move(Trigger.ACTION_FAILED_PERMANENT, step=failed, finished_at=now,
                 outcome=f"{step.spec.title} failed: {event.error}", detail=event.error)
        finish(out)
        return out.decision()
    _pause(out, Trigger.ACTION_FAILED, f"{step.spec.title} failed: {event.error}")
    return out.decision()


def _on_condition(run: Run, event: ConditionChecked, now: datetime, ids: IdFactory) -> Decision:
    step = _require_current(run, event.step_id, RunState.RUNNING, RunState.WAITING)
    out = Outcome(run, now, "worker")
    if run.state is RunState.RUNNING and step.phase is not StepPhase.ACT:
        raise IllegalTransition(run.state, Trigger.PROGRESS)
    if event.done:
        _advance(out, ids, finished=StepState.DONE, detail=event.detail)
        return out.decision()
    if event.failure is not None:
        _pause(out, Trigger.CONDITION_FAILED, f"{step.spec.title}: {event.failure}")
        return out.decision()
    if event.detail == step.detail:
        return Decision(run=run)  # nothing new: no write, no audit line
    out.move(Trigger.PROGRESS, step=step.model_copy(update={"detail": event.detail}), detail=event.detail)
    out.notify("step_progress", event.detail, step.id)
    return out.decision()


def _on_tick(run: Run, now: datetime) -> Decision:
    out = Outcome(run, now, "clock")
    step = run.current_step
    if run.state is RunState.AWAITING_APPROVAL and run.approval is not None and now >= run.approval.expires_at:
        # Fails closed: an unanswered approval pauses the run; it never continues by itself.
        _pause(out, Trigger.APPROVAL_EXPIRED,
               f"Approval for {step.spec.title if step else 'the step'} expired unanswered at "
               f"{run.approval.expires_at:%H:%M:%S} UTC; the run is paused.")
        return out.decision()
    if (run.state in (RunState.RUNNING, RunState.WAITING) and step is not None and step.deadline is not None
            and now >= step.deadline):
        _pause(out, Trigger.TIMEOUT,
               f"{step.spec.title} did not finish within {step.spec.timeout_s:.0f} s"
               + (f" (last seen: {step.detail})" if step.detail else ""))
        return out.decision()
    return Decision(run=run)
