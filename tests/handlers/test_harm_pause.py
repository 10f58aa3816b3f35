"""Each pause rule of a step that waits on the operator, asked directly of the step executors over the
in-memory Strimzi (its operator not running: the test sets what Kubernetes and the operator report),
with a clock the test sets. Then one run through the real worker: a change that keeps a broker from
starting pauses the run within seconds, not at the step's 600 s timeout."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from handlers.ports import ClusterRef
from handlers.steps.base import DoneResult, StepContext
from handlers.steps.registry import EXECUTORS
from runbooks.catalogue.steps import parse_step_args
from runbooks.engine.models import Run, RunState, Step, StepSpec, StepState
from tests.fakes.strimzi import FakeStrimzi
from tests.fakes.time import FakeClock
from tests.handlers.test_change_runbooks import Bot

T = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
REF = ClusterRef(name="prod", namespace="kafka", kafka="prod")


def cluster(*, starts: dict[int, float | None]) -> tuple[FakeStrimzi, FakeClock]:
    """Three Ready brokers whose pods started an hour ago and took ``starts[n]`` seconds to be Ready
    (None: Kubernetes reports no Ready time for it)."""
    clock = FakeClock(T)
    fake = FakeStrimzi("prod", version="4.3.1", zookeeper=False, clock=clock.now)
    for node, seconds in starts.items():
        pod = fake.pods[node]
        pod.ready_since = None if seconds is None else pod.created_at + timedelta(seconds=seconds)  # type: ignore[operator]
    return fake, clock


def restarted(fake: FakeStrimzi, node: int, at: datetime, *, crashed: bool = False) -> None:
    """What Kubernetes shows after the operator deleted the pod and the new one started at ``at``."""
    pod = fake.pods[node]
    pod.uid, pod.created_at, pod.started_at, pod.ready, pod.ready_since = str(uuid.uuid4()), at, at, False, None
    pod.crashed, pod.restart_count = crashed, 1 if crashed else 0


def waiting(kind: str, args: dict[str, Any], *, attempt_at: datetime, observed: dict[str, Any] | None = None) -> Step:
    spec = StepSpec(id="s", title="the step", args=parse_step_args({"kind": kind, **args}), needs_approval=False,
                    timeout_s=600.0)
    return Step(spec=spec, state=StepState.WAITING, applied=True, observed=observed or {}, started_at=attempt_at,
                deadline=attempt_at + timedelta(seconds=600))


def follow(fake: FakeStrimzi, node: int, *, attempt_at: datetime) -> Step:
    return waiting("follow-roll", {"broker": node, "pod": f"prod-kafka-{node}", "uid": fake.pods[node].uid,
                                   "expect": {}, "may_skip_roll": False, "settle_generation": None},
                   attempt_at=attempt_at)


async def check(fake: FakeStrimzi, clock: FakeClock, step: Step) -> DoneResult:
    ctx = StepContext(cluster=REF, gateway=fake, admin=fake, clock=clock)
    return await EXECUTORS[step.spec.kind].done(ctx, step)


@pytest.mark.timeout(10)
async def test_a_new_pod_in_a_crash_loop_pauses_at_once() -> None:
    """Two seconds after the operator restarted broker 1, its new pod is in CrashLoopBackOff: the
    check is a failure naming the broker, the pod and what Kubernetes says, not a wait."""
    fake, clock = cluster(starts={0: 20, 1: 20, 2: 20})
    step = follow(fake, 1, attempt_at=T)
    restarted(fake, 1, T, crashed=True)
    clock.at = T + timedelta(seconds=2)
    result = await check(fake, clock, step)
    assert not result.done
    assert result.failure == ("broker 1 is down (pod prod-kafka-1: CrashLoopBackOff, 1 container restart): its new "
                              "pod, which the operator started for this change, cannot run, and waiting will not "
                              "change that")


@pytest.mark.timeout(10)
async def test_a_pod_crashing_in_place_under_a_live_change_pauses_at_once() -> None:
    """Broker 1 was never restarted (same pod) but its container keeps exiting: harm too."""
    fake, clock = cluster(starts={0: 20, 1: 20, 2: 20})
    step = follow(fake, 1, attempt_at=T)
    fake.crash(1)
    result = await check(fake, clock, step)
    assert result.failure is not None and result.failure.startswith(
        "broker 1 is down (pod prod-kafka-1: CrashLoopBackOff, 1 container restart): its pod cannot run")


@pytest.mark.timeout(10)
async def test_the_operators_fatal_verdict_on_the_change_pauses_and_an_older_one_does_not() -> None:
    """NotReady FatalProblem at the latest generation pauses with the operator's own message; the same
    condition left from the generation before the change is not about it, and the step keeps waiting."""
    fake, clock = cluster(starts={0: 20, 1: 20, 2: 20})
    step = follow(fake, 1, attempt_at=T)
    restarted(fake, 1, T)
    clock.at = T + timedelta(seconds=5)
    fake.generation, fake.observed = 4, 3
    fake.ready, fake.reason, fake.message = False, "FatalProblem", "Error while waiting for restarted pod prod-kafka-1"
    waiting_still = await check(fake, clock, step)
    assert waiting_still.failure is None and waiting_still.detail == "broker 1: new pod started, not Ready yet"
    fake.observed = 4
    paused = await check(fake, clock, step)
    assert paused.failure == ("the Kafka resource is NotReady at generation 4: FatalProblem: Error while waiting for "
                              "restarted pod prod-kafka-1")


@pytest.mark.timeout(10)
async def test_the_deadline_is_three_times_the_slowest_sibling_start_and_its_boundary() -> None:
    """Siblings took 20 s and 30 s to start: 90 s from the new pod's creation is still in time (the
    step keeps waiting), 91 s is not, and the reason says the rule and where its numbers come from."""
    fake, clock = cluster(starts={0: 20, 1: 12, 2: 30})
    step = follow(fake, 1, attempt_at=T - timedelta(seconds=40))
    restarted(fake, 1, T)
    clock.at = T + timedelta(seconds=90)
    in_time = await check(fake, clock, step)
    assert in_time.failure is None and not in_time.done
    clock.at = T + timedelta(seconds=91)
    late = await check(fake, clock, step)
    assert late.failure == (
        "broker 1's pod prod-kafka-1, created 91 s ago, is not Ready (running, not Ready). A healthy restart here "
        "takes at most 90 s: the larger of 60 s and 3 x the slowest start of this cluster's brokers (30 s, broker 2, "
        "from its start to Ready as Kubernetes reports it)")


@pytest.mark.timeout(10)
async def test_a_healthy_slow_restart_within_the_deadline_does_not_pause() -> None:
    """The operator waited 5 minutes before restarting broker 1 (its availability back-off): that does not
    count. The new pod takes 85 s, within the 90 s allowance: no pause, and once Ready the step is done."""
    fake, clock = cluster(starts={0: 30, 1: 30, 2: 30})
    step = follow(fake, 1, attempt_at=T - timedelta(minutes=5))
    restarted(fake, 1, T)
    clock.at = T + timedelta(seconds=85)
    slow = await check(fake, clock, step)
    assert slow.failure is None and slow.detail == "broker 1: new pod started, not Ready yet"
    fake.pods[1].ready, fake.pods[1].ready_since = True, clock.at
    done = await check(fake, clock, step)
    assert done.done and done.detail == "broker 1 restarted (new pod), back in ISR, 0 URP"


@pytest.mark.timeout(10)
async def test_retry_gives_a_fresh_allowance_and_no_start_time_means_strimzis_300_s() -> None:
    """No sibling reports a Ready time: the allowance is 300 s. After a Retry at T+250 the clock counts
    from the retry, so at T+500 (250 s into the attempt) the step still waits; at T+551 it pauses."""
    fake, clock = cluster(starts={0: None, 1: None, 2: None})
    restarted(fake, 1, T)
    step = follow(fake, 1, attempt_at=T + timedelta(seconds=250))
    step = step.model_copy(update={"spec": step.spec.model_copy(update={"args": step.spec.args.model_copy(
        update={"uid": "the-pod-before-the-roll"})})})
    clock.at = T + timedelta(seconds=500)
    assert (await check(fake, clock, step)).failure is None
    clock.at = T + timedelta(seconds=551)
    failure = (await check(fake, clock, step)).failure
    assert failure is not None and "created 551 s ago" in failure
    assert "takes at most 300 s: no broker pod reports its start-up time, so Strimzi's own 300 s" in failure


@pytest.mark.timeout(10)
async def test_an_undo_step_waits_out_the_crash_loop_it_repairs_but_not_a_new_one() -> None:
    """The undo's step for broker 1 was planned with broker 1 crash-looping (and broker 2 down, its
    step later): that old pod and broker 2 are what the undo repairs, so the step waits; the new pod
    the operator starts crash-looping as well pauses it."""
    fake, clock = cluster(starts={0: 20, 1: 20, 2: 20})
    fake.crash(1)
    fake.crash(2)
    step = follow(fake, 1, attempt_at=T)
    step = step.model_copy(update={"spec": step.spec.model_copy(update={"args": step.spec.args.model_copy(
        update={"down_at_plan": True, "tolerate": (2,)})})})
    assert (await check(fake, clock, step)).failure is None
    restarted(fake, 1, T, crashed=True)
    failure = (await check(fake, clock, step)).failure
    assert failure is not None and failure.startswith("broker 1 is down (pod prod-kafka-1: CrashLoopBackOff, 1 "
                                                      "container restart): its new pod")


@pytest.mark.timeout(10)
async def test_a_patch_the_operator_applies_pauses_when_a_broker_crash_loops() -> None:
    """patch-kafka waiting for the operator (a key applied live): a broker's container crash-looping
    since the patch pauses the step instead of waiting for Ready."""
    fake, clock = cluster(starts={0: 20, 1: 20, 2: 20})
    fake.spec["config"]["log.retention.ms"] = 1000
    fake.generation = 2
    step = waiting("patch-kafka", {"edits": [{"path": ["config", "log.retention.ms"], "value": 1000}],
                                   "wait": "settled", "no_roll": True},
                   attempt_at=T, observed={"uids": {str(n): p.uid for n, p in fake.pods.items()}})
    assert (await check(fake, clock, step)).detail.startswith("the operator is reconciling")
    fake.crash(2)
    failure = (await check(fake, clock, step)).failure
    assert failure == ("broker 2 is down (pod prod-kafka-2: CrashLoopBackOff, 1 container restart) since the change "
                       "was applied; the operator cannot bring it back by waiting")


@pytest.mark.timeout(10)
async def test_waiting_for_the_operators_end_pauses_on_its_fatal_verdict() -> None:
    """await-operator (the roll's end): the operator reporting FatalProblem for the generation it waits for
    pauses the step with that verdict."""
    fake, clock = cluster(starts={0: 20, 1: 20, 2: 20})
    fake.generation = fake.observed = 2
    fake.ready, fake.reason = False, "FatalProblem"
    fake.message = "Pod prod-kafka-0 is unschedulable or is not starting"
    step = waiting("await-operator", {"kafka_version": "4.3.1", "generation": 2}, attempt_at=T)
    failure = (await check(fake, clock, step)).failure
    assert failure == ("the Kafka resource is NotReady at generation 2: FatalProblem: Pod prod-kafka-0 is "
                       "unschedulable or is not starting")


@pytest.mark.timeout(60)
async def test_a_change_that_keeps_a_broker_from_starting_pauses_the_run_within_seconds(make_bot) -> None:  # type: ignore[no-untyped-def]
    """Through the real worker: the approved roll's first broker comes back in a crash loop; the run
    pauses on that broker's step at once with what Kubernetes says, and the roll goes no further."""
    fake = FakeStrimzi("prod", version="4.3.1", zookeeper=False)
    fake.poison = {"auto.create.topics.enable": "false"}
    bot: Bot = await make_bot(fake)
    reply = await bot.say("config prod set auto.create.topics.enable=false")
    assert reply.run is not None, reply.text
    approved: list[float] = []

    def paused(run: Run) -> bool:
        if not approved and run.state is not RunState.AWAITING_APPROVAL and run.current > 1:
            approved.append(time.monotonic())
        return run.state is RunState.PAUSED

    run = await bot.drive(reply.run.id, until=paused, seconds=30)
    assert approved and time.monotonic() - approved[0] < 10, "paused within seconds, not at the 600 s timeout"
    assert run.current_step is not None and run.current_step.id == "roll-0"
    assert (run.pause_reason or "").startswith("Broker 0: restarted with auto.create.topics.enable=false: broker 0 is "
                                               "down (pod prod-kafka-0: CrashLoopBackOff, 1 container restart)")
    assert fake.restart_order == [0], "the operator stops at the broken broker, and so does the run"
