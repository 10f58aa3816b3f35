"""How a run ends early: an abort, or a step that failed for good, and the cleanup steps that run
either way before the run ends.

A cleanup step (``StepSpec.cleanup``) is the one compensation that runs by itself, for the harm
that is in leaving something in place (a replication throttle, a reassignment in flight). The rules:

- An abort when nothing is in flight, on a run that has started any step: the current step and
  every step up to the next cleanup step are marked ABORTED (not run), and the cleanup steps run in
  order, without approval; the run is ABORTED once the last has finished. An abort while an action
  is in flight waits for it (``ABORT_DEFERRED``) and then takes the same path.
- A second abort while the cleanup steps run (nothing in flight) ends the run at once, and its
  outcome names the cleanup steps that did not run: a human may always stop the bot, and is told
  what was left behind.
- A step that fails for good (``ActionFailed(permanent=True)``) runs the cleanup steps too, and the
  run ends FAILED, with the failure as its outcome.
- A cleanup step that fails pauses the run like any step: Retry runs it again, Abort ends the run.
- A run that has not started any step (still PLANNED, or waiting for its first approval) has done
  nothing to clean up: an abort ends it at once.
"""

from __future__ import annotations

from runbooks.engine.models import Run, RunState, Step, StepState
from runbooks.engine.outcome import Outcome, finish, started
from runbooks.engine.transitions import Trigger

# ``Run.abort_requested_by`` when the run stops because a step failed for good, not by a person.
STOPPED_BY_FAILURE = "worker"
_NOT_RUN = (StepState.DONE, StepState.SKIPPED, StepState.ABORTED, StepState.FAILED)


def next_cleanup(run: Run, start: int) -> int | None:
    """The first cleanup step at or after ``start`` that is still to run."""
    for index in range(start, len(run.steps)):
        step = run.steps[index]
        if step.spec.cleanup and step.state not in _NOT_RUN:
            return index
    return None


def has_started(run: Run) -> bool:
    """Whether any step has been started: before that, the run changed nothing on the cluster."""
    return any(s.attempt > 0 for s in run.steps)


def interrupted(run: Run) -> bool:
    """Whether the run was cut short: a step was aborted (or not run because of an abort) or failed."""
    return any(s.state in (StepState.ABORTED, StepState.FAILED) for s in run.steps)


def cleaning_up(run: Run) -> bool:
    """Whether the run is already being stopped and running its cleanup steps: a further abort
    then ends it at once."""
    step = run.current_step
    return run.abort_requested_by is not None and (interrupted(run) or (step is not None and step.spec.cleanup))


def cleanup_left(run: Run) -> list[str]:
    return [s.spec.title for s in run.steps if s.spec.cleanup and s.state not in (StepState.DONE, StepState.SKIPPED)]


def begin_cleanup(out: Outcome, trigger: Trigger, *, by: str, detail: str) -> bool:
    """Stop the run's normal course and run its cleanup steps, if it has any to run and has started.
    The current step, unless finished, and the steps before the cleanup step are marked ABORTED."""
    run = out.run
    target = next_cleanup(run, run.current)
    if target is None or not has_started(run):
        return False
    _enter_cleanup(out, run.current, target, trigger, abort_requested_by=by, detail=detail)
    out.notify("cleanup_started", f"{_who(by)}: running the cleanup steps before the run ends "
               f"({', '.join(cleanup_left(out.run))}).", out.run.steps[target].id)
    return True


def _enter_cleanup(out: Outcome, start: int, target: int, trigger: Trigger, *, detail: str, **changes: object) -> None:
    """Mark the steps from ``start`` up to the cleanup step ``target`` ABORTED (those not finished)
    and start the cleanup step, without approval."""
    steps = list(out.run.steps)
    for index in range(start, target):
        if steps[index].state not in _NOT_RUN:
            steps[index] = steps[index].model_copy(update={"state": StepState.ABORTED, "finished_at": out.now})
    out.run = out.run.model_copy(update={"steps": tuple(steps), "current": target})
    cleanup = out.run.steps[target]
    out.move(trigger, step=started(cleanup, out.now), approval=None, pause_reason=None, detail=detail, **changes)


