"""decide() and pending_work(): the rules of docs/design.md §3, driven event by event with injected time (who may
approve, N-of-M and deadlines are in test_engine_approvals.py; retry, skip and abort in
test_engine_interventions.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from runbooks.engine.approvals import RefusalCode
from runbooks.engine.decide import decide
from runbooks.engine.events import (
    ActionApplied,
    ActionFailed,
    ApplyAction,
    CheckCondition,
    CheckGate,
    ConditionChecked,
    Event,
    GateChecked,
    Notify,
    Observe,
    Observed,
    ReleaseLock,
    Retry,
    Skip,
    Start,
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
    T0,
    Driver,
    Ids,
    assert_chain,
    dump,
    finished_run,
    make_run,
    paused,
    planned,
    running,
    spec,
    started,
)

S = RunState


def actions(driver: Driver) -> list[str]:
    return [entry.action for entry in driver.audit]


# -- illegal events -------------------------------------------------------------------------------

def _act() -> Driver:
    driver = running()
    driver.send(GateChecked(step_id="b0", ok=True))
    return driver


def _waiting() -> Driver:
    driver = running()
    driver.to_waiting()
    return driver


ILLEGAL: list[tuple[str, Callable[[], Driver], Event]] = [
    ("start twice", started, Start()),
    ("start a finished run", finished_run, Start()),
    ("gate result before start", planned, GateChecked(step_id="b0", ok=True)),
    ("apply before approval", started, ActionApplied(step_id="b0")),
    ("observe before approval", started, Observed(step_id="b0", data={"uid": "x"})),
    ("condition before approval", started, ConditionChecked(step_id="b0", done=True)),
    ("advisory gate for another step", started, GateChecked(step_id="b1", ok=True)),
    ("condition during the gate phase", running, ConditionChecked(step_id="b0", done=True)),
    ("gate result in the act phase", _act, GateChecked(step_id="b0", ok=True)),
    ("result for another step", _act, ActionApplied(step_id="b1")),
    ("action failure while waiting", _waiting, ActionFailed(step_id="b0", error="boom")),
    ("observe while waiting", _waiting, Observed(step_id="b0", data={"uid": "y"})),
    ("gate result while paused", paused, GateChecked(step_id="b0", ok=True)),
    ("condition while paused", paused, ConditionChecked(step_id="b0", done=True)),
    ("worker result on a finished run", finished_run, ConditionChecked(step_id="b0", done=True)),
]


@pytest.mark.parametrize(("name", "setup", "event"), ILLEGAL, ids=[c[0] for c in ILLEGAL])
def test_illegal_event_raises_and_changes_nothing(name: str, setup: Callable[[], Driver], event: Event) -> None:
    """An event the run's state cannot take raises IllegalTransition and leaves the input run unchanged."""
    driver = setup()
    before = dump(driver.run)
    with pytest.raises(IllegalTransition):
        decide(driver.run, event, driver.clock.advance(1), driver.ids)
    assert dump(driver.run) == before


def test_runs_are_frozen() -> None:
    """A run cannot be mutated in place: decide() must return a new one."""
    run = make_run()
    with pytest.raises(Exception, match="frozen"):
        run.state = S.RUNNING  # type: ignore[misc]


def test_decide_is_deterministic() -> None:
    """The same events at the same times give the same runs and audit (replayable core)."""
    def play() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        driver = running(2)
        driver.finish_step()
        driver.approve(APPROVER_2)
        driver.finish_step()
        return dump(driver.run), [e.model_dump(mode="json") for e in driver.audit]

    assert play() == play()


# -- start ----------------------------------------------------------------------------------------

def test_start_asks_for_approval_with_nonce_and_advisory_gate() -> None:
    """Start moves planned -> awaiting_approval with a nonce, the plan hash, a deadline and an advisory CheckGate."""
    driver = Driver(make_run())
    decision = driver.start()
    run = driver.run
    assert run.state is S.AWAITING_APPROVAL
    assert run.current == 0
    assert run.approval is not None
    assert run.approval.step_id == "b0"
    assert run.approval.nonce == "n1"
    assert run.approval.plan_hash == run.plan_hash
    assert run.approval.expires_at == T0 + timedelta(seconds=600)
    assert run.approval.required == 1
    assert run.steps[0].state is StepState.AWAITING_APPROVAL
    assert CheckGate(step_id="b0", advisory=True) in decision.effects
    assert any(isinstance(e, Notify) and e.event == "step_awaiting_approval" for e in decision.effects)
    [entry] = decision.audit
    assert (entry.from_state, entry.to_state, entry.action, entry.actor) == (
        S.PLANNED, S.AWAITING_APPROVAL, "start_awaiting", REQUESTER.id)
    assert decision.changed


