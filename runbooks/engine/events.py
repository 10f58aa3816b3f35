"""What can happen to a run (events in) and what the worker must do about it (effects out)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from runbooks.engine.models import Actor


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)


class Start(_Event):
    kind: Literal["start"] = "start"


class Approve(_Event):
    kind: Literal["approve"] = "approve"
    actor: Actor
    step_id: str
    nonce: str
    plan_hash: str


class Abort(_Event):
    kind: Literal["abort"] = "abort"
    actor: Actor
    reason: str = ""  # said in the outcome, e.g. the undo run that supersedes this one


class Retry(_Event):
    kind: Literal["retry"] = "retry"
    actor: Actor
    # The step a Retry button was shown for; None for a typed resume, which means the current step.
    step_id: str | None = None


class Skip(_Event):
    kind: Literal["skip"] = "skip"
    actor: Actor


class GateChecked(_Event):
    kind: Literal["gate_checked"] = "gate_checked"
    step_id: str
    ok: bool
    findings: tuple[str, ...] = ()
    reason: str = ""


class Observed(_Event):
    kind: Literal["observed"] = "observed"
    step_id: str
    data: dict[str, Any]


class ActionApplied(_Event):
    kind: Literal["action_applied"] = "action_applied"
    step_id: str
    detail: str = ""


class ActionFailed(_Event):
    kind: Literal["action_failed"] = "action_failed"
    step_id: str
    error: str
    permanent: bool = False


class ConditionChecked(_Event):
    kind: Literal["condition_checked"] = "condition_checked"
    step_id: str
    done: bool
    detail: str = ""
    failure: str | None = None  # a hard failure the step cannot wait out (pauses the run)


class Tick(_Event):
    """Time passed: the engine checks approval and step deadlines against ``now``."""

    kind: Literal["tick"] = "tick"


Event = Annotated[
    Start | Approve | Abort | Retry | Skip | GateChecked | Observed | ActionApplied | ActionFailed
    | ConditionChecked | Tick,
    Field(discriminator="kind"),
]


class _Effect(BaseModel):
    model_config = ConfigDict(frozen=True)


class CheckGate(_Effect):
    """Check the step's health gate. ``advisory`` while the step waits for approval: the result
    is shown to the approver but does not move the run."""

    kind: Literal["check_gate"] = "check_gate"
    step_id: str
    advisory: bool = False


class Observe(_Effect):
    kind: Literal["observe"] = "observe"
    step_id: str


class ApplyAction(_Effect):
    """Apply the step's action. The worker asks the step's done-check first: steps are idempotent."""

    kind: Literal["apply_action"] = "apply_action"
    step_id: str


class CheckCondition(_Effect):
    kind: Literal["check_condition"] = "check_condition"
    step_id: str


class ReleaseLock(_Effect):
    kind: Literal["release_lock"] = "release_lock"


class Notify(_Effect):
    """Something a human should see: updates the run card, a line in the console or thread."""

    kind: Literal["notify"] = "notify"
    event: str  # run_started, step_awaiting_approval, step_started, step_done, step_paused, run_finished, ...
    step_id: str | None = None
    text: str = ""


Effect = CheckGate | Observe | ApplyAction | CheckCondition | ReleaseLock | Notify
