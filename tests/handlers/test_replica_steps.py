"""The executors that move replicas and replace nodes, against the in-memory cluster (FakeStrimzi:
Kafka's reassignment and throttle behaviour, Strimzi's node pools), step by step as the worker calls
them: gate, observe, act, done."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.ports import ClusterRef
from handlers.replica_moves import (
    THROTTLE_RATE_KEYS,
    THROTTLED_REPLICAS_KEYS,
    ReplicaTarget,
    ReplicationThrottle,
    ThrottleGaps,
    ThrottlesPresent,
)
from handlers.steps.base import StepContext
from handlers.steps.registry import REGISTERED
from handlers.steps.restart import TOPIC_OPERATOR_WARNING
from runbooks.catalogue.replace_broker import ReplacePodAndPvcArgs
from runbooks.catalogue.replica_steps import (
    CancelMovesArgs,
    CatchUpArgs,
    ClearThrottlesArgs,
    MoveReplicasArgs,
    PartitionTarget,
)
from runbooks.catalogue.restart import PreflightArgs
from runbooks.catalogue.scale import AwaitPoolNodesArgs, PatchNodePoolArgs
from runbooks.engine.models import Step, StepArgs, StepSpec
from runbooks.rules.reassignment import PartitionMove
from tests.fakes import FakeClock, FakeStrimzi

pytestmark = pytest.mark.timeout(10)
MiB = 1024**2
RATE = 10 * MiB
REF = ClusterRef(name="c", namespace="kafka", kafka="c")


def cluster() -> tuple[FakeStrimzi, StepContext]:
    """4 brokers; topic t: 3 partitions of 100 MiB, each on 3 brokers, none on broker 3."""
    fake = FakeStrimzi("c", version="4.3.1", zookeeper=False, brokers=4, instant_rolls=True)
    del fake.topics["orders"]  # the fake's default topic, on every broker
    fake.create_topic("t", {0: [0, 1, 2], 1: [1, 2, 0], 2: [2, 0, 1]}, {0: 100 * MiB, 1: 100 * MiB, 2: 100 * MiB})
    return fake, StepContext(cluster=REF, gateway=fake, admin=fake, clock=FakeClock())


# Move one replica of t-0 and of t-1 onto broker 3 (a fill).
MOVES = (PartitionMove(topic="t", partition=0, old=(0, 1, 2), new=(0, 1, 3), leader=0, size_bytes=100 * MiB),
         PartitionMove(topic="t", partition=1, old=(1, 2, 0), new=(1, 3, 0), leader=1, size_bytes=100 * MiB))


class Driver:
    """One step as the worker drives it; ``applied`` and ``observed`` carried as the run record does."""

    def __init__(self, ctx: StepContext, args: StepArgs) -> None:
        self.ctx = ctx
        self.step = Step(spec=StepSpec(id="s", title="s", args=args))
        self.executor = REGISTERED[args.kind]

    async def gate(self) -> Any:
        return await self.executor.gate(self.ctx, self.step)

    async def observe_and_act(self) -> str:
        observed = await self.executor.observe(self.ctx, self.step)
        self.step = self.step.model_copy(update={"observed": observed})
        detail = await self.executor.act(self.ctx, self.step)
        self.step = self.step.model_copy(update={"applied": True})
        return detail

    async def done(self) -> Any:
        return await self.executor.done(self.ctx, self.step)


def replicas(fake: FakeStrimzi, p: int) -> list[int]:
    return fake._replicas(fake.topics["t"][p])


async def test_a_batch_is_throttled_submitted_and_done_only_when_every_partition_is_at_target() -> None:
    fake, ctx = cluster()
    move = Driver(ctx, MoveReplicasArgs(moves=MOVES, throttle_bytes_per_s=RATE))
    assert (await move.gate()).ok
    assert not (await move.done()).done  # asked first: nothing has moved
    assert await move.observe_and_act() == "throttled brokers 0, 1, 2, 3 at 10 MiB/s; submitted 2 moves"
    assert fake.broker_throttles[3] == {"leader.replication.throttled.rate": str(RATE),
                                        "follower.replication.throttled.rate": str(RATE)}
    assert fake.topic_throttles["t"]["follower.replication.throttled.replicas"] == "0:3,1:3"
    waiting = await move.done()
    assert not waiting.done and waiting.failure is None
    assert waiting.detail == "0/2 partitions moved, 2 in flight; 200 MiB left at 10 MiB/s, ETA about 20 s"
    fake.advance_moves(5)  # half copied at the throttle
    assert (await move.done()).detail == "0/2 partitions moved, 2 in flight; 100 MiB left at 10 MiB/s, ETA about 10 s"
    fake.advance_moves(5)
    finished = await move.done()
    assert finished.done and finished.detail == "2 partitions at their target replicas"
    assert replicas(fake, 0) == [0, 1, 3] and replicas(fake, 1) == [1, 3, 0]


async def test_acting_again_after_a_crash_resubmits_nothing_already_moved() -> None:
    """The worker asks done first on resume; and even an act repeated after the moves finished submits none."""
    fake, ctx = cluster()
    first = Driver(ctx, MoveReplicasArgs(moves=MOVES, throttle_bytes_per_s=RATE))
    await first.observe_and_act()
    fake.advance_moves(10)
    resumed = Driver(ctx, MoveReplicasArgs(moves=MOVES, throttle_bytes_per_s=RATE))
    assert (await resumed.done()).done
    assert await resumed.observe_and_act() == ("throttled brokers 0, 1, 2, 3 at 10 MiB/s; submitted 0 moves "
                                               "(2 already at target)")
    assert await fake.reassignments_in_flight(REF, "") == []


async def test_a_broker_that_dies_mid_move_pauses_and_no_new_batch_starts() -> None:
    fake, ctx = cluster()
    move = Driver(ctx, MoveReplicasArgs(moves=MOVES, throttle_bytes_per_s=RATE))
    await move.observe_and_act()
    fake.crash(3)
    died = await move.done()
    assert not died.done and died.failure == (
        "broker(s) 3 not registered and alive: a broker died mid-move: no new batch submitted. Bring it back, then "
        "Retry (or Abort: the cleanup cancels the moves and clears the throttles)")
    following = Driver(ctx, MoveReplicasArgs(moves=MOVES[:1], throttle_bytes_per_s=RATE))
    gate = await following.gate()
    assert not gate.ok and gate.reason.startswith("broker(s) 3 not registered and alive")


async def test_a_reassignment_the_run_did_not_start_holds_the_next_batch() -> None:
    fake, ctx = cluster()
    fake.topic_throttles["t"] = {"follower.replication.throttled.replicas": "2:3"}
    fake.broker_throttles[3] = {"follower.replication.throttled.rate": "1"}
    await fake.submit_reassignments(REF, "", [ReplicaTarget(topic="t", partition=2, replicas=(2, 0, 3))])
    gate = await Driver(ctx, MoveReplicasArgs(moves=MOVES, throttle_bytes_per_s=RATE)).gate()
    assert not gate.ok and gate.reason == ("a reassignment this run did not start is in flight (t-2): let it finish "
                                           "or cancel it, then Retry")


async def test_cancel_moves_cancels_what_is_in_flight_and_says_which_partitions_got_there() -> None:
    fake, ctx = cluster()
    await Driver(ctx, MoveReplicasArgs(moves=MOVES[:1], throttle_bytes_per_s=RATE)).observe_and_act()
    fake.advance_moves(20)  # t-0 is at its target
    await Driver(ctx, MoveReplicasArgs(moves=MOVES[1:], throttle_bytes_per_s=RATE)).observe_and_act()  # t-1 moving
    targets = (PartitionTarget(topic="t", partition=0, replicas=(0, 1, 3)),
               PartitionTarget(topic="t", partition=1, replicas=(1, 3, 0)))
    cancel = Driver(ctx, CancelMovesArgs(partitions=targets))
    assert not (await cancel.done()).done
    assert await cancel.observe_and_act() == "cancelled the moves of t-1"
    done = await cancel.done()
    assert done.done and done.detail == ("1 of 2 partitions at their target replicas; 1 not (left at their replicas "
                                         "before their last move); cancelled: t-1")
    assert replicas(fake, 1) == [1, 2, 0] and replicas(fake, 0) == [0, 1, 3]
    assert await fake.reassignments_in_flight(REF, "") == []


async def test_clear_throttles_removes_every_throttle_the_run_set() -> None:
    fake, ctx = cluster()
    await Driver(ctx, MoveReplicasArgs(moves=MOVES, throttle_bytes_per_s=RATE)).observe_and_act()
    clear = Driver(ctx, ClearThrottlesArgs(brokers=(0, 1, 2, 3), topics=("t",)))
    assert (await clear.done()).detail == "throttles still on brokers 0, 1, 2, 3, topics t"
    assert await clear.observe_and_act() == "removed the throttles of brokers 0, 1, 2, 3 and 1 topics"
    assert (await clear.done()).done
    assert (await fake.replication_throttles(REF, "")).empty


async def test_a_wiped_broker_catches_up_under_its_follower_throttle_then_is_in_every_isr() -> None:
    fake, ctx = cluster()
    fake.crash(2)
    replace = Driver(ctx, ReplacePodAndPvcArgs(broker=2, pod="c-kafka-2", expect_empty=False))
    assert (await replace.gate()).ok
    uid = fake.pods[2].uid
    assert await replace.observe_and_act() == "asked Strimzi to delete c-kafka-2 and its PVC"
    assert fake.pods[2].uid != uid and fake.replacements == {2: 1}
    assert (await replace.done()).done
    targets = tuple(PartitionTarget(topic="t", partition=p, replicas=tuple(replicas(fake, p))) for p in range(3))
    catch_up = Driver(ctx, CatchUpArgs(broker=2, partitions=targets, throttle_bytes_per_s=RATE))
    await catch_up.observe_and_act()
    assert fake.broker_throttles == {2: {"leader.replication.throttled.rate": str(RATE),
                                         "follower.replication.throttled.rate": str(RATE)}}
    assert fake.topic_throttles["t"] == {"follower.replication.throttled.replicas": "0:2,1:2,2:2"}
    fake.advance_moves(4)
    behind = await catch_up.done()
    assert behind.detail == "broker 2 out of the ISR of 3 partitions; 180 MiB left, ETA about 18 s"
    fake.advance_moves(6)
    assert (await catch_up.done()).done


async def test_the_replacement_waits_until_the_drained_broker_holds_nothing() -> None:
    _, ctx = cluster()
    gate = await Driver(ctx, ReplacePodAndPvcArgs(broker=1, pod="c-kafka-1")).gate()
    assert not gate.ok and gate.reason == ("broker 1 still holds 3 replicas (t-0, t-1, t-2): wiping its disk now "
                                           "would lose them")


async def test_a_scale_down_strimzi_reverts_pauses_the_run_saying_so() -> None:
    fake, ctx = cluster()
    patch = Driver(ctx, PatchNodePoolArgs(pool="brokers", replicas=2, from_replicas=4, remove_ids=(0, 3)))
    assert not (await patch.gate()).ok  # broker 0 holds replicas: the gate holds the patch back
    await patch.observe_and_act()  # acted anyway (a human skipped the gate): Strimzi reverts
    assert fake.pools["brokers"].annotations == {"strimzi.io/remove-node-ids": "[0, 3]"}
    waited = await Driver(ctx, AwaitPoolNodesArgs(pool="brokers", replicas=2, removed=(0, 3))).done()
    assert waited.failure == ("Strimzi reverted the scale-down: ScaleDownPreventionCheck: Reverting scale-down of "
                              "KafkaNodePool brokers by changing number of replicas to 4")
    assert sorted(fake.pods) == [0, 1, 2, 3]


async def test_a_scale_up_waits_for_the_predicted_brokers_and_notices_other_ids() -> None:
    fake, ctx = cluster()
    await Driver(ctx, PatchNodePoolArgs(pool="brokers", replicas=5, from_replicas=4)).observe_and_act()
    assert sorted(fake.pods) == [0, 1, 2, 3, 4]
    assert (await Driver(ctx, AwaitPoolNodesArgs(pool="brokers", replicas=5, added=(4,),
                                                 before=(0, 1, 2, 3))).done()).done
    wrong = await Driver(ctx, AwaitPoolNodesArgs(pool="brokers", replicas=5, added=(7,), before=(0, 1, 2, 3))).done()
    assert wrong.failure == ("Strimzi gave the new nodes ids 4, not the predicted 7: the fill was planned for those "
                             "ids. Abort (nothing has moved yet) and plan the fill again")


async def test_progress_shows_the_rate_achieved_since_the_batch_began() -> None:
    fake, ctx = cluster()
    clock = FakeClock()
    ctx = StepContext(cluster=REF, gateway=fake, admin=fake, clock=clock)
    move = Driver(ctx, MoveReplicasArgs(moves=MOVES, throttle_bytes_per_s=RATE))
    move.step = move.step.model_copy(update={"started_at": clock.now()})
    await move.observe_and_act()
    fake.advance_moves(4)  # 40 MiB of each 100 MiB copied
    clock.advance(8)  # ... in 8 s: 80 MiB / 8 s
    assert (await move.done()).detail == ("0/2 partitions moved, 2 in flight; 120 MiB left at 10 MiB/s, ETA about "
                                          "12 s (achieved 10 MiB/s)")


async def test_clear_throttles_says_which_brokers_it_could_not_reach() -> None:
    fake, ctx = cluster()
    await Driver(ctx, MoveReplicasArgs(moves=MOVES, throttle_bytes_per_s=RATE)).observe_and_act()
    fake.crash(3)
    clear = Driver(ctx, ClearThrottlesArgs(brokers=(0, 1, 2, 3), topics=("t",)))
    assert await clear.observe_and_act() == ("removed the throttles of brokers 0, 1, 2 and 1 topics; brokers 3 are "
                                             "down: cleared when this step is retried after they return")
    done = await clear.done()
    assert done.done and done.detail == ("no throttle left on brokers 0, 1, 2 or the run's 1 topics; brokers 3 are "
                                         "down and could not be cleared: check them when they return")
    assert fake.broker_throttles[3]  # still there: a down broker cannot be asked


async def test_a_move_cancelled_outside_the_run_pauses_it_after_a_grace_for_lagging_metadata() -> None:
    fake, ctx = cluster()
    clock = FakeClock()
    ctx = StepContext(cluster=REF, gateway=fake, admin=fake, clock=clock)
    move = Driver(ctx, MoveReplicasArgs(moves=MOVES, throttle_bytes_per_s=RATE))
    move.step = move.step.model_copy(update={"started_at": clock.now()})
    await move.observe_and_act()
    await fake.cancel_reassignments(REF, "", [("t", 0)])  # someone else's cancel
    early = await move.done()
    assert not early.done and early.failure is None  # could be metadata behind a finished move: wait
    clock.advance(61)
    late = await move.done()
    assert late.failure == ("moves of this run were cancelled or changed outside it (t-0 has [0, 1, 2], target "
                            "[0, 1, 3]): Retry submits them again, Abort cleans up")


async def test_a_warning_about_another_pool_does_not_read_as_this_scale_down_reverted() -> None:
    fake, ctx = cluster()
    fake.scale_warnings.append("ScaleDownPreventionCheck: Reverting scale-down of KafkaNodePool other by changing "
                               "number of replicas to 2")
    patch = Driver(ctx, PatchNodePoolArgs(pool="brokers", replicas=3, from_replicas=4, remove_ids=(3,)))
    assert (await patch.gate()).ok  # broker 3 holds no replica
    await patch.observe_and_act()
    done = await Driver(ctx, AwaitPoolNodesArgs(pool="brokers", replicas=3, removed=(3,))).done()
    assert done.done and done.detail == "brokers 3 removed; pool brokers has 3 nodes, no scale-down revert"


def _started(ctx: StepContext, args: StepArgs) -> tuple[Driver, FakeClock]:
    clock = FakeClock()
    ctx = StepContext(cluster=REF, gateway=ctx.gateway, admin=ctx.admin, clock=clock)
    driver = Driver(ctx, args)
    driver.step = driver.step.model_copy(update={"started_at": clock.now()})
    return driver, clock


async def test_throttled_replica_lists_removed_mid_move_are_set_again_and_the_card_blames_the_topic_operator() -> None:
    """strimzi#9972: the Topic Operator (no Cruise Control) deletes the lists of a topic it manages; the
    next poll sets them again, says who most likely removed them, and keeps saying so while the step runs."""
    fake, ctx = cluster()
    move, clock = _started(ctx, MoveReplicasArgs(moves=MOVES, throttle_bytes_per_s=RATE))
    await move.observe_and_act()
    assert "throttle" not in (await move.done()).detail.split("; ", 1)[1]  # in force: nothing to say
    clock.advance(10)
    del fake.topic_throttles["t"]
    found = await move.done()
    assert fake.topic_throttles["t"] == {"leader.replication.throttled.replicas": "0:0,0:1,0:2,1:0,1:1,1:2",
                                         "follower.replication.throttled.replicas": "0:3,1:3"}
    assert not found.done and found.failure is None
    assert found.detail.endswith(
        "; throttle removed outside this run: the throttled-replica lists of t, most likely Strimzi's Topic Operator: "
        "the Kafka resource deploys it without Cruise Control, and it deletes the throttled-replica lists of topics "
        "that have a KafkaTopic (strimzi#9972); set again at 12:00:10 UTC"), found.detail
    move.step = move.step.model_copy(update={"detail": found.detail})
    fake.advance_moves(2)
    later = await move.done()
    assert later.detail.startswith("0/2 partitions moved, 2 in flight; 160 MiB left") and later.detail.endswith(
        "set again at 12:00:10 UTC"), later.detail


async def test_a_removed_rate_is_set_again_but_a_changed_rate_is_left_as_somebody_set_it() -> None:
    fake, ctx = cluster()
    move, clock = _started(ctx, MoveReplicasArgs(moves=MOVES, throttle_bytes_per_s=RATE))
    await move.observe_and_act()
    clock.advance(10)
    del fake.broker_throttles[3]
    fake.broker_throttles[0] = dict.fromkeys(fake.broker_throttles[0], str(50 * MiB))
    found = await move.done()
    assert fake.broker_throttles[3] == dict.fromkeys(fake.broker_throttles[3], str(RATE))
    assert fake.broker_throttles[0] == dict.fromkeys(fake.broker_throttles[0], str(50 * MiB))
    assert found.detail.endswith(
        f"; broker 0 throttle changed outside this run, left as set: leader.replication.throttled.rate={50 * MiB}, "
        f"follower.replication.throttled.rate={50 * MiB}; throttle removed outside this run: the rates of brokers 3, "
        "by hand or by another tool (kafka-configs, a GitOps job); set again at 12:00:10 UTC"), found.detail


async def test_a_throttle_missing_right_after_the_act_is_set_again_without_blaming_anybody() -> None:
    """A broker may not show a throttle the run has just set: set it again, but say nothing on the card."""
    fake, ctx = cluster()
    move, _ = _started(ctx, MoveReplicasArgs(moves=MOVES, throttle_bytes_per_s=RATE))
    await move.observe_and_act()
    del fake.topic_throttles["t"]
    found = await move.done()
    assert fake.topic_throttles["t"]["follower.replication.throttled.replicas"] == "0:3,1:3"
    assert "outside this run" not in found.detail


async def test_a_wiped_brokers_follower_throttle_removed_mid_catch_up_is_set_again() -> None:
    fake, ctx = cluster()
    fake.topic_operator = False
    fake.crash(2)
    await Driver(ctx, ReplacePodAndPvcArgs(broker=2, pod="c-kafka-2", expect_empty=False)).observe_and_act()
    targets = tuple(PartitionTarget(topic="t", partition=p, replicas=tuple(replicas(fake, p))) for p in range(3))
    catch_up, clock = _started(ctx, CatchUpArgs(broker=2, partitions=targets, throttle_bytes_per_s=RATE))
    await catch_up.observe_and_act()
    clock.advance(10)
    del fake.topic_throttles["t"]
    behind = await catch_up.done()
    assert fake.topic_throttles["t"] == {"follower.replication.throttled.replicas": "0:2,1:2,2:2"}
    assert behind.detail.endswith("throttle removed outside this run: the throttled-replica lists of t, by hand or "
                                  "by another tool (kafka-configs, a GitOps job); set again at 12:00:10 UTC")


@pytest.mark.parametrize(("topic_operator", "cruise_control", "warned"),
                         [(True, False, True), (True, True, False), (False, False, False)])
async def test_the_pre_flight_of_a_throttled_move_warns_when_a_topic_operator_may_remove_the_throttle(
        topic_operator: bool, cruise_control: bool, warned: bool) -> None:
    """Only with the Topic Operator and without Cruise Control (with it, Strimzi leaves the lists alone)."""
    fake, ctx = cluster()
    fake.topic_operator, fake.cruise_control = topic_operator, cruise_control
    said = await Driver(ctx, PreflightArgs(throttled_moves=True)).observe_and_act()
    assert (TOPIC_OPERATOR_WARNING in said) is warned, said
    assert TOPIC_OPERATOR_WARNING not in await Driver(ctx, PreflightArgs()).observe_and_act()  # a restart: no move


def test_a_wildcard_list_throttles_every_replica_and_a_partial_list_is_a_gap() -> None:
    throttle = ReplicationThrottle.for_moves(MOVES, RATE)
    rates = {b: dict.fromkeys(THROTTLE_RATE_KEYS, str(RATE)) for b in throttle.brokers}
    star = ThrottlesPresent(brokers=rates, topics={"t": dict.fromkeys(THROTTLED_REPLICAS_KEYS, "*")})
    assert not ThrottleGaps.of(throttle, star).removed
    partial = ThrottlesPresent(brokers=rates, topics={"t": {THROTTLED_REPLICAS_KEYS[0]: "*",
                                                            THROTTLED_REPLICAS_KEYS[1]: "0:3"}})
    assert ThrottleGaps.of(throttle, partial).lists_removed == ("t",)
