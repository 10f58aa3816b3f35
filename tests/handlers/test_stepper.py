"""The worker's rules, held by fast tests over the in-memory fakes (no Redis, no tasks): the run
stepper (``handlers.runs.stepper``) driven one decision at a time.

- the worker acts only with the current fencing token: an approved step whose run no longer holds
  the cluster lock pauses saying so, and the cluster is not touched;
- the done-check is asked before acting: a step already done (the pod was replaced meanwhile) is
  recorded done without acting again;
- a failing action pauses the run with the error, a failing check is looked at again later.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from handlers.clusters import ManagedCluster
from handlers.commands.service import CommandService
from handlers.ports import ClusterRef
from handlers.runs.execute import LOST_LOCK
from handlers.runs.stepper import RunStepper
from runbooks.engine.models import Actor, ApprovalPolicy, Run, RunState
from tests.fakes import FakeClock, FakeStrimzi, MemoryClusterLocks, MemoryRunRepository, SequentialIds

REQUESTER, APPROVER = Actor(id="U_REQ"), Actor(id="U_APP")

pytestmark = pytest.mark.timeout(10)


class Harness:
    def __init__(self, fake: FakeStrimzi) -> None:
        self.fake = fake
        self.runs = MemoryRunRepository()
        self.locks = MemoryClusterLocks(self.runs.state)
        clock, ids = FakeClock(datetime.now(UTC)), SequentialIds()
        clusters = {fake.name: ManagedCluster(ref=ClusterRef(name=fake.name, namespace="kafka", kafka=fake.name),
                                              policy=ApprovalPolicy(approvers=(REQUESTER.id, APPROVER.id)))}
        self.service = CommandService(clusters=clusters, runs=self.runs, locks=self.locks, gateway=fake,
                                      admin=fake, clock=clock, ids=ids)
        self.stepper = RunStepper(runs=self.runs, locks=self.locks, clusters=clusters, gateway=fake, admin=fake,
                                  clock=clock, ids=ids, owner="test")

    async def run(self, run_id: str) -> Run:
        loaded = await self.runs.load(run_id)
        assert loaded is not None
        return loaded[0]

    async def start(self, text: str) -> str:
        reply = await self.service.handle_text(text, REQUESTER)
        assert reply.run is not None, reply.text
        return reply.run.id

    async def step_until(self, run_id: str, done: object, *, approve: bool = True, limit: int = 60) -> Run:
        """Step the run (approving what asks, once its advisory gate has reported) until ``done(run)``."""
        for _ in range(limit):
            run = await self.run(run_id)
            if done(run):  # type: ignore[operator]
                return run
            step = run.current_step
            if approve and run.state is RunState.AWAITING_APPROVAL and run.approval and step and step.detail:
                reply = await self.service.actions.approve(run_id, APPROVER, step_id=run.approval.step_id)
                assert reply.ok, reply.text
                continue
            step_result = await self.stepper.step_once(run_id)
            if step_result.finished:
                return await self.run(run_id)
            if step_result.wait_s is not None:  # the fake operator's turn
                await asyncio.sleep(min(step_result.wait_s, 0.02))
        raise AssertionError(f"run {run_id} did not get there: {await self.run(run_id)}")


async def test_an_approved_step_without_the_current_fencing_token_pauses_and_does_not_act() -> None:
    """The cluster lock passed to another run while this one waited for approval: approved now, the
    run pauses saying it no longer holds the lock, and the Kafka resource is not patched."""
    bot = Harness(FakeStrimzi("prod", version="4.3.1", zookeeper=False))
    run_id = await bot.start("config prod set log.retention.ms=3600000")
    patching = await bot.step_until(run_id, lambda r: r.current_step is not None and r.current_step.id
                                    == "patch-config" and r.state is RunState.AWAITING_APPROVAL, approve=False)
    assert patching.fencing_token is not None
    assert bot.locks.hand_to("prod", "r-0other00") > patching.fencing_token
    run = await bot.step_until(run_id, lambda r: r.state is RunState.PAUSED or r.state.terminal)
    assert run.state is RunState.PAUSED, run.state
    assert LOST_LOCK in (run.pause_reason or "")
    assert "log.retention.ms" not in bot.fake.spec["config"] and bot.fake.generation == 1


async def test_the_same_run_with_its_token_patches_the_resource() -> None:
    """The control: with its lock the same run patches the spec and succeeds."""
    bot = Harness(FakeStrimzi("prod", version="4.3.1", zookeeper=False))
    run_id = await bot.start("config prod set log.retention.ms=3600000")
    bot.fake.start()
    try:
        run = await bot.step_until(run_id, lambda r: r.state is RunState.PAUSED or r.state.terminal, limit=300)
    finally:
        await bot.fake.stop()
    assert run.state is RunState.SUCCEEDED, run.pause_reason
    assert bot.fake.spec["config"]["log.retention.ms"] == 3600000


async def test_a_step_already_done_is_recorded_done_without_acting_again() -> None:
    """The pod of broker 0 was replaced after the step recorded its uid and before it acted (a crash
    between the two, say): the done-check says done, so the pod is not annotated a second time."""
    fake = FakeStrimzi("prod", version="4.3.1", zookeeper=False, instant_rolls=True)
    bot = Harness(fake)
    run_id = await bot.start("restart prod --brokers 0")
    observed = await bot.step_until(run_id, lambda r: r.current_step is not None and r.current_step.id == "restart-0"
                                    and bool(r.current_step.observed)
                                    and r.state is RunState.RUNNING)
    step = observed.current_step
    assert step is not None and step.id == "restart-0" and not step.applied
    pod = fake.pods[0]
    assert await fake.request_pod_roll(ClusterRef(name="prod", namespace="kafka", kafka="prod"),
                                       "prod-kafka-0", pod.uid)
    rolls = dict(fake.rolls)
    after = await bot.step_until(run_id, lambda r: r.current_step is None or r.current_step.id != "restart-0")
    done = after.step("restart-0")
    assert done is not None and done.state.value == "done" and not done.applied, done
    assert fake.rolls == rolls, "acted on a step that was already done"


async def test_a_failing_check_is_looked_at_again_and_a_failing_action_pauses() -> None:
    """Kafka down while checking: no decision, the stepper asks to look again after its poll
    interval. Kubernetes down while acting: the run pauses with the error, so a human sees it."""
    fake = FakeStrimzi("prod", version="4.3.1", zookeeper=False, instant_rolls=True)
    bot = Harness(fake)
    run_id = await bot.start("restart prod --brokers 0")
    observed = await bot.step_until(run_id, lambda r: r.current_step is not None and r.current_step.id == "restart-0"
                                    and bool(r.current_step.observed)
                                    and r.state is RunState.RUNNING)

    async def broken(*args: object, **kwargs: object) -> bool:
        raise ConnectionError("the Kubernetes API is down")

    fake.request_pod_roll = broken  # type: ignore[method-assign]
    assert observed.state is RunState.RUNNING
    run = await bot.step_until(run_id, lambda r: r.state is RunState.PAUSED or r.state.terminal)
    assert run.state is RunState.PAUSED
    assert "ConnectionError: the Kubernetes API is down" in (run.pause_reason or "")
