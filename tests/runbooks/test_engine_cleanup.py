"""decide() for cleanup steps (``StepSpec.cleanup``): they run however the run ends (docs/engine.md,
"Cleanup steps run however the run ends"). The plan used: two move steps that need approval,
then two cleanup steps that run by themselves.
"""

from __future__ import annotations

from runbooks.engine.aborting import stopping_line
from runbooks.engine.events import Abort, ActionFailed, ConditionChecked, GateChecked, Notify, Retry, Skip
from runbooks.engine.models import RunState, StepPhase, StepState
from runbooks.engine.pending import pending_work

from .builders import APPROVER, REQUESTER, Driver, assert_chain, make_run, spec

S = RunState


def with_cleanup() -> Driver:
    steps = [
        spec("move-1"), spec("move-2"),
        spec("cancel", needs_approval=False, cleanup=True, title="Cancel moves in flight"),
        spec("clear", needs_approval=False, cleanup=True, title="Clear replication throttles"),
    ]
    driver = Driver(make_run(specs=steps))
    driver.start()
    return driver


def states(driver: Driver) -> dict[str, StepState]:
    return {s.id: s.state for s in driver.run.steps}


def finish_cleanup(driver: Driver) -> None:
    for step_id in ("cancel", "clear"):
        assert driver.step_id == step_id
        assert driver.run.state is S.RUNNING
        driver.finish_step()


def test_abort_while_awaiting_the_second_approval_runs_the_cleanup_steps_then_aborts() -> None:
    """Moves have started: the abort skips what is left and runs both cleanup steps without approval."""
    driver = with_cleanup()
    driver.approve()
    driver.finish_step()
    assert driver.run.state is S.AWAITING_APPROVAL
    decision = driver.send(Abort(actor=REQUESTER))
    assert driver.run.state is S.RUNNING
    assert driver.run.approval is None
    assert driver.run.abort_requested_by == REQUESTER.id
    assert states(driver) == {"move-1": StepState.DONE, "move-2": StepState.ABORTED,
                              "cancel": StepState.RUNNING, "clear": StepState.PENDING}
    assert pending_work(driver.run)[0].kind == "check_gate"
    assert [(e.action, e.detail) for e in decision.audit] == [("abort_to_cleanup", "abort: cleanup steps run")]
    assert driver.run.steps[1].finished_at == driver.clock.now
    assert [(n.event, n.text) for n in decision.effects if isinstance(n, Notify)] == [(
        "cleanup_started", f"Aborted by {REQUESTER.id}: running the cleanup steps before the run ends "
        "(Cancel moves in flight, Clear replication throttles).")]
    assert "ReleaseLock" not in [type(e).__name__ for e in decision.effects]
    finish_cleanup(driver)
    assert driver.run.state is S.ABORTED
    assert driver.run.outcome == (f"Aborted by {REQUESTER.id}. Cleanup done: "
                                  "Cancel moves in flight, Clear replication throttles.")
    assert_chain(driver)


def test_deferred_abort_runs_the_cleanup_steps_once_the_step_in_flight_is_done() -> None:
    """An abort while a move is in flight waits for it, then runs the cleanup steps, then aborts."""
    driver = with_cleanup()
    driver.approve()
    driver.to_waiting()
    driver.send(Abort(actor=APPROVER))
    assert driver.run.state is S.WAITING
    driver.send(ConditionChecked(step_id="move-1", done=True, detail="moved"))
    assert states(driver)["move-2"] is StepState.ABORTED
    finish_cleanup(driver)
    assert driver.run.state is S.ABORTED


def test_abort_before_any_step_started_ends_at_once() -> None:
    """Nothing has run (first approval pending): nothing to clean up, the run ends at once."""
    driver = with_cleanup()
    driver.send(Abort(actor=REQUESTER))
    assert driver.run.state is S.ABORTED
    assert driver.run.outcome == f"Aborted by {REQUESTER.id}."


