"""Creating a run through the real service and real Redis: the run is written holding its
cluster's lock, a busy cluster is refused naming its run, and a lock that protects nothing (its
run finished without releasing it, or was never written) is taken over."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from bot import store
from bot.clock import RandomIds, SystemClock
from bot.store.repository import RedisClusterLocks, RedisRunRepository
from handlers.clusters import ManagedCluster
from handlers.commands.service import CommandService
from handlers.ports import ClusterRef
from handlers.replies import Reply
from runbooks.engine.access import AccessPolicy, People
from runbooks.engine.models import Actor, ApprovalPolicy, Run, RunState
from tests.fakes.strimzi import FakeStrimzi

REQUESTER = Actor(id="U_REQ")
CLUSTER = "kraft"


@dataclass
class Service:
    service: CommandService
    runs: RedisRunRepository
    lock: store.ClusterLock

    async def restart(self) -> Reply:
        return await self.service.handle_text(f"restart {CLUSTER}", REQUESTER, channel="C1")

    async def stored(self, run_id: str) -> Run:
        loaded = await self.runs.load(run_id)
        assert loaded is not None
        return loaded[0]


@pytest.fixture
def bot(redis_client: aioredis.Redis) -> Service:
    fake = FakeStrimzi(CLUSTER, version="4.2.0", zookeeper=False)
    cluster = ManagedCluster(ref=ClusterRef(name=CLUSTER, namespace="kafka", kafka=CLUSTER),
                             policy=ApprovalPolicy(approvers=("U_APP",)),
                             access=AccessPolicy(requesters=People(users=(REQUESTER.id,))))
    runs = RedisRunRepository(store.RunStore(redis_client))
    lock = store.ClusterLock(redis_client)
    service = CommandService(clusters={CLUSTER: cluster}, runs=runs, locks=RedisClusterLocks(lock), gateway=fake,
                             admin=fake, clock=SystemClock(), ids=RandomIds())
    return Service(service, runs, lock)


def a_run(run_id: str, state: RunState) -> Run:
    now = datetime(2026, 11, 26, tzinfo=UTC)
    return Run(id=run_id, runbook="restart", cluster=CLUSTER, requested_by="U_OLD", created_at=now, updated_at=now,
               steps=(), plan_hash="h", policy=ApprovalPolicy(approvers=("U_APP",)), state=state)


async def test_a_new_run_holds_its_cluster_with_the_token_it_carries(bot: Service) -> None:
    """The reply's run, the stored run and the lock agree: same holder, same current token."""
    reply = await bot.restart()
    assert reply.ok and reply.run is not None, reply.text
    stored = await bot.stored(reply.run.id)
    assert stored.fencing_token is not None and stored.fencing_token == reply.run.fencing_token
    assert stored.state is RunState.RUNNING
    assert await bot.lock.holder(CLUSTER) == reply.run.id
    assert await bot.lock.check_token(CLUSTER, stored.fencing_token)


async def test_a_cluster_with_an_active_run_is_refused_naming_it(bot: Service) -> None:
    """A second request while the first run is active: refused, naming the run and how to end it;
    the first run keeps the cluster and no second run is stored."""
    first = await bot.restart()
    assert first.run is not None
    second = await bot.restart()
    assert not second.ok and second.run is None
    assert f"{CLUSTER} already has an active run: {first.run.id}" in second.text
    assert f"`/kafka abort {first.run.id}`" in second.text
    assert await bot.lock.holder(CLUSTER) == first.run.id
    assert await bot.runs.active(CLUSTER) == [first.run.id]


async def test_a_finished_run_that_kept_its_lock_is_taken_over(bot: Service) -> None:
    """The holder finished without releasing (a crash between its last save and the release): the
    next request takes the cluster, with a larger token than the old holder's."""
    old_token = await bot.runs.create(a_run("r-old", RunState.RUNNING), [])
    loaded = await bot.runs.load("r-old")
    assert loaded is not None
    await bot.runs.save(loaded[0].model_copy(update={"state": RunState.SUCCEEDED}), expected_version=loaded[1],
                        audit=[])
    reply = await bot.restart()
    assert reply.ok and reply.run is not None, reply.text
    assert await bot.lock.holder(CLUSTER) == reply.run.id
    assert (reply.run.fencing_token or 0) > old_token


async def test_a_lock_whose_run_was_never_written_is_taken_over(bot: Service) -> None:
    """A lock naming a run that does not exist (taken by an older bot that wrote the run in a second
    step, and crashed in between) protects nothing: the next request takes the cluster."""
    stale = await bot.lock.acquire(CLUSTER, "r-never-written")
    assert stale is not None
    reply = await bot.restart()
    assert reply.ok and reply.run is not None, reply.text
    assert await bot.lock.holder(CLUSTER) == reply.run.id
    assert (reply.run.fencing_token or 0) > stale