def test_start_of_a_step_without_approval_runs_it() -> None:
    """A first step that needs no approval starts running at the gate, with its deadline set."""
    driver = Driver(make_run(specs=[spec("b0", needs_approval=False), spec("b1")]))
    driver.start()
    step = driver.run.steps[0]
    assert driver.run.state is S.RUNNING
    assert driver.run.approval is None
    assert (step.state, step.phase, step.attempt) == (StepState.RUNNING, StepPhase.GATE, 1)
    assert step.deadline == T0 + timedelta(seconds=300)
    assert pending_work(driver.run) == [CheckGate(step_id="b0")]


def test_advisory_gate_records_findings_without_moving() -> None:
    """A gate result while awaiting approval records the findings for the approver and keeps awaiting."""
    driver = started()
    decision = driver.send(GateChecked(step_id="b0", ok=False, findings=("t-0 at min ISR",), reason="at risk"))
    assert driver.run.state is S.AWAITING_APPROVAL
    assert driver.run.steps[0].findings == ("t-0 at min ISR",)
    assert driver.run.approval is not None and driver.run.approval.nonce == "n1"
    assert [e.action for e in decision.audit] == ["gate_advisory"]


# -- approve --------------------------------------------------------------------------------------

@pytest.mark.parametrize("actor", [APPROVER, GROUP_MEMBER], ids=["by-user-id", "by-user-group"])
def test_approve_by_authorized_non_requester_runs_the_step(actor: Any) -> None:
    """An approval by a listed approver (user id or user group) moves to running, gate phase, deadline set."""
    driver = started()
    driver.clock.advance(30)
    decision = driver.approve(actor)
    step = driver.run.steps[0]
    assert decision.refusal is None
    assert driver.run.state is S.RUNNING
    assert driver.run.approval is None
    assert (step.state, step.phase, step.attempt) == (StepState.RUNNING, StepPhase.GATE, 1)
    assert step.started_at == driver.clock.now
    assert step.deadline == driver.clock.now + timedelta(seconds=300)
    [entry] = decision.audit
    assert (entry.action, entry.actor, entry.from_state, entry.to_state) == (
        "approve", actor.id, S.AWAITING_APPROVAL, S.RUNNING)
    assert actor.id in entry.detail


def test_pending_work_follows_the_state() -> None:
    """pending_work: advisory gate, nothing until approved, gate, observe, apply, condition, then ReleaseLock."""
    driver = Driver(make_run(1))
    assert pending_work(driver.run) == []
    driver.start()
    assert pending_work(driver.run) == [CheckGate(step_id="b0", advisory=True)]  # findings for the approver
    driver.send(GateChecked(step_id="b0", ok=True, reason="nothing at risk"))
    assert pending_work(driver.run) == []  # a human acts next
    driver.approve()
    assert pending_work(driver.run) == [CheckGate(step_id="b0")]
    driver.send(GateChecked(step_id="b0", ok=True))
    assert driver.run.steps[0].phase is StepPhase.ACT
    assert pending_work(driver.run) == [Observe(step_id="b0")]
    driver.send(Observed(step_id="b0", data={"pod_uid": "u1"}))
    assert pending_work(driver.run) == [ApplyAction(step_id="b0")]
    driver.send(ActionApplied(step_id="b0"))
    assert driver.run.state is S.WAITING
    assert pending_work(driver.run) == [CheckCondition(step_id="b0")]
    driver.send(ConditionChecked(step_id="b0", done=True))
    assert driver.run.state is S.SUCCEEDED
    assert pending_work(driver.run) == [ReleaseLock()]


def test_pending_work_is_empty_while_paused() -> None:
    """A paused run has no pending work: the worker waits for a human."""
    assert pending_work(paused().run) == []


def test_happy_path_three_steps_succeeds_with_a_chained_audit() -> None:
    """A 3-step run reaches succeeded; one audit entry per transition, each from_state the previous to_state."""
    driver = Driver(make_run(3))
    driver.start()
    for index in range(3):
        driver.clock.advance(10)
        driver.approve(APPROVER if index % 2 == 0 else APPROVER_2)
        driver.finish_step()
    run = driver.run
    assert run.state is S.SUCCEEDED
    assert run.finished_at == driver.clock.now
    assert run.outcome == "All steps done."
    assert [s.state for s in run.steps] == [StepState.DONE] * 3
    assert [s.observed for s in run.steps] == [{"pod_uid": f"uid-b{i}"} for i in range(3)]
    assert driver.last is not None and ReleaseLock() in driver.last.effects
    per_step = ["approve", "gate_ok", "observed", "applied"]
    assert actions(driver) == [
        "start_awaiting", *per_step, "next_awaiting", *per_step, "next_awaiting", *per_step, "complete"]
    assert driver.audit[0].from_state is S.PLANNED
    assert driver.audit[-1].to_state is S.SUCCEEDED
    assert_chain(driver)
    assert all(e.run_id == "run-1" for e in driver.audit)
    assert [e.step_id for e in driver.audit if e.action == "approve"] == ["b0", "b1", "b2"]
    assert driver.ids.count == 3  # one nonce per approval request


