"""Helpers to build runs, steps, policies and cluster snapshots for the engine tests.

Everything is deterministic: time comes from a ``Clock`` the test advances, nonces from ``Ids``,
so a test reads as a script of events and the states they lead to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from runbooks.engine.decide import Decision, decide
from runbooks.engine.events import (
    ActionApplied,
    Approve,
    ConditionChecked,
    Event,
    GateChecked,
    Notify,
    Observed,
    Start,
)
from runbooks.engine.models import Actor, ApprovalPolicy, AuditEntry, Run, RunState, Step, StepArgs, StepSpec, plan_hash
from runbooks.rules.health import BrokerInfo, ClusterSnapshot, PartitionInfo, QuorumInfo, QuorumVoter

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

# The cast: the requester is also a configured approver, so four-eyes is what stops self-approval.
REQUESTER = Actor(id="U_REQ")
APPROVER = Actor(id="U_APP")
APPROVER_2 = Actor(id="U_APP2")
GROUP_MEMBER = Actor(id="U_GRP", groups=("S_KAFKA_OPS",))  # approves through a user group only
OUTSIDER = Actor(id="U_OUT", groups=("S_MARKETING",))


class Ids:
    """A deterministic IdFactory: nonces n1, n2, ... in the order the engine asks for them."""

    def __init__(self) -> None:
        self.count = 0

    def nonce(self) -> str:
        self.count += 1
        return f"n{self.count}"


class Clock:
    """Test-driven time: starts at T0 and moves only when told to."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def policy(**overrides: Any) -> ApprovalPolicy:
    values: dict[str, Any] = {
        "approvers": (REQUESTER.id, APPROVER.id, APPROVER_2.id),
        "approver_groups": ("S_KAFKA_OPS",),
        "four_eyes": True,
        "approvals_required": 1,
        "approval_timeout_s": 600.0,
    }
    values.update(overrides)
    return ApprovalPolicy(**values)


def args_of(step: StepSpec | Step) -> dict[str, Any]:
    """A step's arguments as stored (JSON types), to compare with literal expectations."""
    spec_ = step.spec if isinstance(step, Step) else step
    return spec_.args.model_dump(mode="json")


class EngineStepArgs(StepArgs):
    """The engine's tests' own step kind: the engine carries a step's arguments without reading them,
    so its tests need none of the catalogue's."""

    kind: Literal["restart_broker"] = "restart_broker"
    broker: str


def spec(step_id: str, **overrides: Any) -> StepSpec:
    values: dict[str, Any] = {
        "id": step_id,
        "title": f"Restart broker {step_id}",
        "args": EngineStepArgs(broker=step_id),
        "timeout_s": 300.0,
    }
    values.update(overrides)
    return StepSpec(**values)


def make_run(
    n_steps: int = 3,
    *,
    specs: list[StepSpec] | None = None,
    pol: ApprovalPolicy | None = None,
    requested_by: str = REQUESTER.id,
    run_id: str = "run-1",
) -> Run:
    """A freshly planned run (state ``planned``) over ``specs`` or ``n_steps`` default steps."""
    specs = specs if specs is not None else [spec(f"b{i}") for i in range(n_steps)]
    return Run(
        id=run_id,
        runbook="restart",
        cluster="prod-east",
        requested_by=requested_by,
        created_at=T0,
        updated_at=T0,
        steps=tuple(Step(spec=s) for s in specs),
        plan_hash=plan_hash(specs),
        policy=pol or policy(),
    )


def dump(run: Run) -> dict[str, Any]:
    return run.model_dump(mode="json")


