"""decide() on approvals: who may approve, four-eyes, N-of-M, stale buttons and deadlines (docs/design.md §3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from runbooks.engine.approvals import RefusalCode
from runbooks.engine.decide import decide
from runbooks.engine.events import (
    ConditionChecked,
    GateChecked,
    Notify,
    Retry,
    Tick,
)
from runbooks.engine.models import RunState, StepPhase, StepState
from runbooks.engine.pending import pending_work
from runbooks.engine.transitions import IllegalTransition

from .builders import (
    APPROVER,
    APPROVER_2,
    GROUP_MEMBER,
    OUTSIDER,
    REQUESTER,
    Driver,
    dump,
    finished_run,
    paused,
    policy,
    running,
    spec,
    started,
)

S = RunState


# -- approval refusals ----------------------------------------------------------------------------

def _double_click() -> tuple[Driver, dict[str, Any]]:
    driver = started()
    nonce = driver.run.approval.nonce  # type: ignore[union-attr]
    driver.approve(APPROVER)
    return driver, {"actor": APPROVER, "nonce": nonce, "step_id": "b0"}


def _double_click_partial() -> tuple[Driver, dict[str, Any]]:
    driver = started(pol=policy(approvals_required=2))
    driver.approve(APPROVER)
    return driver, {"actor": APPROVER}


def _finished() -> tuple[Driver, dict[str, Any]]:
    driver = finished_run()
    return driver, {"actor": APPROVER, "step_id": "b0", "nonce": "n1"}


REFUSALS: list[tuple[str, Callable[[], tuple[Driver, dict[str, Any]]], RefusalCode]] = [
    ("not an approver", lambda: (started(), {"actor": OUTSIDER}), RefusalCode.NOT_APPROVER),
    ("requester under four-eyes", lambda: (started(), {"actor": REQUESTER}), RefusalCode.SELF_APPROVAL),
    ("stale nonce", lambda: (started(), {"nonce": "n0"}), RefusalCode.STALE),
    ("wrong step id", lambda: (started(), {"step_id": "b1"}), RefusalCode.STALE),
    ("plan hash mismatch", lambda: (started(), {"plan_hash": "0123456789abcdef"}), RefusalCode.PLAN_CHANGED),
    ("double click, step already running", _double_click, RefusalCode.STALE),
    ("double click, N-of-M", _double_click_partial, RefusalCode.ALREADY_APPROVED),
    ("approval on a paused run", lambda: (paused(), {"nonce": "n1", "step_id": "b0"}), RefusalCode.STALE),
    ("approval on a finished run", _finished, RefusalCode.FINISHED),
]


@pytest.mark.parametrize(("name", "setup", "code"), REFUSALS, ids=[c[0] for c in REFUSALS])
def test_refused_approval_returns_same_run_and_one_audit_entry(
    name: str, setup: Callable[[], tuple[Driver, dict[str, Any]]], code: RefusalCode
) -> None:
    """A refused approval returns the same run, a coded refusal, no effects and exactly one approve_refused entry."""
    driver, click = setup()
    before_run, before = driver.run, dump(driver.run)
    driver.clock.advance(5)
    decision = driver.approve(**click)
    assert decision.run is before_run
    assert dump(decision.run) == before
    assert decision.refusal is not None
    assert decision.refusal.code is code
    assert decision.refusal.message
    assert decision.effects == ()
    assert not decision.changed
    [entry] = decision.audit
    actor = click.get("actor", APPROVER)
    assert entry.action == "approve_refused"
    assert entry.actor == actor.id
    assert entry.from_state == entry.to_state == before_run.state
    assert entry.at == driver.clock.now
    assert entry.detail.startswith(code.value)


def test_four_eyes_off_allows_self_approval() -> None:
    """With four_eyes=False the requester may approve their own run's step."""
    driver = started(pol=policy(four_eyes=False))
    decision = driver.approve(REQUESTER)
    assert decision.refusal is None
    assert driver.run.state is S.RUNNING


def test_requester_outside_the_approver_list_is_refused_even_without_four_eyes() -> None:
    """Turning four-eyes off does not make the requester an approver: the approver list still applies."""
    driver = started(pol=policy(four_eyes=False), requested_by=OUTSIDER.id)
    decision = driver.approve(OUTSIDER)
    assert decision.refusal is not None and decision.refusal.code is RefusalCode.NOT_APPROVER
    assert driver.run.state is S.AWAITING_APPROVAL


# -- N-of-M ---------------------------------------------------------------------------------------

def test_two_of_m_needs_two_distinct_approvers() -> None:
    """2 required: the first approval keeps awaiting (partial), the same user again is refused, a second one runs it."""
    driver = started(pol=policy(approvals_required=2))
    assert driver.run.approval is not None and driver.run.approval.required == 2

    first = driver.approve(APPROVER)
    assert first.refusal is None
    assert driver.run.state is S.AWAITING_APPROVAL
    assert driver.run.approval is not None
    assert [a.by for a in driver.run.approval.approvals] == [APPROVER.id]
    assert [e.action for e in first.audit] == ["approve_partial"]
    assert "1 of 2" in first.audit[0].detail

    again = driver.approve(APPROVER)
    assert again.refusal is not None and again.refusal.code is RefusalCode.ALREADY_APPROVED
    assert driver.run.state is S.AWAITING_APPROVAL

    second = driver.approve(GROUP_MEMBER)
    assert second.refusal is None
    assert driver.run.state is S.RUNNING
    assert APPROVER.id in second.audit[0].detail and GROUP_MEMBER.id in second.audit[0].detail


