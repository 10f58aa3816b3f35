"""What the approval rules tell people, word for word, and what they leave on the run: the refusal a
clicker reads, the card's events, the pause reason of an expired request, and the audit lines."""

from __future__ import annotations

from typing import Any

import pytest

from runbooks.engine.approvals import RefusalCode, check_approval
from runbooks.engine.events import Notify, Retry, Tick

from .builders import APPROVER, APPROVER_2, REQUESTER, policy, running, started


def _notes(decision: Any) -> list[tuple[str, str, str | None]]:
    return [(n.event, n.text, n.step_id) for n in decision.effects if isinstance(n, Notify)]


@pytest.mark.parametrize(("click", "code", "message"), [
    ({"step_id": "b1"}, RefusalCode.STALE, "This step is no longer waiting for approval."),
    ({"nonce": "n0"}, RefusalCode.STALE,
     "This approval button is stale: the step was asked again since. Use the latest card."),
    ({"plan_hash": "0123456789abcdef"}, RefusalCode.PLAN_CHANGED,
     "The plan changed since this was shown: review the new plan and approve it again."),
    ({"actor": REQUESTER}, RefusalCode.SELF_APPROVAL,
     "Four-eyes policy: the person who requested a run cannot approve its steps."),
])
def test_each_refusal_says_what_is_wrong(click: dict[str, Any], code: RefusalCode, message: str) -> None:
    driver = started()
    decision = driver.approve(**click)
    assert decision.refusal is not None and (decision.refusal.code, decision.refusal.message) == (code, message)
    [entry] = decision.audit
    assert (entry.action, entry.step_id, entry.detail) == ("approve_refused", "b0", f"{code.value}: {message}")


def test_a_second_click_of_the_same_approver_is_named_as_such() -> None:
    driver = started(pol=policy(approvals_required=2))
    driver.approve(APPROVER)
    again = driver.approve(APPROVER)
    assert again.refusal is not None and again.refusal.message == "You already approved this step."


def test_an_expired_click_says_when_and_what_happens_next() -> None:
    driver = started()
    driver.clock.advance(600)
    refusal = driver.approve(APPROVER).refusal
    assert refusal is not None and refusal.message == (
        "This approval request expired at 12:10:00 UTC, so the run pauses; an approver can resume it once the "
        "cluster has been looked at again.")


def test_a_run_no_longer_awaiting_approval_refuses_a_request_it_still_carries() -> None:
    """Fail closed on an inconsistent record: a running run that still carries its request approves nothing."""
    driver = running()
    request = started().run.approval
    stale = driver.run.model_copy(update={"approval": request})
    assert request is not None
    refusal = check_approval(stale, APPROVER, step_id=request.step_id, nonce=request.nonce,
                             plan_hash=request.plan_hash, now=driver.clock.now)
    assert refusal is not None and refusal.code is RefusalCode.STALE


def test_asking_and_approving_tell_the_card_and_the_audit() -> None:
    """Asked: the card is told which step waits; approved by two: the audit names both; started: the card
    is told which step runs."""
    first = started(pol=policy(approvals_required=2))
    assert first.last is not None and _notes(first.last)[-1] == (
        "step_awaiting_approval", "Waiting for approval: Restart broker b0", "b0")
    step = first.run.steps[0]
    assert (step.phase, step.detail) == (None, "")
    first.approve(APPROVER)
    done = first.approve(APPROVER_2)
    assert done.audit[0].detail == f"approved by {APPROVER.id}, {APPROVER_2.id}"
    assert _notes(done) == [("step_started", "Restart broker b0", "b0")]


def test_a_step_without_approval_starts_with_no_request_left_on_the_run() -> None:
    """After an approved step, a step that needs none starts at once: no request, no pause reason."""
    driver = started(n_steps=2)
    driver.run = driver.run.model_copy(update={"steps": (
        driver.run.steps[0], driver.run.steps[1].model_copy(update={"spec": driver.run.steps[1].spec.model_copy(
            update={"needs_approval": False})}))})
    driver.approve(APPROVER)
    decision = driver.finish_step()
    assert driver.run.current == 1 and driver.run.approval is None and driver.run.pause_reason is None
    assert ("step_started", "Restart broker b1", "b1") in _notes(decision)


def test_expiry_pause_reason_and_asking_again_clears_it() -> None:
    """The pause says which step's approval expired and when; asking again (2-of-M retry) clears it."""
    driver = started(pol=policy(approvals_required=2))
    driver.clock.advance(600)
    driver.send(Tick())
    assert driver.run.pause_reason == "Approval for Restart broker b0 expired unanswered at 12:10:00 UTC; the run is " \
                                      "paused."
    driver.send(Retry(actor=APPROVER))
    assert driver.run.pause_reason is None
    step = driver.run.steps[0]
    assert (step.phase, step.detail) == (None, "")


def test_a_step_timeout_without_progress_says_only_the_timeout() -> None:
    driver = running()
    driver.clock.advance(300)
    driver.send(Tick())
    assert driver.run.pause_reason == "Restart broker b0 did not finish within 300 s"
