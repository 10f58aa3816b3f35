"""Run events: every write of a run announces it on the bus, with the run as written."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from bot.store import RunStore
from bot.store.repository import RedisRunRepository
from bot.store.run_events import RUN_EVENTS_CHANNEL, RunEvent, RunEventBus
from handlers.ports import RunRepository, VersionConflict
from runbooks.engine.events import Notify
from runbooks.engine.models import ApprovalPolicy, Run, RunState
from tests.fixtures.waiting import wait_for

pytest_plugins = ["tests.fixtures.redis_server"]


def a_run(run_id: str = "r-events") -> Run:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    return Run(id=run_id, runbook="restart", cluster="c1", params={}, requested_by="U1", created_at=now,
               updated_at=now, steps=(), plan_hash="h", policy=ApprovalPolicy(approvers=("U2",)))


async def test_each_write_reaches_the_listeners_with_its_notes_and_the_run_as_written(
        redis_client: aioredis.Redis) -> None:
    """create and save announce the run (id and state in the header, the run itself on demand);
    a refused compare-and-set announces nothing; a malformed message is skipped, not fatal."""
    heard: list[RunEvent] = []

    async def listener(event: RunEvent) -> None:
        heard.append(event)

    bus = RunEventBus(redis_client)
    bus.add_listener(listener)
    await bus.start()
    try:
        runs: RunRepository = RedisRunRepository(RunStore(redis_client))
        run = a_run()
        token = await runs.create(run, [], notes=[Notify(event="run_created", text="restart")])
        running = run.model_copy(update={"state": RunState.RUNNING})
        await runs.save(running, expected_version=1, audit=[], notes=[Notify(event="step_started", step_id="s1")])
        with pytest.raises(VersionConflict):
            await runs.save(run.model_copy(update={"state": RunState.ABORTED}), expected_version=1, audit=[])
        await redis_client.publish(RUN_EVENTS_CHANNEL, "not a run event")
        await runs.save(running, expected_version=2, audit=[])
        await wait_for(lambda: len(heard) >= 3, timeout=5, message="three run events")
    finally:
        await bus.stop()
    assert [(e.run_id, e.state, [n.event for n in e.notes]) for e in heard] == [
        (run.id, RunState.PLANNED, ["run_created"]),
        (run.id, RunState.RUNNING, ["step_started"]),
        (run.id, RunState.RUNNING, []),
    ]
    assert heard[0].run == run.model_copy(update={"fencing_token": token}), "created holding the cluster's lock"
    assert heard[1].run == running


async def test_a_repository_without_a_channel_writes_silently(redis_client: aioredis.Redis) -> None:
    """Tools that write runs without waking anyone (events_channel=None) publish nothing."""
    pubsub = redis_client.pubsub()
    await pubsub.subscribe(RUN_EVENTS_CHANNEL)
    await pubsub.get_message(timeout=1)
    try:
        await RedisRunRepository(RunStore(redis_client), events_channel=None).create(a_run("r-quiet"), [])
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.3) is None
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
