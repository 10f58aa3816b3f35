"""Human actions on a run that name a step it does not have: the answer says so and lists the
run's steps (through the real service and real Redis); a real step that is not waiting still
gets "no longer waiting"."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from bot import store
from bot.clock import RandomIds, SystemClock
from bot.store.repository import RedisClusterLocks, RedisRunRepository
from handlers.clusters import ManagedCluster
from handlers.commands.service import CommandService
from handlers.ports import ClusterRef
from runbooks.engine.access import AccessPolicy, People
from runbooks.engine.models import Actor, ApprovalPolicy
from tests.fakes.strimzi import FakeStrimzi

CLUSTER = "kraft"
REQUESTER, APPROVER = Actor(id="U_REQ"), Actor(id="U_APP")

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def runs(redis_client: aioredis.Redis) -> RedisRunRepository:
    return RedisRunRepository(store.RunStore(redis_client))


@pytest.fixture
def service(redis_client: aioredis.Redis, runs: RedisRunRepository) -> CommandService:
    fake = FakeStrimzi(CLUSTER, version="4.2.0", zookeeper=False)
    cluster = ManagedCluster(ref=ClusterRef(name=CLUSTER, namespace="kafka", kafka=CLUSTER),
                             policy=ApprovalPolicy(approvers=(APPROVER.id,)),
                             access=AccessPolicy(requesters=People(users=(REQUESTER.id,))))
    locks = RedisClusterLocks(store.ClusterLock(redis_client))
    return CommandService(clusters={CLUSTER: cluster}, runs=runs, locks=locks, gateway=fake, admin=fake,
                          clock=SystemClock(), ids=RandomIds())


async def test_approving_a_step_the_run_does_not_have_names_the_run_and_lists_its_steps(
        service: CommandService, runs: RedisRunRepository) -> None:
    """`approve <run> nosuchstep`: "run ... has no step", with its steps; the refusal is audited."""
    created = await service.handle_text(f"restart {CLUSTER}", REQUESTER)
    assert created.run is not None, created.text
    run_id = created.run.id
    reply = await service.handle_text(f"approve {run_id} nosuchstep", APPROVER)
    assert not reply.ok
    assert f'Run {run_id} has no step "nosuchstep"' in reply.text, reply.text
    assert "preflight, restart-0, restart-1, restart-2" in reply.text
    assert "no longer waiting" not in reply.text
    audit = await runs.audit(run_id)
    assert [e.detail.split(":")[0] for e in audit if e.action == "approve_refused"] == ["no_such_step"]


async def test_a_real_step_that_is_not_waiting_is_still_no_longer_waiting(service: CommandService) -> None:
    """A step the run has, but that is not the one waiting for approval, keeps the stale-step answer."""
    created = await service.handle_text(f"restart {CLUSTER}", REQUESTER)
    assert created.run is not None
    reply = await service.handle_text(f"approve {created.run.id} restart-2", APPROVER)
    assert not reply.ok and "no longer waiting" in reply.text, reply.text
