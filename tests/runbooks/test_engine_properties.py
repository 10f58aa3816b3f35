"""Property tests: random event sequences (random actors, nonces, plan hashes, time) over 3-4 step runs.

A hypothesis state machine plays a worker that does the run's pending work with random outcomes,
humans who click approve / retry / skip / abort with random identities and buttons, a clock that
jumps forward, and stray worker results for the wrong step or state. After every event it checks:
- every run is well formed: a RunState, a valid current index, steps and approval request consistent;
- an illegal event raises and leaves the input run unchanged; a refusal returns the same run;
- terminal states stay terminal;
- a run leaves awaiting_approval for running only on an approval that passed every check, judged
  here independently of runbooks.engine.approvals: an approver by id or group, not the requester under
  four-eyes, the current nonce, the current plan hash, and enough distinct approvers;
- a paused run moves on only by a human retry or skip from someone allowed to;
- the audit trail is a chain: each entry's from_state is the previous entry's to_state.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import event as note_event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from runbooks.engine.decide import Decision, decide
from runbooks.engine.events import (
    Abort,
    ActionApplied,
    ActionFailed,
    ApplyAction,
    Approve,
    CheckCondition,
    CheckGate,
    ConditionChecked,
    Event,
    GateChecked,
    Observe,
    Observed,
    ReleaseLock,
    Retry,
    Skip,
    Start,
    Tick,
)
from runbooks.engine.models import Actor, AuditEntry, Run, RunState, StepPhase, StepState, plan_hash
from runbooks.engine.pending import pending_work
from runbooks.engine.transitions import IllegalTransition

from .builders import APPROVER, APPROVER_2, GROUP_MEMBER, OUTSIDER, REQUESTER, Clock, Ids, dump, make_run, policy, spec

S = RunState
CAST = (REQUESTER, APPROVER, APPROVER_2, GROUP_MEMBER, OUTSIDER)
APPROVER_IDS = {REQUESTER.id, APPROVER.id, APPROVER_2.id}
APPROVER_GROUPS = {"S_KAFKA_OPS"}
HUMAN_EVENTS = (Approve, Abort, Retry, Skip)

# Biased toward clicks that can succeed, so runs get deep, while every kind of bad click stays likely.
actors = st.sampled_from([APPROVER, APPROVER_2, GROUP_MEMBER, APPROVER, REQUESTER, OUTSIDER])
advance = st.one_of(st.just(0), st.integers(1, 60), st.integers(1, 60), st.integers(61, 1200))


def may_approve(run: Run, actor: Actor) -> bool:
    """The approver rule, written out here independently of runbooks.engine.approvals."""
    listed = actor.id in APPROVER_IDS or bool(APPROVER_GROUPS & set(actor.groups))
    return listed and not (run.policy.four_eyes and actor.id == run.requested_by)


def check_well_formed(run: Run) -> None:
    assert run.state in set(RunState)
    assert 0 <= run.current < len(run.steps)
    step = run.steps[run.current]
    assert all(s.state in (StepState.DONE, StepState.SKIPPED) for s in run.steps[: run.current])
    assert all(s.state is StepState.PENDING for s in run.steps[run.current + 1:])
    if run.state is S.AWAITING_APPROVAL:
        assert run.approval is not None and run.approval.step_id == step.id
        assert step.state is StepState.AWAITING_APPROVAL
        assert len({a.by for a in run.approval.approvals}) == len(run.approval.approvals) < run.approval.required
    else:
        assert run.approval is None
    if run.state is S.RUNNING:
        assert step.state is StepState.RUNNING and step.phase in (StepPhase.GATE, StepPhase.ACT)
        assert step.deadline is not None
    if run.state is S.WAITING:
        assert step.state is StepState.WAITING and step.applied and step.deadline is not None
    if run.state is S.PAUSED:
        assert step.state is StepState.PAUSED and run.pause_reason
    if run.state.terminal:
        assert run.finished_at is not None and run.outcome
        assert pending_work(run) == [ReleaseLock()]
    if run.state is S.SUCCEEDED:
        assert all(s.state in (StepState.DONE, StepState.SKIPPED) for s in run.steps)
    if run.state is S.PLANNED:
        assert all(s.state is StepState.PENDING for s in run.steps)


class RunMachine(RuleBasedStateMachine):
    run: Run

    @initialize(
        n_steps=st.integers(3, 4),
        four_eyes=st.booleans(),
        required=st.sampled_from([1, 1, 2]),
        step_options=st.lists(
            st.tuples(st.booleans(), st.sampled_from([True, True, True, False]), st.sampled_from([None, None, 2])),
            min_size=4, max_size=4,
        ),
        approval_timeout=st.sampled_from([300.0, 900.0]),
        start=st.sampled_from([True, True, True, False]),
    )
    def setup(
        self, n_steps: int, four_eyes: bool, required: int, step_options: list[tuple[bool, bool, int | None]],
        approval_timeout: float, start: bool,
    ) -> None:
        specs = [
            spec(f"b{i}", skippable=skip, needs_approval=needs, approvals_required=n, timeout_s=240.0 + 60 * i)
            for i, (skip, needs, n) in enumerate(step_options[:n_steps])
        ]
        pol = policy(four_eyes=four_eyes, approvals_required=required, approval_timeout_s=approval_timeout)
        self.run = make_run(specs=specs, pol=pol)
        self.shown_hash = plan_hash(specs)  # the plan the approvers were shown
        self.clock = Clock()
        self.ids = Ids()
        self.audit: list[AuditEntry] = []
        self.accepted: dict[str, set[str]] = {}  # nonce -> who approved it, as seen by this test
        self.terminal_run: Run | None = None
        self.live_nonce: str | None = None  # the nonce of the last request an accepted decision issued
        if start:
            self.send(Start())

    # -- the one place events meet the engine ---------------------------------------------------

    def send(self, event: Event, seconds: int = 0) -> None:
        self.clock.advance(seconds)
        before = self.run
        before_dump = dump(before)
        issued = self.ids.count
        try:
            decision = decide(before, event, self.clock.now, self.ids)
        except IllegalTransition:
            assert dump(before) == before_dump  # nothing changed
            if isinstance(event, HUMAN_EVENTS):
                # A human click is answered with a refusal, never an exception; the one known exception
                # is test_engine.py::test_skip_after_deferred_abort_honours_the_abort (xfail, engine bug).
                assert isinstance(event, Skip) and before.abort_requested_by is not None, event
            return
        assert dump(before) == before_dump  # decide() never mutates its input
        assert self.ids.count - issued <= 1  # at most one new approval request per decision
        self.check_decision(before, event, decision)
        if self.ids.count > issued:
            self.live_nonce = f"n{self.ids.count}"
        self.run = decision.run
        self.audit.extend(decision.audit)
        for entry in decision.audit:  # shown by pytest --hypothesis-show-statistics
            note_event(f"audit {entry.action}")

    def check_decision(self, before: Run, event: Event, decision: Decision) -> None:
        after = decision.run
        check_well_formed(after)

        if decision.refusal is not None:
            assert after is before
            assert isinstance(event, HUMAN_EVENTS)
            assert len(decision.audit) == 1 and decision.audit[0].action.endswith("_refused")
            assert decision.effects == ()
        elif not decision.audit:
            assert dump(after) == dump(before)  # no audit, no change
        for entry in decision.audit:
            assert entry.at == self.clock.now and entry.run_id == before.id

        if self.terminal_run is not None:  # terminal states stay terminal
            assert after is self.terminal_run
            assert decision.refusal is not None or decision.audit == ()
        if after.state.terminal and self.terminal_run is None:
            self.terminal_run = after
            assert ReleaseLock() in decision.effects

        if isinstance(event, Approve) and decision.refusal is None:
            self.check_accepted_approval(before, event)
        if before.state is S.AWAITING_APPROVAL and after.state is S.RUNNING:
            assert isinstance(event, Approve) and decision.refusal is None
            required = before.steps[before.current].spec.approvals_required or before.policy.approvals_required
            assert len(self.accepted[event.nonce]) >= required
        if before.state is S.PAUSED and after.state is not S.PAUSED and not after.state.terminal:
            assert isinstance(event, Retry | Skip) and may_approve(before, event.actor)
            if isinstance(event, Skip):
                assert before.steps[before.current].spec.skippable
        if isinstance(event, Tick) and after is not before:
            assert after.state is S.PAUSED  # time alone only ever pauses a run

    def check_accepted_approval(self, before: Run, event: Approve) -> None:
        assert before.state is S.AWAITING_APPROVAL
        assert may_approve(before, event.actor)
        assert event.nonce == self.live_nonce  # the nonce of the latest request, not an older button
        assert event.step_id == before.steps[before.current].id
        assert event.plan_hash == self.shown_hash
        approvers = self.accepted.setdefault(event.nonce, set())
        assert event.actor.id not in approvers  # distinct approvers only
        approvers.add(event.actor.id)

    # -- rules ------------------------------------------------------------------------------------

    @rule(seconds=advance)
    def start(self, seconds: int) -> None:
        self.send(Start(), seconds)

    @rule(seconds=advance, actor=actors)
    def approve_current(self, seconds: int, actor: Actor) -> None:
        """Click the latest card's button (right nonce, step and plan hash) as a random person."""
        self.approve(seconds, actor, "current", other_step=False, wrong_hash=1)

    @rule(seconds=advance, actor=actors, nonce=st.sampled_from(["current", "current", "previous", "forged"]),
          other_step=st.sampled_from([False, False, True]), wrong_hash=st.integers(0, 4))
    def approve(self, seconds: int, actor: Actor, nonce: str, other_step: bool, wrong_hash: int) -> None:
        request = self.run.approval
        current = request.nonce if request else f"n{self.ids.count}"
        nonces = {"current": current, "previous": f"n{self.ids.count - 1}", "forged": "n999"}
        step_id = self.run.steps[(self.run.current + other_step) % len(self.run.steps)].id
        plan = "f" * 16 if wrong_hash == 0 else self.run.plan_hash
        self.send(Approve(actor=actor, step_id=step_id, nonce=nonces[nonce], plan_hash=plan), seconds)

    @rule(seconds=advance, actor=actors, kind=st.sampled_from([Retry, Retry, Retry, Skip, Skip, Skip, Abort]))
    def human(self, seconds: int, actor: Actor, kind: type[Abort | Retry | Skip]) -> None:
        self.send(kind(actor=actor), seconds)

    @rule(seconds=advance)
    def tick(self, seconds: int) -> None:
        self.send(Tick(), seconds)

    @rule(seconds=st.integers(0, 60), outcome=st.integers(0, 19), data=st.data())
    def worker(self, seconds: int, outcome: int, data: st.DataObject) -> None:
        """Do the run's pending work, as the worker would, with a random result."""
        work = pending_work(self.run)
        if not work:
            return
        effect = work[0]
        if isinstance(effect, CheckGate):
            event: Event = GateChecked(step_id=effect.step_id, ok=outcome > 1, findings=(f"f{outcome}",),
                                       reason=f"gate {outcome}")
        elif isinstance(effect, Observe):
            event = Observed(step_id=effect.step_id, data={"pod_uid": f"uid-{outcome}"})
        elif isinstance(effect, ApplyAction):
            if outcome < 2:
                event = ActionFailed(step_id=effect.step_id, error="boom", permanent=data.draw(st.booleans()))
            else:
                event = ActionApplied(step_id=effect.step_id, detail="annotated")
        elif isinstance(effect, CheckCondition):
            event = ConditionChecked(
                step_id=effect.step_id, done=outcome > 4, detail=f"progress {outcome % 3}",
                failure="crash loop" if outcome == 0 else None,
            )
        else:
            return  # ReleaseLock: nothing left to drive
        self.send(event, seconds)

    @rule(data=st.data())
    def worker_drains(self, data: st.DataObject) -> None:
        """The worker does all the pending work it can, one random result after another, until a human is needed."""
        for _ in range(data.draw(st.integers(1, 8))):
            if not pending_work(self.run) or self.run.state.terminal:
                return
            self.worker(data.draw(st.integers(0, 30)), data.draw(st.integers(0, 19)), data)

    @rule(data=st.data())
    def smooth_step(self, data: st.DataObject) -> None:
        """Two distinct approvers click the latest card, then the worker drives the step with good results."""
        for actor in (APPROVER, APPROVER_2):
            if self.run.state is S.AWAITING_APPROVAL:
                self.approve(data.draw(st.integers(0, 30)), actor, "current", other_step=False, wrong_hash=1)
        for _ in range(5):
            if not pending_work(self.run) or self.run.state.terminal:
                return
            self.worker(data.draw(st.integers(0, 30)), 19, data)

    @precondition(lambda self: self.run.state in (S.RUNNING, S.WAITING))
    @rule(seconds=st.integers(0, 30), actor=actors)
    def abort_while_busy(self, seconds: int, actor: Actor) -> None:
        """Someone aborts while a step is running or waiting: immediate before the action, deferred after it."""
        self.send(Abort(actor=actor), seconds)

    @rule(seconds=st.integers(0, 60), offset=st.integers(0, 3), kind=st.integers(0, 5))
    def stray_worker_event(self, seconds: int, offset: int, kind: int) -> None:
        """A worker result at a random moment, possibly for another step: legal or it raises."""
        step_id = self.run.steps[(self.run.current + offset) % len(self.run.steps)].id
        events: list[Event] = [
            GateChecked(step_id=step_id, ok=True),
            Observed(step_id=step_id, data={"pod_uid": "stray"}),
            ActionApplied(step_id=step_id),
            ActionFailed(step_id=step_id, error="stray"),
            ConditionChecked(step_id=step_id, done=True),
            ConditionChecked(step_id=step_id, done=False, detail="stray"),
        ]
        self.send(events[kind], seconds)

    def teardown(self) -> None:
        note_event(f"final state {self.run.state.value}")  # shown by pytest --hypothesis-show-statistics

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def well_formed(self) -> None:
        check_well_formed(self.run)

    @invariant()
    def audit_is_a_chain(self) -> None:
        if self.audit:
            assert self.audit[0].from_state is S.PLANNED
            assert self.audit[-1].to_state is self.run.state
        for previous, entry in zip(self.audit, self.audit[1:], strict=False):
            assert entry.from_state is previous.to_state
        assert [e.at for e in self.audit] == sorted(e.at for e in self.audit)


RunMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestRunMachine = RunMachine.TestCase