def test_a_second_abort_during_cleanup_ends_the_run_and_names_what_was_not_cleaned() -> None:
    """A cleanup step that fails pauses; a second abort ends the run and says what is left behind."""
    driver = with_cleanup()
    driver.approve()
    driver.finish_step()
    driver.send(Abort(actor=REQUESTER))
    driver.send(GateChecked(step_id="cancel", ok=False, reason="Kafka unreachable"))
    assert driver.run.state is S.PAUSED
    driver.send(Abort(actor=APPROVER))
    assert driver.run.state is S.ABORTED
    assert driver.run.outcome is not None
    assert driver.run.outcome.endswith(
        "Cleanup not done: Cancel moves in flight, Clear replication throttles. Check the cluster by hand.")


def test_retry_of_a_failed_cleanup_step_continues_the_cleanup() -> None:
    """Retry of a paused cleanup step runs it again, then the next cleanup step, then the run aborts."""
    driver = with_cleanup()
    driver.approve()
    driver.finish_step()
    driver.send(Abort(actor=REQUESTER))
    driver.send(GateChecked(step_id="cancel", ok=False, reason="Kafka unreachable"))
    driver.send(Retry(actor=APPROVER))
    assert (driver.run.state, driver.step_id) == (S.RUNNING, "cancel")
    finish_cleanup(driver)
    assert driver.run.state is S.ABORTED


def test_abort_while_paused_on_a_move_runs_the_cleanup() -> None:
    """A move paused (say a broker died): the abort marks it aborted and runs the cleanup steps."""
    driver = with_cleanup()
    driver.approve()
    driver.send(GateChecked(step_id="move-1", ok=False, reason="broker 2 is down"))
    driver.send(Abort(actor=REQUESTER))
    assert states(driver)["move-1"] is StepState.ABORTED
    assert (driver.run.state, driver.step_id) == (S.RUNNING, "cancel")


def test_a_permanent_failure_runs_the_cleanup_and_ends_failed() -> None:
    """A step that fails for good does not leave throttles on: the cleanup steps run, the run is FAILED."""
    driver = with_cleanup()
    driver.approve()
    driver.to_act()
    driver.send(ActionFailed(step_id="move-1", error="plan and executors disagree", permanent=True))
    assert (driver.run.state, driver.step_id) == (S.RUNNING, "cancel")
    assert states(driver)["move-1"] is StepState.FAILED
    assert states(driver)["move-2"] is StepState.ABORTED
    assert [(e.action, e.detail) for e in driver.audit[-2:]] == [
        ("fail_to_cleanup", "plan and executors disagree"),
        ("cleanup_next", "cleanup step, the run is stopping (A step failed for good)")]
    assert driver.run.steps[1].finished_at == driver.clock.now
    finish_cleanup(driver)
    assert driver.run.state is S.FAILED
    assert driver.run.finished_at == driver.clock.now
    assert driver.run.outcome == ("Restart broker move-1 failed: plan and executors disagree. Cleanup done: "
                                  "Cancel moves in flight, Clear replication throttles.")
    assert_chain(driver)


def test_the_normal_course_runs_the_cleanup_steps_as_steps_and_succeeds() -> None:
    """Without an abort, cleanup steps are ordinary steps at the end of the plan: the run succeeds."""
    driver = with_cleanup()
    for _ in range(2):
        driver.approve()
        driver.finish_step()
    finish_cleanup(driver)
    assert driver.run.state is S.SUCCEEDED


def test_abort_during_the_last_cleanup_step_in_flight_still_succeeds_when_every_step_ran() -> None:
    """An abort that lands while the last step is in flight has nothing left to stop: all steps ran."""
    driver = with_cleanup()
    for _ in range(2):
        driver.approve()
        driver.finish_step()
    driver.finish_step()
    driver.to_waiting()
    driver.send(Abort(actor=REQUESTER))
    driver.send(ConditionChecked(step_id="clear", done=True, detail="no throttle left"))
    assert driver.run.state is S.SUCCEEDED


