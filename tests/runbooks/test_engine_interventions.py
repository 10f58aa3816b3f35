"""decide() when people step in on a run: retry, skip and abort, with who may and when (docs/design.md §3)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from runbooks.engine.approvals import RefusalCode
from runbooks.engine.events import (
    Abort,
    ActionApplied,
    ApplyAction,
    CheckCondition,
    CheckGate,
    ConditionChecked,
    GateChecked,
    Notify,
    ReleaseLock,
    Retry,
    Skip,
    Tick,
)
from runbooks.engine.models import RunState, StepPhase, StepState
from runbooks.engine.pending import pending_work

from .builders import (
    APPROVER,
    APPROVER_2,
    GROUP_MEMBER,
    OUTSIDER,
    REQUESTER,
    Driver,
    assert_chain,
    effect_kinds,
    finished_run,
    make_run,
    paused,
    planned,
    running,
    spec,
    started,
)

S = RunState


# -- retry and skip -------------------------------------------------------------------------------

def test_retry_unapplied_step_regates() -> None:
    """Retry of a step whose action was never applied goes back to running at the gate, attempt 2, new deadline."""
    driver = paused()
    driver.clock.advance(50)
    decision = driver.send(Retry(actor=APPROVER))
    step = driver.run.steps[0]
    assert driver.run.state is S.RUNNING
    assert driver.run.pause_reason is None
    assert (step.phase, step.attempt) == (StepPhase.GATE, 2)
    assert step.deadline == driver.clock.now + timedelta(seconds=300)
    assert pending_work(driver.run) == [CheckGate(step_id="b0")]
    assert [e.action for e in decision.audit] == ["retry_running"]


def test_retry_applied_step_waits_again_with_a_renewed_deadline() -> None:
    """Retry of an applied step goes back to waiting with a renewed deadline and never re-applies the action."""
    driver = running()
    driver.to_waiting()
    driver.clock.advance(301)
    driver.send(Tick())
    assert driver.run.state is S.PAUSED
    driver.clock.advance(20)
    decision = driver.send(Retry(actor=APPROVER))
    step = driver.run.steps[0]
    assert driver.run.state is S.WAITING
    assert step.state is StepState.WAITING
    assert step.deadline == driver.clock.now + timedelta(seconds=300)
    assert pending_work(driver.run) == [CheckCondition(step_id="b0")]
    assert "apply_action" not in effect_kinds(decision)
    assert [e.action for e in decision.audit] == ["retry_waiting"]


@pytest.mark.parametrize(("actor", "code"), [
    (OUTSIDER, RefusalCode.NOT_APPROVER), (REQUESTER, RefusalCode.SELF_APPROVAL)], ids=["outsider", "requester"])
def test_retry_by_non_approver_is_refused(actor: Any, code: RefusalCode) -> None:
    """Retry needs an approver (four-eyes applies): others get a refusal and the run stays paused."""
    driver = paused()
    before = driver.run
    decision = driver.send(Retry(actor=actor))
    assert decision.run is before
    assert decision.refusal is not None and decision.refusal.code is code
    assert [e.action for e in decision.audit] == ["retry_refused"]


def test_retry_when_not_paused_is_refused() -> None:
    """Retry of a run that is not paused is refused as stale."""
    driver = running()
    decision = driver.send(Retry(actor=APPROVER))
    assert decision.refusal is not None and decision.refusal.code is RefusalCode.STALE
    assert driver.run.state is S.RUNNING


def test_skip_of_skippable_step_moves_on() -> None:
    """Skipping a paused skippable step marks it skipped and asks for the next step's approval."""
    driver = Driver(make_run(specs=[spec("b0", skippable=True), spec("b1"), spec("b2")]))
    driver.start()
    driver.approve()
    driver.send(GateChecked(step_id="b0", ok=False, reason="URP"))
    decision = driver.send(Skip(actor=APPROVER))
    assert driver.run.steps[0].state is StepState.SKIPPED
    assert driver.run.state is S.AWAITING_APPROVAL
    assert driver.run.current == 1
    assert driver.run.approval is not None and driver.run.approval.step_id == "b1"
    assert [e.action for e in decision.audit] == ["next_awaiting"]
    assert decision.audit[0].from_state is S.PAUSED


def test_skip_of_last_step_succeeds() -> None:
    """Skipping the last (skippable) step finishes the run as succeeded and releases the lock."""
    driver = running(1, specs=[spec("b0", skippable=True)])
    driver.send(GateChecked(step_id="b0", ok=False))
    decision = driver.send(Skip(actor=APPROVER_2))
    assert driver.run.state is S.SUCCEEDED
    assert ReleaseLock() in decision.effects


@pytest.mark.parametrize(("setup", "actor", "code"), [
    (paused, APPROVER, RefusalCode.NOT_ALLOWED),
    (lambda: _skippable_paused(), OUTSIDER, RefusalCode.NOT_APPROVER),
    (lambda: _skippable_paused(), REQUESTER, RefusalCode.SELF_APPROVAL),
    (running, APPROVER, RefusalCode.STALE),
], ids=["not skippable", "outsider", "requester", "not paused"])
def test_skip_refused(setup: Callable[[], Driver], actor: Any, code: RefusalCode) -> None:
    """Skip is only for skippable steps of a paused run, by an approver: otherwise refused with no change."""
    driver = setup()
    before = driver.run
    decision = driver.send(Skip(actor=actor))
    assert decision.run is before
    assert decision.refusal is not None and decision.refusal.code is code
    assert [e.action for e in decision.audit] == ["skip_refused"]


def _skippable_paused() -> Driver:
    driver = running(specs=[spec("b0", skippable=True), spec("b1")])
    driver.send(GateChecked(step_id="b0", ok=False))
    return driver


