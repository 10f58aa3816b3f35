"""What a Retry leaves behind: the pause reason cleared, an audit line that says who resumed and how,
the card told the step started again; and a refused Retry audited under its own name with the step
it was about."""

from __future__ import annotations

from runbooks.engine.approvals import RefusalCode, check_button_step
from runbooks.engine.events import ConditionChecked, GateChecked, Notify, Retry, Tick
from runbooks.engine.models import RunState

from .builders import APPROVER, OUTSIDER, Driver, paused, running


def test_retry_of_an_applied_step_clears_the_pause_and_says_it_waits_again() -> None:
    """The run waits again with no pause reason left on it; the audit line says so."""
    driver = running()
    driver.to_waiting()
    driver.clock.advance(301)
    driver.send(Tick())
    assert driver.run.pause_reason is not None
    decision = driver.send(Retry(actor=APPROVER))
    assert driver.run.state is RunState.WAITING
    assert driver.run.pause_reason is None
    [entry] = decision.audit
    assert (entry.action, entry.actor, entry.step_id, entry.detail) == (
        "retry_waiting", APPROVER.id, "b0", "retry: waiting again")


def test_retry_of_an_unapplied_step_names_who_retried_and_restarts_the_step() -> None:
    """The audit line names the approver; the card is told the step started again (title and step)."""
    driver = paused()
    decision = driver.send(Retry(actor=APPROVER))
    [entry] = decision.audit
    assert (entry.action, entry.detail) == ("retry_running", f"retry by {APPROVER.id}")
    notes = [e for e in decision.effects if isinstance(e, Notify)]
    assert [(n.event, n.text, n.step_id) for n in notes] == [("step_started", "Restart broker b0", "b0")]


def test_refused_retries_are_audited_as_retry_refused_on_the_current_step() -> None:
    """Not paused, or not an approver: the refusal is one retry_refused line on the current step."""
    not_paused = running().send(Retry(actor=APPROVER))
    outsider = paused().send(Retry(actor=OUTSIDER))
    for decision, code in ((not_paused, RefusalCode.STALE), (outsider, RefusalCode.NOT_APPROVER)):
        assert decision.refusal is not None and decision.refusal.code is code
        [entry] = decision.audit
        assert (entry.action, entry.step_id) == ("retry_refused", "b0")
        assert entry.detail.startswith(f"{code.value}: ")


def _paused_on_second_step() -> Driver:
    """b0 done, b1 approved and its gate failed: the run is paused on b1 (a Retry card for b0 is old)."""
    driver = running()
    driver.to_waiting()
    driver.send(ConditionChecked(step_id="b0", done=True))
    driver.approve()
    driver.send(GateChecked(step_id="b1", ok=False, reason="URP 3"))
    assert driver.run.state is RunState.PAUSED and driver.step_id == "b1"
    return driver


def test_a_retry_for_an_earlier_pause_is_refused_as_stale_and_changes_nothing() -> None:
    """The Retry button of b0's pause, clicked while the run is paused on b1: refused (stale, before
    who clicked is judged), audited, the run unchanged; b1's own button and a typed resume retry b1."""
    driver = _paused_on_second_step()
    before = driver.run
    for actor in (APPROVER, OUTSIDER):
        decision = driver.send(Retry(actor=actor, step_id="b0"))
        assert decision.refusal is not None and decision.refusal.code is RefusalCode.STALE
        assert decision.refusal.message == (f"This Retry button is for step b0, but run {before.id} is now paused "
                                            "on b1: use the latest card.")
        assert decision.run == before and not decision.effects
        [entry] = decision.audit
        assert (entry.action, entry.step_id) == ("retry_refused", "b1")
    for step_id in ("b1", None):
        driver.run = before
        decision = driver.send(Retry(actor=APPROVER, step_id=step_id))
        assert decision.refusal is None and driver.run.state is RunState.RUNNING
        assert [e.action for e in decision.audit] == ["retry_running"]


def test_a_button_for_another_step_is_stale_only_while_the_run_is_paused() -> None:
    """The stale-button rule judges a paused run only: on a running run a Retry for another step is
    not "stale" (it is refused as any Retry of a running run is), and a typed resume (no step) never is."""
    driver = running()
    assert driver.run.state is RunState.RUNNING
    assert check_button_step(driver.run, "another-step") is None
    halted = paused()
    assert check_button_step(halted.run, None) is None
    assert check_button_step(halted.run, "b0") is None
    refusal = check_button_step(halted.run, "another-step")
    assert refusal is not None and refusal.code is RefusalCode.STALE
