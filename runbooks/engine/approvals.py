"""Who may approve, retry, skip or abort a run: pure checks over the run's snapshotted policy.

A refusal is a value with a code and a sentence a human can act on; the caller audits it and
answers the clicker privately. Nothing here mutates a run.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from runbooks.engine.models import Actor, ApprovalPolicy, Run, RunState


class RefusalCode(StrEnum):
    NOT_APPROVER = "not_approver"
    SELF_APPROVAL = "self_approval"
    STALE = "stale"
    PLAN_CHANGED = "plan_changed"
    ALREADY_APPROVED = "already_approved"
    NOT_ALLOWED = "not_allowed"
    FINISHED = "finished"
    # a command refused before it reads or writes anything (runbooks.engine.access)
    NOT_REQUESTER = "not_requester"
    NOT_VIEWER = "not_viewer"
    WRONG_CHANNEL = "wrong_channel"


class Refusal(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: RefusalCode
    message: str


def is_approver(run: Run, actor: Actor) -> bool:
    return policy_approver(run.policy, actor)


def policy_approver(policy: ApprovalPolicy, actor: Actor) -> bool:
    """An approver of ``policy``, by user id or user group (also judges rebalance cards, which have no run)."""
    return actor.id in policy.approvers or any(g in policy.approver_groups for g in actor.groups)


def authorize_approval(run: Run, actor: Actor) -> Refusal | None:
    """May ``actor`` approve (or retry, or skip) steps of ``run``?"""
    if not is_approver(run, actor):
        return Refusal(
            code=RefusalCode.NOT_APPROVER,
            message=f"{actor.id} is not an approver for cluster {run.cluster}.",
        )
    if run.policy.four_eyes and actor.id == run.requested_by:
        return Refusal(
            code=RefusalCode.SELF_APPROVAL,
            message="Four-eyes policy: the person who requested a run cannot approve its steps.",
        )
    return None


def authorize_abort(run: Run, actor: Actor) -> Refusal | None:
    """The requester and any approver may abort; stopping is always allowed to those who may act."""
    if actor.id == run.requested_by or is_approver(run, actor):
        return None
    return Refusal(
        code=RefusalCode.NOT_ALLOWED,
        message=f"Only the requester or an approver of {run.cluster} may abort run {run.id}.",
    )


def check_approval(
    run: Run, actor: Actor, *, step_id: str, nonce: str, plan_hash: str, now: datetime
) -> Refusal | None:
    """Every check an approval click must pass, in the order a user can make sense of."""
    if run.state.terminal:
        return Refusal(code=RefusalCode.FINISHED, message=f"Run {run.id} is already {run.state.value}.")
    request = run.approval
    if run.state is not RunState.AWAITING_APPROVAL or request is None or request.step_id != step_id:
        return Refusal(code=RefusalCode.STALE, message="This step is no longer waiting for approval.")
    if request.nonce != nonce:
        return Refusal(
            code=RefusalCode.STALE,
            message="This approval button is stale: the step was asked again since. Use the latest card.",
        )
    if now >= request.expires_at:
        # Fails closed even when the click beats the clock's tick: a late approval approves nothing.
        return Refusal(
            code=RefusalCode.STALE,
            message=f"This approval request expired at {request.expires_at:%H:%M:%S} UTC, so the run pauses; "
            "an approver can resume it once the cluster has been looked at again.",
        )
    if plan_hash != run.plan_hash or request.plan_hash != run.plan_hash:
        return Refusal(
            code=RefusalCode.PLAN_CHANGED,
            message="The plan changed since this was shown: review the new plan and approve it again.",
        )
    refusal = authorize_approval(run, actor)
    if refusal is not None:
        return refusal
    if any(a.by == actor.id for a in request.approvals):
        return Refusal(code=RefusalCode.ALREADY_APPROVED, message="You already approved this step.")
    return None


def check_button_step(run: Run, step_id: str | None, *, button: str = "Retry") -> Refusal | None:
    """A button offered for a paused step (Retry, Undo) acts on whatever step the run is paused on
    now: refuse one shown for another step (the pause it was offered for is over). ``step_id``
    None (a typed command) means the current step."""
    current = run.current_step
    if step_id is None or run.state is not RunState.PAUSED or current is None or current.id == step_id:
        return None
    return Refusal(code=RefusalCode.STALE, message=f"This {button} button is for step {step_id}, but run {run.id} "
                                                   f"is now paused on {current.id}: use the latest card.")