def test_skip_after_deferred_abort_honours_the_abort() -> None:
    """A deferred abort whose step then pauses is honoured by a skip: the run ends aborted, not an exception."""
    driver = running(specs=[spec("b0", skippable=True), spec("b1")])
    driver.to_waiting()
    driver.send(Abort(actor=APPROVER))
    driver.clock.advance(301)
    driver.send(Tick())
    assert driver.run.state is S.PAUSED
    decision = driver.send(Skip(actor=APPROVER))
    assert driver.run.state is S.ABORTED
    assert ReleaseLock() in decision.effects


# -- abort ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("setup", "actor"), [
    (planned, REQUESTER), (started, REQUESTER), (started, GROUP_MEMBER), (paused, APPROVER), (running, APPROVER),
], ids=["planned", "awaiting-by-requester", "awaiting-by-group", "paused", "running-gate"])
def test_abort_before_anything_in_flight_is_immediate(setup: Callable[[], Driver], actor: Any) -> None:
    """Abort with nothing in flight ends the run aborted at once, the step aborted, and releases the lock."""
    driver = setup()
    source = driver.run.state
    decision = driver.send(Abort(actor=actor))
    assert driver.run.state is S.ABORTED
    assert driver.run.approval is None
    assert driver.run.finished_at == driver.clock.now
    assert driver.run.abort_requested_by == actor.id
    assert driver.run.steps[driver.run.current].state is StepState.ABORTED
    assert driver.run.steps[driver.run.current].finished_at == driver.clock.now
    assert ReleaseLock() in decision.effects
    [entry] = decision.audit
    assert (entry.action, entry.actor, entry.from_state, entry.to_state) == ("abort", actor.id, source, S.ABORTED)
    assert pending_work(driver.run) == [ReleaseLock()]


def test_an_abort_reason_is_said_in_the_outcome_and_the_audit() -> None:
    """The reason given with an abort (say, the undo run that supersedes this one) is kept in both."""
    driver = paused()
    decision = driver.send(Abort(actor=APPROVER, reason="Superseded by undo run run-2."))
    assert driver.run.outcome == f"Aborted by {APPROVER.id}. Superseded by undo run run-2."
    assert [(e.action, e.detail) for e in decision.audit] == [("abort", "Superseded by undo run run-2.")]


def test_abort_of_a_planned_run_without_steps_keeps_its_empty_plan() -> None:
    """A run planned with no step is aborted with its (empty) steps intact."""
    driver = Driver(make_run(specs=[]))
    driver.send(Abort(actor=REQUESTER))
    assert (driver.run.state, driver.run.steps) == (S.ABORTED, ())


def test_abort_by_outsider_is_refused() -> None:
    """Only the requester or an approver may abort: anyone else is refused and the run goes on."""
    driver = started()
    before = driver.run
    decision = driver.send(Abort(actor=OUTSIDER))
    assert decision.run is before
    assert decision.refusal is not None and decision.refusal.code is RefusalCode.NOT_ALLOWED
    assert [e.action for e in decision.audit] == ["abort_refused"]


def test_abort_of_finished_run_is_refused() -> None:
    """Abort of a finished run is refused as finished, changing nothing."""
    driver = finished_run()
    before = driver.run
    decision = driver.send(Abort(actor=APPROVER))
    assert decision.run is before
    assert decision.refusal is not None and decision.refusal.code is RefusalCode.FINISHED
    assert [(e.action, e.detail) for e in decision.audit] == [
        ("abort_refused", "finished: Run run-1 is already succeeded.")]


def test_abort_while_waiting_is_deferred_to_the_next_safe_point() -> None:
    """Abort with an action in flight keeps waiting; when the condition is done the run aborts instead of moving on."""
    driver = running(3)
    driver.to_waiting()
    deferred = driver.send(Abort(actor=REQUESTER))
    assert driver.run.state is S.WAITING
    assert driver.run.abort_requested_by == REQUESTER.id
    assert ReleaseLock() not in deferred.effects
    assert [(e.action, e.detail) for e in deferred.audit] == [
        ("abort_deferred", "abort requested: stopping after the step in flight")]
    assert [(n.event, n.text) for n in deferred.effects if isinstance(n, Notify)] == [
        ("abort_requested", "Abort requested: the run stops once the step in flight is safe.")]
    assert pending_work(driver.run) == [CheckCondition(step_id="b0")]

    driver.send(ConditionChecked(step_id="b0", done=False, detail="pod starting"))
    assert driver.run.state is S.WAITING

    done = driver.send(ConditionChecked(step_id="b0", done=True, detail="back in ISR"))
    run = driver.run
    assert run.state is S.ABORTED
    assert run.steps[0].state is StepState.DONE
    assert [s.state for s in run.steps[1:]] == [StepState.PENDING, StepState.PENDING]
    assert run.approval is None
    assert run.finished_at == driver.clock.now
    assert ReleaseLock() in done.effects
    assert [e.action for e in done.audit] == ["abort_at_safe_point"]
    assert done.audit[0].detail == f"abort requested by {REQUESTER.id}"
    assert run.outcome == f"Aborted by {REQUESTER.id} after the step in flight."
    assert_chain(driver)


def test_abort_after_observe_is_deferred_until_the_step_lands() -> None:
    """Abort once the step observed the world (about to act) is deferred; the run aborts after the step finishes."""
    driver = running(2)
    driver.to_act()
    driver.send(Abort(actor=APPROVER))
    assert driver.run.state is S.RUNNING
    assert pending_work(driver.run) == [ApplyAction(step_id="b0")]
    driver.send(ActionApplied(step_id="b0"))
    driver.send(ConditionChecked(step_id="b0", done=True))
    assert driver.run.state is S.ABORTED
    assert driver.run.steps[1].state is StepState.PENDING