def test_n_of_m_requester_does_not_count_under_four_eyes() -> None:
    """Under four-eyes the requester's click is refused and does not count toward N."""
    driver = started(pol=policy(approvals_required=2))
    driver.approve(APPROVER)
    refused = driver.approve(REQUESTER)
    assert refused.refusal is not None and refused.refusal.code is RefusalCode.SELF_APPROVAL
    assert driver.run.approval is not None and len(driver.run.approval.approvals) == 1


def test_step_can_require_more_approvals_than_the_policy() -> None:
    """A step's own approvals_required overrides the cluster policy's number."""
    driver = started(specs=[spec("b0", approvals_required=2), spec("b1")])
    driver.approve(APPROVER)
    assert driver.run.state is S.AWAITING_APPROVAL
    driver.approve(APPROVER_2)
    assert driver.run.state is S.RUNNING
    driver.finish_step()
    assert driver.run.approval is not None and driver.run.approval.required == 1


# -- deadlines ------------------------------------------------------------------------------------

def test_tick_before_approval_deadline_changes_nothing() -> None:
    """A Tick before the approval expires returns the same run with no audit and no effects."""
    driver = started()
    driver.clock.advance(599)
    decision = driver.send(Tick())
    assert driver.run.state is S.AWAITING_APPROVAL
    assert decision.audit == () and decision.effects == () and not decision.changed


def test_expired_approval_fails_closed_and_needs_a_human_retry() -> None:
    """A Tick after expires_at pauses the run; it stays paused through ticks and stale clicks until a human Retry."""
    driver = started()
    driver.clock.advance(601)
    decision = driver.send(Tick())
    run = driver.run
    assert run.state is S.PAUSED
    assert run.approval is None
    assert run.steps[0].state is StepState.PAUSED
    assert run.pause_reason is not None and "expired" in run.pause_reason
    [entry] = decision.audit
    assert (entry.action, entry.actor, entry.from_state, entry.to_state) == (
        "approval_expired", "clock", S.AWAITING_APPROVAL, S.PAUSED)

    for _ in range(3):
        driver.clock.advance(3600)
        assert driver.send(Tick()).audit == ()
    late = driver.approve(APPROVER, nonce="n1", step_id="b0")
    assert late.refusal is not None and late.refusal.code is RefusalCode.STALE
    with pytest.raises(IllegalTransition):
        decide(driver.run, GateChecked(step_id="b0", ok=True), driver.clock.now, driver.ids)
    assert driver.run.state is S.PAUSED
    assert pending_work(driver.run) == []

    driver.send(Retry(actor=APPROVER))
    assert driver.run.state is S.RUNNING
    assert driver.run.steps[0].phase is StepPhase.GATE


def test_expiry_at_exactly_the_deadline_pauses() -> None:
    """The deadline is inclusive: a Tick at expires_at already pauses the run."""
    driver = started()
    driver.clock.advance(600)
    driver.send(Tick())
    assert driver.run.state is S.PAUSED


def test_expired_n_of_m_retry_asks_again_with_a_new_nonce() -> None:
    """Retrying an expired 2-of-M approval asks again with a fresh nonce and forgets the partial approvals."""
    driver = started(pol=policy(approvals_required=2))
    driver.approve(APPROVER)
    driver.clock.advance(601)
    driver.send(Tick())
    assert driver.run.state is S.PAUSED
    driver.send(Retry(actor=APPROVER_2))
    assert driver.run.state is S.AWAITING_APPROVAL
    assert driver.run.approval is not None
    assert driver.run.approval.nonce == "n2"
    assert driver.run.approval.approvals == ()
    assert driver.approve(APPROVER, nonce="n1").refusal is not None


def test_approval_after_its_deadline_is_not_accepted() -> None:
    """An approval clicked after expires_at does not run the step, even if the expiry Tick has not fired yet."""
    driver = started()
    driver.clock.advance(601)
    decision = driver.approve(APPROVER)
    assert decision.refusal is not None or driver.run.state is S.PAUSED
    assert driver.run.state is not S.RUNNING


def test_step_timeout_pauses_with_reason() -> None:
    """A Tick past a running step's deadline pauses the run with a reason naming the timeout."""
    driver = running()
    driver.clock.advance(299)
    assert driver.send(Tick()).audit == ()
    assert driver.run.state is S.RUNNING
    driver.clock.advance(1)
    decision = driver.send(Tick())
    assert driver.run.state is S.PAUSED
    assert driver.run.pause_reason is not None
    assert "did not finish within 300 s" in driver.run.pause_reason
    assert [e.action for e in decision.audit] == ["timeout"]
    assert any(isinstance(e, Notify) and e.event == "step_paused" for e in decision.effects)


def test_waiting_step_timeout_reports_last_progress() -> None:
    """A waiting step that times out pauses with the last progress detail in the reason."""
    driver = running()
    driver.to_waiting()
    driver.send(ConditionChecked(step_id="b0", done=False, detail="pod not Ready"))
    driver.clock.advance(301)
    driver.send(Tick())
    assert driver.run.state is S.PAUSED
    assert "last seen: pod not Ready" in (driver.run.pause_reason or "")