def test_skip_of_a_paused_step_while_stopping_goes_on_to_the_cleanup() -> None:
    """A skippable move paused after a deferred abort: skipping it runs the cleanup steps."""
    steps = [spec("move-1", skippable=True), spec("move-2"),
             spec("clear", needs_approval=False, cleanup=True, title="Clear replication throttles")]
    driver = Driver(make_run(specs=steps))
    driver.start()
    driver.approve()
    driver.to_waiting()
    driver.send(Abort(actor=REQUESTER))
    driver.send(ConditionChecked(step_id="move-1", done=False, failure="broker 2 is down"))
    assert driver.run.state is S.PAUSED
    driver.send(Skip(actor=APPROVER))
    assert (driver.run.state, driver.step_id) == (S.RUNNING, "clear")
    assert driver.run.steps[2].phase is StepPhase.GATE
    driver.finish_step()
    assert driver.run.state is S.ABORTED


def test_the_card_says_the_cleanup_steps_are_running_while_a_run_is_stopped() -> None:
    """While stopping, the card says an abort waits for the step in flight, then names the cleanup steps left."""
    driver = with_cleanup()
    driver.approve()
    driver.to_waiting()
    driver.send(Abort(actor=REQUESTER))
    assert stopping_line(driver.run, "@alice") == "Abort requested by @alice: stopping after the step in flight."
    driver.send(ConditionChecked(step_id="move-1", done=True, detail="moved"))
    assert stopping_line(driver.run, "@alice") == (
        "Aborted by @alice: running the cleanup steps before the run ends "
        "(Cancel moves in flight, Clear replication throttles).")


def test_a_permanent_failure_of_the_last_cleanup_step_fails_the_run_at_once() -> None:
    """No cleanup step is left after it: the run is FAILED with the failure as its outcome."""
    driver = with_cleanup()
    for _ in range(2):
        driver.approve()
        driver.finish_step()
    driver.finish_step()
    driver.to_act()
    driver.send(ActionFailed(step_id="clear", error="DescribeConfigs refused", permanent=True))
    assert driver.run.state is S.FAILED
    assert driver.run.outcome == "Clear replication throttles failed: DescribeConfigs refused"


def test_a_deferred_abort_that_ends_in_cleanup_reports_each_step_it_skipped() -> None:
    """The steps the abort skipped are ABORTED with the time they were given up, the audit names the stop."""
    driver = with_cleanup()
    driver.approve()
    driver.to_waiting()
    driver.send(Abort(actor=APPROVER))
    decision = driver.send(ConditionChecked(step_id="move-1", done=True, detail="moved"))
    assert driver.run.steps[1].finished_at == driver.clock.now
    assert [(e.action, e.detail) for e in decision.audit] == [
        ("cleanup_next", f"cleanup step, the run is stopping (Aborted by {APPROVER.id})")]
    finish_cleanup(driver)
    assert driver.run.finished_at == driver.clock.now
    assert [e.action for e in driver.audit[-1:]] == ["abort_at_safe_point"]


def test_a_second_abort_ends_the_run_even_when_the_first_skipped_nothing() -> None:
    """Abort deferred during the last move: the cleanup starts with nothing skipped; its failure and a
    second abort end the run at once (the run is already stopping, the abort does not start over)."""
    driver = with_cleanup()
    driver.approve()
    driver.finish_step()
    driver.approve()
    driver.to_waiting()
    driver.send(Abort(actor=REQUESTER))
    driver.send(ConditionChecked(step_id="move-2", done=True, detail="moved"))
    assert (driver.step_id, driver.run.state) == ("cancel", S.RUNNING)
    driver.send(GateChecked(step_id="cancel", ok=False, reason="Kafka unreachable"))
    driver.send(Abort(actor=APPROVER))
    assert driver.run.state is S.ABORTED


def test_abort_of_a_paused_move_clears_the_pause_reason() -> None:
    """The cleanup step that starts after an abort of a paused run is not shown as paused."""
    driver = with_cleanup()
    driver.approve()
    driver.send(GateChecked(step_id="move-1", ok=False, reason="broker 2 is down"))
    assert driver.run.pause_reason is not None
    driver.send(Abort(actor=REQUESTER))
    assert driver.run.pause_reason is None