@dataclass
class Driver:
    """Feeds events to ``decide`` and keeps the run, the clock and the whole audit trail."""

    run: Run
    clock: Clock = field(default_factory=Clock)
    ids: Ids = field(default_factory=Ids)
    audit: list[AuditEntry] = field(default_factory=list)
    last: Decision | None = None

    def send(self, event: Event) -> Decision:
        decision = decide(self.run, event, self.clock.now, self.ids)
        self.run = decision.run
        self.audit.extend(decision.audit)
        self.last = decision
        return decision

    @property
    def step_id(self) -> str:
        step = self.run.current_step
        assert step is not None
        return step.id

    def approve(self, actor: Actor = APPROVER, **overrides: Any) -> Decision:
        """Click the current approval button as ``actor`` (nonce and plan hash from the card)."""
        request = self.run.approval
        values: dict[str, Any] = {
            "actor": actor,
            "step_id": request.step_id if request else self.step_id,
            "nonce": request.nonce if request else "no-request",
            "plan_hash": self.run.plan_hash,
        }
        values.update(overrides)
        return self.send(Approve(**values))

    def start(self) -> Decision:
        return self.send(Start())

    def to_act(self) -> None:
        """Gate passes and the world is observed: the step is ready to apply its action."""
        self.send(GateChecked(step_id=self.step_id, ok=True, reason="ok"))
        self.send(Observed(step_id=self.step_id, data={"pod_uid": f"uid-{self.step_id}"}))

    def to_waiting(self) -> None:
        """Gate, observe and apply: the action is in flight and the run waits for its condition."""
        self.to_act()
        self.send(ActionApplied(step_id=self.step_id, detail="annotated"))

    def finish_step(self) -> Decision:
        """Drive the current (approved, running) step until its condition reports done."""
        self.to_waiting()
        return self.send(ConditionChecked(step_id=self.step_id, done=True, detail="back in ISR"))


def planned() -> Driver:
    """A driver whose run is written but not started."""
    return Driver(make_run())


def started(n_steps: int = 3, **kwargs: Any) -> Driver:
    """A driver whose run has been started (awaiting approval of its first step)."""
    driver = Driver(make_run(n_steps, **kwargs))
    driver.start()
    return driver


def running(n_steps: int = 3, **kwargs: Any) -> Driver:
    """A driver whose first step is approved and running (gate phase)."""
    driver = started(n_steps, **kwargs)
    driver.approve()
    return driver


def effect_kinds(decision: Decision) -> list[str]:
    """The kinds of a decision's effects, notifications left out."""
    return [e.kind for e in decision.effects if not isinstance(e, Notify)]


def assert_chain(driver: Driver) -> None:
    """Each audit entry starts in the state the one before it ended in."""
    for before, after in zip(driver.audit, driver.audit[1:], strict=False):
        assert after.from_state == before.to_state, (before, after)


def finished_run() -> Driver:
    """A driver whose one-step run succeeded."""
    driver = running(1)
    driver.finish_step()
    assert driver.run.state is RunState.SUCCEEDED
    return driver


def paused() -> Driver:
    """A driver whose first step's gate failed: the run is paused on it."""
    driver = running()
    driver.send(GateChecked(step_id="b0", ok=False, reason="URP 3"))
    return driver


# -- cluster snapshots ------------------------------------------------------------------------


def part(
    topic: str,
    partition: int = 0,
    *,
    leader: int | None,
    replicas: tuple[int, ...],
    isr: tuple[int, ...],
    adding: tuple[int, ...] = (),
    removing: tuple[int, ...] = (),
) -> PartitionInfo:
    return PartitionInfo(
        topic=topic, partition=partition, leader=leader, replicas=replicas, isr=isr, adding=adding, removing=removing
    )


def voter(node: int, caught_up_ms: int | None) -> QuorumVoter:
    return QuorumVoter(id=node, log_end_offset=100, last_caught_up_ms=caught_up_ms)


def snapshot(
    *partitions: PartitionInfo,
    brokers: tuple[int, ...] = (0, 1, 2),
    fenced: tuple[int, ...] = (),
    controller: int | None = None,
    quorum: QuorumInfo | None = None,
    min_isr: dict[str, int] | None = None,
    default_min_isr: int = 2,
) -> ClusterSnapshot:
    return ClusterSnapshot(
        taken_at=T0,
        brokers=tuple(BrokerInfo(id=b, host=f"broker-{b}", port=9092, fenced=b in fenced) for b in brokers),
        controller_id=controller,
        quorum=quorum,
        partitions=partitions,
        min_isr=min_isr or {},
        default_min_isr=default_min_isr,
    )