def test_each_step_gets_a_new_nonce() -> None:
    """Every approval request carries a nonce of its own: a button of step 1 cannot approve step 2."""
    driver = running(2)
    driver.finish_step()
    assert driver.run.approval is not None
    assert (driver.run.approval.step_id, driver.run.approval.nonce) == ("b1", "n2")
    decision = driver.approve(nonce="n1")
    assert decision.refusal is not None and decision.refusal.code is RefusalCode.STALE


# -- gate, action and condition failures ----------------------------------------------------------

def test_gate_failure_pauses_with_findings() -> None:
    """A failed health gate pauses the run and keeps the findings on the step."""
    driver = running()
    decision = driver.send(GateChecked(step_id="b0", ok=False, findings=("t-0 at min ISR 2",), reason="at risk"))
    step = driver.run.steps[0]
    assert driver.run.state is S.PAUSED
    assert step.state is StepState.PAUSED
    assert step.findings == ("t-0 at min ISR 2",)
    assert "at risk" in (driver.run.pause_reason or "")
    assert [e.action for e in decision.audit] == ["gate_failed"]


def test_permanent_action_failure_fails_the_run() -> None:
    """A permanent ActionFailed fails the run, marks the step failed and releases the lock."""
    driver = running()
    driver.to_act()
    decision = driver.send(ActionFailed(step_id="b0", error="pod not found", permanent=True))
    assert driver.run.state is S.FAILED
    assert driver.run.steps[0].state is StepState.FAILED
    assert driver.run.finished_at == driver.clock.now
    assert "pod not found" in (driver.run.outcome or "")
    assert ReleaseLock() in decision.effects


def test_transient_action_failure_pauses() -> None:
    """A transient ActionFailed pauses the run for a human to decide."""
    driver = running()
    driver.to_act()
    driver.send(ActionFailed(step_id="b0", error="409 conflict"))
    assert driver.run.state is S.PAUSED
    assert "409 conflict" in (driver.run.pause_reason or "")


def test_condition_failure_pauses() -> None:
    """A condition that reports a hard failure pauses the run with it."""
    driver = running()
    driver.to_waiting()
    driver.send(ConditionChecked(step_id="b0", done=False, failure="pod CrashLoopBackOff"))
    assert driver.run.state is S.PAUSED
    assert "CrashLoopBackOff" in (driver.run.pause_reason or "")


def test_progress_is_recorded_once() -> None:
    """New progress detail is recorded and audited; the same detail again changes nothing and writes no audit."""
    driver = running()
    driver.to_waiting()
    first = driver.send(ConditionChecked(step_id="b0", done=False, detail="2/3 in ISR"))
    assert [e.action for e in first.audit] == ["progress"]
    assert driver.run.steps[0].detail == "2/3 in ISR"
    before = driver.run
    again = driver.send(ConditionChecked(step_id="b0", done=False, detail="2/3 in ISR"))
    assert again.run is before
    assert again.audit == () and again.effects == () and not again.changed


def test_condition_done_before_apply_skips_the_action() -> None:
    """If the world is already in the desired state before acting, the step is done without applying (idempotent)."""
    driver = running(2)
    driver.to_act()
    driver.send(ConditionChecked(step_id="b0", done=True))
    assert driver.run.steps[0].state is StepState.DONE
    assert driver.run.steps[0].applied is False
    assert driver.run.state is S.AWAITING_APPROVAL and driver.run.current == 1


# -- audit ----------------------------------------------------------------------------------------

def test_audit_of_a_run_with_pauses_and_refusals_is_a_chain() -> None:
    """Across refusals, pauses, retries and skips every audit entry starts where the previous one ended."""
    driver = Driver(make_run(specs=[spec("b0"), spec("b1", skippable=True), spec("b2")]))
    driver.start()
    driver.approve(OUTSIDER)
    driver.approve(REQUESTER)
    driver.approve(APPROVER)
    driver.send(GateChecked(step_id="b0", ok=False))
    driver.send(Retry(actor=APPROVER))
    driver.finish_step()
    driver.clock.advance(601)
    driver.send(Tick())
    driver.send(Skip(actor=APPROVER_2))
    driver.approve(APPROVER_2)
    driver.finish_step()
    assert driver.run.state is S.SUCCEEDED
    assert_chain(driver)
    assert [e.action for e in driver.audit].count("approve_refused") == 2
    assert [e.at for e in driver.audit] == sorted(e.at for e in driver.audit)


def test_ids_are_only_drawn_for_approval_requests() -> None:
    """The engine asks the id factory for exactly one nonce per approval request and nothing else."""
    ids = Ids()
    run = make_run(1, specs=[spec("b0", needs_approval=False)])
    decision = decide(run, Start(), T0, ids)
    assert decision.run.state is S.RUNNING
    assert ids.count == 0


def test_start_of_an_empty_plan_finishes_or_is_refused() -> None:
    """Starting a run with no steps either raises or finishes it (terminal); it never stays live without a lock."""
    run = make_run(0)
    try:
        decision = decide(run, Start(), T0, Ids())
    except (IllegalTransition, ValueError):
        return
    assert decision.run.state.terminal