def test_a_failure_right_before_the_only_cleanup_step_still_runs_it_and_says_so() -> None:
    """[move, clear]: the move fails for good, the cleanup runs (with notices for both), then FAILED."""
    steps = [spec("move-1"), spec("clear", needs_approval=False, cleanup=True, title="Clear replication throttles")]
    driver = Driver(make_run(specs=steps))
    driver.start()
    driver.approve()
    driver.to_act()
    decision = driver.send(ActionFailed(step_id="move-1", error="refused", permanent=True))
    assert [(n.event, n.text, n.step_id) for n in decision.effects if isinstance(n, Notify)] == [
        ("step_failed", "Restart broker move-1 failed: refused. Running the cleanup steps before the run ends.",
         "move-1"),
        ("step_started", "Clear replication throttles", "clear")]
    finished = driver.finish_step()
    assert driver.run.state is S.FAILED
    assert [(e.action, e.detail) for e in finished.audit][-1] == (
        "fail_after_cleanup", "the cleanup steps ran after the failure")


def test_the_cleanup_notice_names_the_cleanup_step_it_starts() -> None:
    """The notice of an abort that starts the cleanup is attached to the cleanup step it starts."""
    driver = with_cleanup()
    driver.approve()
    driver.finish_step()
    decision = driver.send(Abort(actor=REQUESTER))
    assert [n.step_id for n in decision.effects if isinstance(n, Notify)] == ["cancel"]


def test_every_move_stamps_the_run_and_a_finished_run_says_so() -> None:
    """The run's updated_at is the decision's time; the end of a run is one run_finished notice."""
    driver = with_cleanup()
    driver.clock.advance(7)
    driver.approve()
    assert driver.run.updated_at == driver.clock.now
    driver.finish_step()
    decision = driver.send(Abort(actor=REQUESTER))
    assert driver.run.updated_at == driver.clock.now
    finish_cleanup(driver)
    assert driver.last is not None
    assert [(n.event, n.text) for n in driver.last.effects if isinstance(n, Notify)][-1] == (
        "run_finished", f"Run aborted: Aborted by {REQUESTER.id}. Cleanup done: Cancel moves in flight, "
        "Clear replication throttles.")
    assert decision.audit[0].step_id == "cancel"


def interruptible_moves() -> Driver:
    steps = [
        spec("move-1", interruptible=True), spec("move-2", interruptible=True, needs_approval=False),
        spec("cancel", needs_approval=False, cleanup=True, title="Cancel moves in flight"),
        spec("clear", needs_approval=False, cleanup=True, title="Clear replication throttles"),
    ]
    driver = Driver(make_run(specs=steps))
    driver.start()
    return driver


def test_an_abort_stops_an_interruptible_step_in_flight_at_once_and_runs_the_cleanup() -> None:
    """A partition move in flight is not waited for: the abort marks it aborted and cancel-moves runs."""
    driver = interruptible_moves()
    driver.approve()
    driver.to_waiting()
    decision = driver.send(Abort(actor=REQUESTER))
    assert (driver.run.state, driver.step_id) == (S.RUNNING, "cancel")
    assert states(driver)["move-1"] is StepState.ABORTED
    assert states(driver)["move-2"] is StepState.ABORTED
    assert [(e.action, e.from_state) for e in decision.audit] == [("abort_to_cleanup", S.WAITING)]
    finish_cleanup(driver)
    assert driver.run.state is S.ABORTED


def test_a_step_not_marked_interruptible_is_still_waited_for() -> None:
    """Without the mark, the abort is deferred until the step in flight is done (a broker restart)."""
    driver = with_cleanup()
    driver.approve()
    driver.to_waiting()
    driver.send(Abort(actor=REQUESTER))
    assert (driver.run.state, driver.step_id) == (S.WAITING, "move-1")


def test_an_interruptible_step_without_cleanup_after_it_is_waited_for() -> None:
    """Nothing would undo it: the abort is deferred as for any step in flight."""
    driver = Driver(make_run(specs=[spec("move-1", interruptible=True)]))
    driver.start()
    driver.approve()
    driver.to_waiting()
    driver.send(Abort(actor=REQUESTER))
    assert driver.run.state is S.WAITING
