"""`/kafka undo` through the real service and worker (real Redis) over the in-memory Strimzi: a change
that keeps a broker from starting pauses its run, the undo supersedes it (the lock passes in the same
write), is approved under the four-eyes rule, rolls the broken broker back and verifies; the undo's
gate refuses a cluster that is wrong for another reason; and every bad request says why."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot import store
from runbooks.engine.models import Actor, Run, RunState
from tests.fakes.strimzi import FakeStrimzi
from tests.handlers.test_change_runbooks import REQUESTER, Bot
from tests.runbooks.builders import args_of

pytestmark = pytest.mark.timeout(60)
OUTSIDER = Actor(id="U_OUT")
POISON = "config prod set auto.create.topics.enable=false"


@pytest.fixture
async def lock(redis_url: str) -> AsyncIterator[store.ClusterLock]:
    client = await store.connect(redis_url)
    yield store.ClusterLock(client)
    await client.aclose()


async def broken(make_bot) -> tuple[Bot, FakeStrimzi, Run]:  # type: ignore[no-untyped-def]
    """A config change the brokers cannot start with, approved: paused on broker 0's crash loop."""
    fake = FakeStrimzi("prod", version="4.3.1", zookeeper=False)
    fake.poison = {"auto.create.topics.enable": "false"}
    bot: Bot = await make_bot(fake)
    reply = await bot.say(POISON)
    assert reply.run is not None, reply.text
    run = await bot.drive(reply.run.id, until=lambda r: r.state is RunState.PAUSED, seconds=30)
    assert "CrashLoopBackOff" in (run.pause_reason or "")
    return bot, fake, run


async def test_the_undo_supersedes_the_paused_run_and_brings_the_cluster_back(
        make_bot, lock: store.ClusterLock) -> None:  # type: ignore[no-untyped-def]
    """`undo prod <run>`: a new run awaiting approval; in the same write the paused run is aborted with
    an outcome naming the undo and the lock is the undo's. The requester cannot approve it (four-eyes);
    an approver can; the operator rolls broker 0 back (only broker 0: the others never changed), the run
    follows it and verifies, and the cluster is Ready with the key gone."""
    bot, fake, paused = await broken(make_bot)
    card = await bot.say(f"run {paused.id}")
    assert f"undo prod {paused.id} (a new run, approved like any other, that puts back auto.create.topics.enable: " \
           "false -> (not set))" in card.text
    reply = await bot.say(f"undo prod {paused.id}")
    assert reply.ok and reply.run is not None, reply.text
    undo = reply.run
    assert (undo.runbook, undo.state, undo.requested_by) == ("undo", RunState.AWAITING_APPROVAL, REQUESTER.id)
    assert [s.id for s in undo.steps] == ["revert", "undo-0", "undo-done", "verify"]
    ended = await bot.run(paused.id)
    assert ended.state is RunState.ABORTED
    assert ended.outcome == (f"Aborted by {REQUESTER.id}. Superseded by undo run {undo.id}, which puts back "
                             "auto.create.topics.enable: false -> (not set).")
    assert await lock.holder("prod") == undo.id and undo.fencing_token is not None
    assert await lock.check_token("prod", undo.fencing_token)
    assert await bot.runs.active("prod") == [undo.id]
    await bot.drive(undo.id, approve=False, until=lambda r: bool(r.current_step and r.current_step.detail))
    refused = await bot.service.actions.approve(undo.id, REQUESTER, step_id="revert")
    assert not refused.ok and "Four-eyes" in refused.text
    done = await bot.drive(undo.id, seconds=30)
    assert done.state is RunState.SUCCEEDED, done.pause_reason
    assert "auto.create.topics.enable" not in fake.spec["config"]
    assert fake.ready and not any(p.crashed for p in fake.pods.values())
    assert fake.restart_order == [0, 0], "broker 0 by the change, broker 0 again by the undo; 1 and 2 never"
    assert "auto.create.topics.enable unset" in (done.step("verify").detail if done.step("verify") else "")


async def test_the_undo_is_refused_when_another_broker_is_down_too(make_bot) -> None:  # type: ignore[no-untyped-def]
    """Broker 2 crashes on its own (the change never restarted it, and it is no change Kafka applies
    live): the undo is refused naming broker 2 and what its pod says, and nothing is written: the run
    is still paused and still holds the cluster."""
    bot, fake, paused = await broken(make_bot)
    fake.crash(2)
    reply = await bot.say(f"undo prod {paused.id}")
    assert not reply.ok and reply.run is None
    assert f"Cannot undo run {paused.id} on prod: " in reply.text
    assert f"broker 2 (pod prod-kafka-2: CrashLoopBackOff, 1 container restart) is down too, and run {paused.id} " \
           "did not restart it" in reply.text
    assert (await bot.run(paused.id)).state is RunState.PAUSED
    assert await bot.runs.active("prod") == [paused.id]