def continue_cleanup(out: Outcome, index: int) -> None:
    """A step finished while the run is being stopped (``abort_requested_by`` set): run the next
    cleanup step, or end the run."""
    if begin_cleanup_at(out, index):
        return
    run = out.run
    by = run.abort_requested_by or ""
    if by == STOPPED_BY_FAILURE:
        out.move(Trigger.FAIL_AFTER_CLEANUP, finished_at=out.now, outcome=_with_cleanup(run.outcome or "", run),
                 detail="the cleanup steps ran after the failure")
    else:
        trigger = Trigger.ABORT if run.state is RunState.PAUSED else Trigger.ABORT_AT_SAFE_POINT
        stopped = f"Aborted by {by}." if _cleanup_done(run) else f"Aborted by {by} after the step in flight."
        out.move(trigger, detail=f"abort requested by {by}", finished_at=out.now, outcome=_with_cleanup(stopped, run))
    finish(out)


def begin_cleanup_at(out: Outcome, index: int) -> bool:
    """From the step finished just before ``index``: mark the steps up to the next cleanup step
    ABORTED and start that cleanup step. False when no cleanup step is left to run."""
    target = next_cleanup(out.run, index)
    if target is None:
        return False
    by = _who(out.run.abort_requested_by or "")
    _enter_cleanup(out, index, target, Trigger.CLEANUP_NEXT, detail=f"cleanup step, the run is stopping ({by})")
    out.notify("step_started", out.run.steps[target].spec.title, out.run.steps[target].id)
    return True


def stop_on_failure(out: Outcome, failed: Step, error: str) -> bool:
    """A step failed for good: if cleanup steps are left after it, mark it FAILED and run them; the
    run ends FAILED afterwards (``continue_cleanup``). False when there is nothing to clean up."""
    run = out.run
    if next_cleanup(run, run.current + 1) is None:
        return False
    out.run = run.model_copy(update={
        "steps": run.with_step(run.current, failed), "outcome": f"{failed.spec.title} failed: {error}"})
    out.move(Trigger.FAIL_TO_CLEANUP, abort_requested_by=STOPPED_BY_FAILURE, detail=error)
    out.notify("step_failed", f"{failed.spec.title} failed: {error}. Running the cleanup steps before the run "
               "ends.", failed.id)
    begin_cleanup_at(out, run.current + 1)
    return True


def end_without_cleanup(run: Run) -> str:
    """The outcome's tail for an abort that ends the run while cleanup steps are left."""
    left = cleanup_left(run)
    if not left or not has_started(run):
        return ""
    return f" Cleanup not done: {', '.join(left)}. Check the cluster by hand."


def _cleanup_done(run: Run) -> list[str]:
    return [s.spec.title for s in run.steps if s.spec.cleanup and s.state is StepState.DONE]


def _with_cleanup(text: str, run: Run) -> str:
    done = _cleanup_done(run)
    return f"{text.rstrip('.')}. Cleanup done: {', '.join(done)}." if done else text


def _who(by: str) -> str:
    return "A step failed for good" if by == STOPPED_BY_FAILURE else f"Aborted by {by}"


def stopping_line(run: Run, requester: str) -> str:
    """What the run card says while a run is being stopped; ``requester`` is
    ``run.abort_requested_by`` as the caller shows a person (a Slack mention, or the id)."""
    if cleaning_up(run):
        left = ", ".join(cleanup_left(run))
        if run.abort_requested_by == STOPPED_BY_FAILURE:
            return f"A step failed for good: running the cleanup steps before the run ends ({left})."
        return f"Aborted by {requester}: running the cleanup steps before the run ends ({left})."
    return f"Abort requested by {requester}: stopping after the step in flight."
