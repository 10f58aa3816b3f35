"""The executors of ``--engine cruise-control`` against the in-memory KafkaRebalances and Strimzi:
create-rebalance (the run's resource, no auto-approval, done at ProposalReady, a pause on NotReady),
run-rebalance (the proposal's figures as the gate's findings, a stale proposal refreshed, approve
in the expected state, progress while Rebalancing, a pause on NotReady or Stopped) and
stop-rebalance (stop while Rebalancing or PendingProposal, done when nothing of the run runs)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from handlers.ports import ClusterRef
from handlers.steps.base import StepContext, StepError
from handlers.steps.rebalance import CreateRebalanceStep, RunRebalanceStep, StopRebalanceStep
from runbooks.catalogue.rebalance_steps import CreateRebalanceArgs, RunRebalanceArgs, StopRebalanceArgs
from runbooks.engine.models import Step, StepSpec
from runbooks.rules.rebalance import OptimizationSummary, RebalanceAction, RebalanceState
from tests.fakes.rebalances import FakeRebalances
from tests.fakes.strimzi import FakeStrimzi

pytestmark = pytest.mark.timeout(10)

REF = ClusterRef(name="c", namespace="kafka", kafka="c")
NAME = "c-kco-r-0000abcd-drain"
NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
RESULT = OptimizationSummary(replica_movements=42, leader_movements=7, data_to_move_mb=1234.0,
                             balancedness_before=71.25, balancedness_after=94.5)
FIGURES = ("Replica movements: 42; leader movements: 7", "Data to move: 1,234 MB",
           "Balancedness: 71.2 before → 94.5 after (100 is perfectly balanced)")


class FixedClock:
    def now(self) -> datetime:
        return NOW


def context(rebalances: FakeRebalances | None = None, *, cruise_control: bool = True) -> StepContext:
    fake = FakeStrimzi("c", version="4.3.1", zookeeper=False, brokers=3, instant_rolls=True)
    fake.cruise_control = cruise_control
    return StepContext(cluster=REF, gateway=fake, admin=fake, clock=FixedClock(), rebalances=rebalances,
                       run_id="r-0000abcd")


def step(args: CreateRebalanceArgs | RunRebalanceArgs | StopRebalanceArgs, **observed: object) -> Step:
    return Step(spec=StepSpec(id="s", title="s", args=args), observed=dict(observed))


CREATE = CreateRebalanceArgs(label="drain", mode="remove-brokers", brokers=(2,))
RUN = RunRebalanceArgs(label="drain")
STOP = StopRebalanceArgs(labels=("drain", "back"))


async def test_create_makes_the_runs_rebalance_once_and_is_done_at_proposal_ready() -> None:
    port = FakeRebalances()
    ctx, executor = context(port), CreateRebalanceStep()
    assert (await executor.gate(ctx, step(CREATE), CREATE)).ok
    assert await executor.act(ctx, step(CREATE), CREATE) == f"created KafkaRebalance {NAME} (remove-brokers)"
    await executor.act(ctx, step(CREATE), CREATE)  # a resumed run asks again: still one resource
    assert port.created == [("kafka", NAME)]
    made = port.objects[("kafka", NAME)]
    assert (made.cluster_label, made.mode, made.brokers, made.annotations) == ("c", "remove-brokers", (2,), {})
    assert made.run_id == "r-0000abcd"  # labelled as the run's: no separate rebalance card
    waiting = await executor.done(ctx, step(CREATE), CREATE)
    assert not waiting.done and waiting.detail == "waiting for the operator to ask Cruise Control for a proposal"
    port.operator_moves("kafka", NAME, RebalanceState.PENDING_PROPOSAL)
    assert (await executor.done(ctx, step(CREATE), CREATE)).detail == "Cruise Control is computing a proposal"
    port.operator_moves("kafka", NAME, RebalanceState.PROPOSAL_READY, optimization=RESULT)
    ready = await executor.done(ctx, step(CREATE), CREATE)
    assert ready.done and ready.detail == "proposal ready: " + "; ".join(FIGURES)


async def test_create_pauses_on_not_ready_and_its_gate_refuses_without_cruise_control() -> None:
    port = FakeRebalances()
    ctx = context(port)
    await CreateRebalanceStep().act(ctx, step(CREATE), CREATE)
    port.operator_moves("kafka", NAME, RebalanceState.NOT_READY, reason="CruiseControlRestException",
                        message="Not enough valid windows")
    result = await CreateRebalanceStep().done(ctx, step(CREATE), CREATE)
    assert not result.done and result.failure == (f"KafkaRebalance {NAME} is NotReady: CruiseControlRestException: "
                                                  "Not enough valid windows")
    gate = await CreateRebalanceStep().gate(context(port, cruise_control=False), step(CREATE), CREATE)
    assert not gate.ok and gate.reason == ("the Kafka resource c no longer has spec.cruiseControl: there is no "
                                           "Cruise Control to ask")


async def test_an_executor_without_the_rebalance_port_fails_the_step_permanently() -> None:
    with pytest.raises(StepError) as error:
        await CreateRebalanceStep().act(context(None), step(CREATE), CREATE)
    assert error.value.permanent


async def test_run_gate_shows_the_proposals_figures_and_approve_is_written_in_proposal_ready() -> None:
    port = FakeRebalances()
    ctx, executor = context(port), RunRebalanceStep()
    made = port.create("kafka", NAME, cluster="c", mode="remove-brokers", brokers=(2,))
    port.operator_moves("kafka", NAME, RebalanceState.PROPOSAL_READY, at=NOW - timedelta(minutes=3),
                        optimization=RESULT)
    gate = await executor.gate(ctx, step(RUN), RUN)
    assert gate.ok and gate.findings == FIGURES and gate.reason == f"proposal of KafkaRebalance {NAME}, 3 min old"
    observed = await executor.observe(ctx, step(RUN), RUN)
    assert observed == {"name": NAME, "uid": made.uid, "approved_figures": list(FIGURES)}
    assert await executor.act(ctx, step(RUN, **observed), RUN) == (f"approved KafkaRebalance {NAME} "
                                                                   "(strimzi.io/rebalance=approve)")
    assert port.annotations_written == [("kafka", NAME, "approve")]
    assert port.objects[("kafka", NAME)].annotations == {"strimzi.io/rebalance": "approve"}  # no auto-approval
    waiting = await executor.done(ctx, step(RUN, **observed), RUN)
    assert not waiting.done and waiting.detail == "waiting for the operator to start the approved proposal"
    port.operator_moves("kafka", NAME, RebalanceState.REBALANCING)
    assert (await executor.done(ctx, step(RUN), RUN)).detail == "rebalancing: progress not reported yet"
    port.set_progress("kafka", NAME, 37.5, 12)
    assert (await executor.done(ctx, step(RUN), RUN)).detail == "rebalancing: 37.5 % of the data moved, ETA 12 min"
    port.operator_moves("kafka", NAME, RebalanceState.READY)
    done = await executor.done(ctx, step(RUN), RUN)
    assert done.done and done.detail == f"KafkaRebalance {NAME} Ready: Cruise Control's proposal executed"


async def test_a_stale_proposal_is_refreshed_by_the_gate_and_approved_only_once_fresh() -> None:
    port = FakeRebalances()
    ctx, executor = context(port), RunRebalanceStep()
    port.create("kafka", NAME, cluster="c", mode="remove-brokers", brokers=(2,))
    port.operator_moves("kafka", NAME, RebalanceState.PROPOSAL_READY, at=NOW - timedelta(minutes=11),
                        optimization=RESULT)
    stale = await executor.gate(ctx, step(RUN), RUN)
    assert not stale.ok
    assert stale.reason == "the proposal was 11 min old: asked Cruise Control for a fresh one (refresh)"
    assert port.annotations_written == [("kafka", NAME, "refresh")]
    pending = await executor.gate(ctx, step(RUN), RUN)  # the refresh not acted on yet: nothing written again
    assert not pending.ok and port.annotations_written == [("kafka", NAME, "refresh")]
    port.operator_moves("kafka", NAME, RebalanceState.PENDING_PROPOSAL)
    computing = await executor.gate(ctx, step(RUN), RUN)
    assert not computing.ok and computing.reason == ("Cruise Control is computing a fresh proposal: approve once "
                                                     "its figures are shown")
    port.operator_moves("kafka", NAME, RebalanceState.PROPOSAL_READY, at=NOW, optimization=RESULT)
    assert (await executor.gate(ctx, step(RUN), RUN)).ok


@pytest.mark.parametrize(("state", "reason", "failure"), [
    (RebalanceState.NOT_READY, "CruiseControlRestException",
     f"KafkaRebalance {NAME} is NotReady: CruiseControlRestException"),
    (RebalanceState.STOPPED, "", f"KafkaRebalance {NAME} was stopped: Cruise Control finished the batch in flight "
     "and cancelled the rest"),
])
async def test_a_rebalance_that_fails_or_is_stopped_pauses_the_run_with_the_reason(
        state: RebalanceState, reason: str, failure: str) -> None:
    port = FakeRebalances()
    port.create("kafka", NAME, cluster="c", mode="remove-brokers", brokers=(2,))
    port.operator_moves("kafka", NAME, state, reason=reason)
    result = await RunRebalanceStep().done(context(port), step(RUN), RUN)
    assert not result.done and result.failure == failure


async def test_approve_is_not_written_when_the_rebalance_already_runs() -> None:
    port = FakeRebalances()
    made = port.create("kafka", NAME, cluster="c", mode="remove-brokers", brokers=(2,))
    port.operator_moves("kafka", NAME, RebalanceState.REBALANCING)
    text = await RunRebalanceStep().act(context(port), step(RUN, name=NAME, uid=made.uid), RUN)
    assert text == f"KafkaRebalance {NAME} was already approved" and port.annotations_written == []


async def test_stop_asks_stop_of_what_runs_and_is_done_when_nothing_of_the_run_runs() -> None:
    port = FakeRebalances()
    ctx, executor = context(port), StopRebalanceStep()
    port.create("kafka", NAME, cluster="c", mode="remove-brokers", brokers=(2,))
    port.operator_moves("kafka", NAME, RebalanceState.REBALANCING)
    back = NAME.replace("-drain", "-back")
    port.create("kafka", back, cluster="c", mode="add-brokers", brokers=(2,))
    port.operator_moves("kafka", back, RebalanceState.PENDING_PROPOSAL)
    assert await executor.act(ctx, step(STOP), STOP) == f"asked to stop {NAME}, {back}"
    assert port.annotations_written == [("kafka", NAME, "stop"), ("kafka", back, "stop")]
    waiting = await executor.done(ctx, step(STOP), STOP)
    assert not waiting.done and waiting.detail == f"waiting for {NAME} to stop"
    port.operator_moves("kafka", NAME, RebalanceState.STOPPED)
    port.operator_moves("kafka", back, RebalanceState.STOPPED)
    done = await executor.done(ctx, step(STOP), STOP)
    assert done.done and done.detail == "no rebalance of this run is running"


async def test_stop_catches_an_approve_the_operator_had_not_acted_on_yet() -> None:
    """Abort right after approve was written: the rebalance starts after stop's act looked, so the
    done-check asks stop once it is Rebalancing, and is not done until it stopped."""
    port = FakeRebalances()
    ctx, executor = context(port), StopRebalanceStep()
    made = port.create("kafka", NAME, cluster="c", mode="remove-brokers", brokers=(2,))
    port.operator_moves("kafka", NAME, RebalanceState.PROPOSAL_READY)
    await port.annotate(REF, NAME, RebalanceAction.APPROVE, expected_state=RebalanceState.PROPOSAL_READY,
                        expected_uid=made.uid)
    assert await executor.act(ctx, step(STOP), STOP) == "no rebalance of this run to stop"
    assert not (await executor.done(ctx, step(STOP), STOP)).done
    port.operator_moves("kafka", NAME, RebalanceState.REBALANCING)
    assert not (await executor.done(ctx, step(STOP), STOP)).done
    assert port.annotations_written[-1] == ("kafka", NAME, "stop")
    port.operator_moves("kafka", NAME, RebalanceState.STOPPED)
    assert (await executor.done(ctx, step(STOP), STOP)).done


async def test_stop_with_no_rebalance_of_the_run_is_done_at_once() -> None:
    port = FakeRebalances()
    ctx = context(port)
    assert (await StopRebalanceStep().done(ctx, step(STOP), STOP)).done
    assert port.annotations_written == []
