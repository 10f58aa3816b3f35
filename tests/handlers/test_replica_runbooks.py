"""replace-broker and scale through the real command service and worker (real Redis), against the
in-memory cluster: the dry run, a refusal per bad input with nothing changed, and runs approved to
the end, the replicas moving at the throttle while a ticker lets the fake copy."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from runbooks.engine.models import RunState
from tests.fakes.strimzi import FakeStrimzi

pytestmark = pytest.mark.timeout(60)
MiB = 1024**2


def four_brokers() -> FakeStrimzi:
    """Brokers 0-3; topic t: 4 partitions of 10 MiB, RF 3, each broker in three of them."""
    fake = FakeStrimzi("c", version="4.3.1", zookeeper=False, brokers=4, instant_rolls=True)
    del fake.topics["orders"]  # the fake's default topic sits on every broker (RF 4)
    fake.create_topic("t", {0: [0, 1, 2], 1: [1, 2, 3], 2: [2, 3, 0], 3: [3, 0, 1]},
                      dict.fromkeys(range(4), 10 * MiB))
    return fake


@contextlib.asynccontextmanager
async def copying(fake: FakeStrimzi) -> AsyncIterator[None]:
    """Replicas copy one simulated second per 10 ms, at the throttle the run set."""
    async def tick() -> None:
        while True:
            fake.advance_moves(1.0)
            await asyncio.sleep(0.01)

    task = asyncio.get_running_loop().create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def layout_of(fake: FakeStrimzi) -> dict[int, list[int]]:
    return {p: list(part.replicas) for p, part in fake.topics["t"].items()}


async def test_replace_broker_dry_run_shows_the_plan_and_changes_nothing(make_bot: Any) -> None:
    fake = four_brokers()
    bot = await make_bot(fake)
    reply = await bot.say("replace-broker c 3 --throttle 10MiB/s --dry-run")
    assert reply.ok and reply.run is None, reply.text
    lines = reply.text.splitlines()
    assert lines[0] == "Plan (dry run, nothing changed): Replace broker 3 on c"
    assert [line for line in lines if line.startswith("  ")][:3] == [
        "  1. Pre-flight: Kafka Ready, 0 URP, 0 offline, no reassignment [automatic]",
        "  2. Drain broker 3: batch 1 of 1 (3 partitions, 30 MiB) [approval]",
        "     To empty broker(s) 3: move 3 replicas of 3 partitions (the minimum), 30 MiB to copy.",
    ]
    assert "ETA at 10 MiB/s: about 1 s" in reply.text and "ETA at 10 MiB/s: about 3 s" in reply.text
    assert await bot.runs.active("c") == [] and fake.broker_throttles == {} and layout_of(fake)[1] == [1, 2, 3]


@pytest.mark.parametrize(("command", "racks", "message"), [
    ("replace-broker c 7", {}, "Cannot plan a replacement of broker 7 of c: no broker 7 in this cluster; its brokers "
     "are 0, 1, 2, 3."),
    ("replace-broker c 3", {0: "a", 1: "a", 2: "b", 3: "c"},
     "Cannot plan a replacement of broker 3 of c: broker 3 is the last live broker of rack c (racks: a, b, c): "
     "draining it would leave that rack without replicas. Add a broker to rack c first, or use --keep-data."),
    ("replace-broker c 3 --throttle 0", {},
     'Cannot plan a replacement of broker 3 of c: a throttle of "0" would never move anything: give a rate above '
     "0, e.g. 50MiB/s."),
    ("replace-broker c 3 --throttle fast", {},
     'Cannot plan a replacement of broker 3 of c: "fast" is not a throttle rate: write bytes per second like '
     "50MiB/s, 10MB/s or 52428800 (units B, KB, MB, GB, KiB, MiB, GiB)."),
    ("scale c brokers 2", {},
     "Cannot plan scaling pool brokers of c to 2: 2 nodes in pool brokers leave 2 brokers in the cluster, fewer "
     "than the largest replication factor (3, topic t): give at least 3."),
    ("scale c brokers 5 --throttle fast", {},
     'Cannot plan scaling pool brokers of c to 5: "fast" is not a throttle rate: write bytes per second like '
     "50MiB/s, 10MB/s or 52428800 (units B, KB, MB, GB, KiB, MiB, GiB)."),
])
async def test_bad_input_is_refused_with_the_reason_and_nothing_changed(make_bot: Any, command: str,
                                                                        racks: dict[int, str], message: str) -> None:
    fake = four_brokers()
    fake.racks = racks
    bot = await make_bot(fake)
    reply = await bot.say(command)
    assert not reply.ok and reply.text == message
    assert await bot.runs.active("c") == []
    assert fake.broker_throttles == {} and fake.topic_throttles == {}
    assert layout_of(fake) == {0: [0, 1, 2], 1: [1, 2, 3], 2: [2, 3, 0], 3: [3, 0, 1]}
    assert fake.pools["brokers"].replicas == 4 and fake.replacements == {}


async def test_replace_broker_runs_to_the_end_and_restores_every_replica_list(make_bot: Any) -> None:
    fake = four_brokers()
    bot = await make_bot(fake)
    uid = fake.pods[3].uid
    reply = await bot.say("replace-broker c 3 --throttle 5MiB/s")
    assert reply.run is not None, reply.text
    async with copying(fake):
        run = await bot.drive(reply.run.id)
    assert run.state is RunState.SUCCEEDED, run.pause_reason
    assert fake.replacements == {3: 1} and fake.pods[3].uid != uid
    assert layout_of(fake) == {0: [0, 1, 2], 1: [1, 2, 3], 2: [2, 3, 0], 3: [3, 0, 1]}  # exact, preferred leaders too
    assert fake.broker_throttles == {} and fake.topic_throttles == {}
    verify = run.step("verify")
    assert verify is not None and verify.detail == "0 URP, every ISR complete; broker 3 holds its 3 replicas"


async def test_scale_down_drains_the_leaving_broker_before_the_pool_shrinks(make_bot: Any) -> None:
    fake = four_brokers()
    fake.create_topic("u", {0: [3, 0], 1: [1, 2]}, {0: MiB, 1: MiB})
    bot = await make_bot(fake)
    reply = await bot.say("scale c brokers 3 --throttle 1MiB/s")
    assert reply.run is not None, reply.text
    async with copying(fake):
        run = await bot.drive(reply.run.id)
    assert run.state is RunState.SUCCEEDED, run.pause_reason
    assert sorted(fake.pods) == [0, 1, 2] and fake.pools["brokers"].node_ids == [0, 1, 2]
    assert fake.scale_warnings == []  # Strimzi never had to revert: the broker was empty
    assert all(3 not in p.replicas for t in fake.topics.values() for p in t.values())
    assert fake.broker_throttles == {} and fake.topic_throttles == {}


async def test_scale_up_fills_the_new_broker_with_its_share(make_bot: Any) -> None:
    fake = four_brokers()
    bot = await make_bot(fake)
    reply = await bot.say("scale c brokers 5")
    assert reply.run is not None, reply.text
    async with copying(fake):
        run = await bot.drive(reply.run.id)
    assert run.state is RunState.SUCCEEDED, run.pause_reason
    assert sorted(fake.pods) == [0, 1, 2, 3, 4]
    held = sum(4 in p.replicas for p in fake.topics["t"].values())
    assert held == 2  # floor(12 replicas / 5 brokers)
    assert fake.broker_throttles == {} and fake.topic_throttles == {}


async def test_a_dead_broker_is_replaced_and_back_in_every_isr_before_done(make_bot: Any) -> None:
    fake = four_brokers()
    fake.crash(3)
    bot = await make_bot(fake)
    reply = await bot.say("replace-broker c 3 --throttle 2MiB/s")
    assert reply.run is not None, reply.text
    assert [s.id for s in reply.run.steps] == ["replace", "catch-up", "clear-throttles", "elect-leaders", "verify"]
    async with copying(fake):
        run = await bot.drive(reply.run.id)
    assert run.state is RunState.SUCCEEDED, run.pause_reason
    assert fake.replacements == {3: 1}
    assert all(not p.lagging for p in fake.topics["t"].values())  # caught up: in every ISR again
    assert layout_of(fake) == {0: [0, 1, 2], 1: [1, 2, 3], 2: [2, 3, 0], 3: [3, 0, 1]}
    assert fake.broker_throttles == {} and fake.topic_throttles == {}


async def test_a_broker_dying_mid_drain_pauses_the_run_and_submits_no_new_batch(make_bot: Any) -> None:
    """12 partitions on broker 3: three drain batches. Broker 0 dies while the first is copying."""
    fake = FakeStrimzi("c", version="4.3.1", zookeeper=False, brokers=5, instant_rolls=True)
    del fake.topics["orders"]
    fake.create_topic("t", {i: [3, i % 3, (i + 1) % 3 if i % 2 else 4] for i in range(12)},
                      dict.fromkeys(range(12), 10 * MiB))
    bot = await make_bot(fake)
    reply = await bot.say("replace-broker c 3 --throttle 1MiB/s")
    assert reply.run is not None, reply.text
    run = await bot.drive(reply.run.id, until=lambda r: r.current_step is not None
                          and r.current_step.id == "drain-1" and r.current_step.applied)
    first = {(m.topic, m.partition) for m in run.steps[1].spec.args.moves}  # type: ignore[attr-defined]
    fake.crash(0)
    paused = await bot.drive(reply.run.id, until=lambda r: r.state is RunState.PAUSED)
    assert paused.pause_reason is not None and "a broker died mid-move: no new batch submitted" in paused.pause_reason
    moving = {(r.topic, r.partition) for r in await fake.reassignments_in_flight(bot.service.clusters["c"].ref, "")}
    assert moving <= first  # only the first batch was ever submitted


async def test_an_abort_mid_batch_cancels_the_moves_in_flight_and_clears_the_throttles(make_bot: Any) -> None:
    """Abort while the first drain batch is copying: the batch is not waited for (it is interruptible),
    cancel-moves cancels it, clear-throttles removes the throttles, and the run ends aborted saying so."""
    fake = four_brokers()
    bot = await make_bot(fake)
    reply = await bot.say("replace-broker c 3 --throttle 1MiB/s")
    assert reply.run is not None, reply.text
    ref = bot.service.clusters["c"].ref
    await bot.drive(reply.run.id, until=lambda r: r.current_step is not None
                    and r.current_step.id == "drain-1" and r.current_step.applied)
    assert await fake.reassignments_in_flight(ref, "") != []
    assert fake.broker_throttles != {}
    aborted = await bot.say(f"abort {reply.run.id}")
    assert aborted.ok, aborted.text
    run = await bot.drive(reply.run.id, approve=False)
    assert run.state is RunState.ABORTED, run.pause_reason
    assert run.outcome == ("Aborted by U_REQ. Cleanup done: Cancel any move of this run still in flight, Remove the "
                           "replication throttles.")
    assert await fake.reassignments_in_flight(ref, "") == []
    assert fake.broker_throttles == {} and fake.topic_throttles == {}
    assert layout_of(fake) == {0: [0, 1, 2], 1: [1, 2, 3], 2: [2, 3, 0], 3: [3, 0, 1]}  # the moves were undone
    assert fake.replacements == {}  # the replace step never ran