async def test_the_undo_does_not_overwrite_a_later_change(make_bot) -> None:  # type: ignore[no-untyped-def]
    """Someone set the key to another value after the run: the undo says so and changes nothing."""
    bot, fake, paused = await broken(make_bot)
    fake.spec["config"]["auto.create.topics.enable"] = True
    fake.generation += 1
    reply = await bot.say(f"undo prod {paused.id}")
    assert not reply.ok
    assert f"spec.kafka auto.create.topics.enable is now true, not the false run {paused.id} wrote" in reply.text


async def test_bad_undo_requests_say_what_is_wrong_and_change_nothing(make_bot) -> None:  # type: ignore[no-untyped-def]
    """Unknown run, unknown cluster, the run of another cluster, a run not paused, a run with nothing
    applied yet, and someone who may not end the run: each answered with the reason; no run is made."""
    fake = FakeStrimzi("prod", version="4.3.1", zookeeper=False)
    bot: Bot = await make_bot(fake)
    assert (await bot.say("undo prod r-00000000")).text == "No run r-00000000. `/kafka runs` lists the recent ones."
    assert "staging" in (await bot.say("undo staging r-00000000")).text
    reply = await bot.say("config prod set log.retention.ms=3600000")
    assert reply.run is not None
    waiting = await bot.drive(reply.run.id, approve=False, until=lambda r: r.state is RunState.AWAITING_APPROVAL)
    not_paused = await bot.say(f"undo prod {waiting.id}")
    assert not_paused.text == (f"Run {waiting.id} is awaiting approval, not paused: undo is for a run that paused. "
                               f"Let it pause or finish, or `/kafka abort {waiting.id}`.")
    other = await bot.service.undo.undo(waiting.id, REQUESTER, cluster="staging")
    assert other.text == (f"Run {waiting.id} is on cluster prod, not staging: nothing was done "
                          f"(`/kafka undo prod {waiting.id}` if that is the one you mean).")
    fake.spec["config"]["compression.type"] = "zstd"  # behind the plan's back: the patch's gate pauses the run
    fake.generation += 1
    paused = await bot.drive(waiting.id, until=lambda r: r.state is RunState.PAUSED)
    nothing = await bot.say(f"undo prod {paused.id}")
    assert nothing.text == (f"Nothing to undo for run {paused.id}: run {paused.id} has not changed anything that can "
                            "be put back yet (no patch of it was applied): abort it instead.")
    assert (await bot.service.undo.undo(paused.id, OUTSIDER)).text == (
        f"Only the requester or an approver of prod may undo run {paused.id} (it ends that run).")
    await bot.say(f"abort {paused.id}")
    finished = await bot.say(f"undo prod {paused.id}")
    assert finished.text.startswith(f"Run {paused.id} is already aborted: only a paused run can be undone.")
    assert await bot.runs.active("prod") == []


async def test_an_upgrade_whose_new_version_will_not_start_is_undone_to_the_old_version(make_bot) -> None:  # type: ignore[no-untyped-def]
    """The upgrade's roll breaks broker 0: the undo sets spec.kafka.version back, leaves the pinned
    metadataVersion alone, rolls broker 0 back and verifies Kafka 4.2.2 everywhere."""
    fake = FakeStrimzi("prod", version="4.2.2", zookeeper=False)
    bot: Bot = await make_bot(fake)
    reply = await bot.say("upgrade prod 4.3.1")
    assert reply.run is not None, reply.text

    fake.broken_versions = {"4.3.1"}
    paused = await bot.drive(reply.run.id, until=lambda r: r.state is RunState.PAUSED, seconds=30)
    assert paused.current_step is not None and paused.current_step.id == "roll-0", paused.pause_reason
    undo = await bot.say(f"undo prod {paused.id}")
    assert undo.run is not None, undo.text
    assert args_of(undo.run.steps[0])["edits"] == [{"path": ["version"], "value": "4.2.2"}]
    done = await bot.drive(undo.run.id, seconds=30)
    assert done.state is RunState.SUCCEEDED, done.pause_reason
    assert (fake.spec["version"], fake.spec["metadataVersion"], fake.kafka_version) == ("4.2.2", "4.2-IV1", "4.2.2")
    assert {p.version for p in fake.pods.values()} == {"4.2.2"}

