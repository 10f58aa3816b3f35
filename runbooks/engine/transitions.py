"""The run state machine as data: every legal (state, trigger) -> state pair lives in this table.

Like h11's ``_state.py``, every rule that moves a run lives here, and nowhere else. A missing
pair is an illegal transition: ``transition()`` raises and the caller changes nothing. The state
diagram in docs/engine.md is generated from this table (``python -m runbooks.engine.diagram``).
"""

from __future__ import annotations

from enum import StrEnum

from runbooks.engine.models import RunState


class Trigger(StrEnum):
    START_AWAITING = "start_awaiting"  # the first step needs approval
    START_RUNNING = "start_running"  # the first step runs without approval
    APPROVE_PARTIAL = "approve_partial"  # an approval that does not yet meet N-of-M
    APPROVE = "approve"
    GATE_ADVISORY = "gate_advisory"  # the gate re-checked while the step waits for approval
    GATE_OK = "gate_ok"
    GATE_FAILED = "gate_failed"
    OBSERVED = "observed"  # the world before acting is recorded (e.g. the pod's uid)
    APPLIED = "applied"
    PROGRESS = "progress"
    ACTION_FAILED = "action_failed"
    ACTION_FAILED_PERMANENT = "action_failed_permanent"
    CONDITION_FAILED = "condition_failed"
    TIMEOUT = "timeout"
    APPROVAL_EXPIRED = "approval_expired"
    NEXT_AWAITING = "next_awaiting"  # a step finished; the next one needs approval
    NEXT_RUNNING = "next_running"
    COMPLETE = "complete"  # the last step finished
    ABORT = "abort"
    ABORT_DEFERRED = "abort_deferred"  # abort asked while an action is in flight: stop after it
    ABORT_AT_SAFE_POINT = "abort_at_safe_point"  # the in-flight step finished; honour the abort
    ABORT_TO_CLEANUP = "abort_to_cleanup"  # abort: the steps left are not run, the cleanup steps are
    CLEANUP_NEXT = "cleanup_next"  # a step finished while the run is stopping: the next cleanup step
    FAIL_TO_CLEANUP = "fail_to_cleanup"  # a step failed for good: the cleanup steps run, then FAILED
    FAIL_AFTER_CLEANUP = "fail_after_cleanup"  # the last cleanup step after a failure finished
    RETRY_AWAITING = "retry_awaiting"
    RETRY_RUNNING = "retry_running"
    RETRY_WAITING = "retry_waiting"  # the action was applied already: wait for it again


class IllegalTransition(Exception):
    def __init__(self, state: RunState, trigger: Trigger) -> None:
        super().__init__(f"a run that is {state.value} cannot {trigger.value.replace('_', ' ')}")
        self.state = state
        self.trigger = trigger


S = RunState
T = Trigger

_STEP_FINISHED = {
    T.NEXT_AWAITING: S.AWAITING_APPROVAL,
    T.NEXT_RUNNING: S.RUNNING,
    T.COMPLETE: S.SUCCEEDED,
    T.ABORT_AT_SAFE_POINT: S.ABORTED,
    T.CLEANUP_NEXT: S.RUNNING,
    T.FAIL_AFTER_CLEANUP: S.FAILED,
}

TRANSITIONS: dict[RunState, dict[Trigger, RunState]] = {
    S.PLANNED: {
        T.START_AWAITING: S.AWAITING_APPROVAL,
        T.START_RUNNING: S.RUNNING,
        T.COMPLETE: S.SUCCEEDED,  # a plan with nothing to do
        T.ABORT: S.ABORTED,
    },
    S.AWAITING_APPROVAL: {
        T.APPROVE_PARTIAL: S.AWAITING_APPROVAL,
        T.APPROVE: S.RUNNING,
        T.GATE_ADVISORY: S.AWAITING_APPROVAL,
        T.APPROVAL_EXPIRED: S.PAUSED,
        T.ABORT: S.ABORTED,
        T.ABORT_TO_CLEANUP: S.RUNNING,
    },
    S.RUNNING: {
        T.GATE_OK: S.RUNNING,
        T.GATE_FAILED: S.PAUSED,
        T.OBSERVED: S.RUNNING,
        T.PROGRESS: S.RUNNING,
        T.APPLIED: S.WAITING,
        T.ACTION_FAILED: S.PAUSED,
        T.ACTION_FAILED_PERMANENT: S.FAILED,
        T.FAIL_TO_CLEANUP: S.RUNNING,
        T.ABORT_TO_CLEANUP: S.RUNNING,
        T.CONDITION_FAILED: S.PAUSED,
        T.TIMEOUT: S.PAUSED,
        T.ABORT: S.ABORTED,
        T.ABORT_DEFERRED: S.RUNNING,
        **_STEP_FINISHED,
    },
    S.WAITING: {
        T.PROGRESS: S.WAITING,
        T.CONDITION_FAILED: S.PAUSED,
        T.TIMEOUT: S.PAUSED,
        T.ABORT_DEFERRED: S.WAITING,
        T.ABORT_TO_CLEANUP: S.RUNNING,  # only a step marked interruptible, with a cleanup step after it
        **_STEP_FINISHED,
    },
    S.PAUSED: {
        T.RETRY_AWAITING: S.AWAITING_APPROVAL,
        T.RETRY_RUNNING: S.RUNNING,
        T.RETRY_WAITING: S.WAITING,
        T.ABORT: S.ABORTED,
        T.ABORT_TO_CLEANUP: S.RUNNING,
        **{t: s for t, s in _STEP_FINISHED.items() if t is not T.ABORT_AT_SAFE_POINT},  # skip
    },
    S.SUCCEEDED: {},
    S.FAILED: {},
    S.ABORTED: {},
}


def transition(state: RunState, trigger: Trigger) -> RunState:
    """The state after ``trigger``; raises IllegalTransition (and nothing changes) if not allowed."""
    target = TRANSITIONS[state].get(trigger)
    if target is None:
        raise IllegalTransition(state, trigger)
    return target


def is_legal(state: RunState, trigger: Trigger) -> bool:
    return trigger in TRANSITIONS[state]
