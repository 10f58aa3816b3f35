"""While Redis is down: `status` still answers what Kubernetes and Kafka say and says that runs are
unknown; a command that needs the run store is refused once, plainly. A real redis-server, stopped
for the test; the cluster is the in-memory Strimzi fake at the ports."""

from __future__ import annotations

import pytest

from bot import store
from bot.clock import RandomIds, SystemClock
from bot.store.repository import RedisClusterLocks, RedisRunRepository
from handlers.clusters import ManagedCluster
from handlers.commands.service import CommandService
from handlers.ports import ClusterRef
from runbooks.engine.access import AccessPolicy, People
from runbooks.engine.models import Actor, ApprovalPolicy
from tests.fakes.strimzi import FakeStrimzi
from tests.fixtures.redis_server import RedisServer

CLUSTER = "kraft"
USER = Actor(id="U_ANY")

pytestmark = pytest.mark.timeout(30)


async def test_status_answers_without_redis_and_says_runs_are_unknown(isolated_redis_server: RedisServer) -> None:
    """Redis stopped: `status` shows readiness and the brokers, and "runs: unknown, Redis is
    unreachable"; `runs` and `restart` are refused with a message that says it once."""
    client = await store.connect(isolated_redis_server.url)
    fake = FakeStrimzi(CLUSTER, version="4.2.0", zookeeper=False)
    cluster = ManagedCluster(ref=ClusterRef(name=CLUSTER, namespace="kafka", kafka=CLUSTER),
                             policy=ApprovalPolicy(approvers=("U_APP",)),
                             access=AccessPolicy(requesters=People(users=(USER.id,))))
    service = CommandService(clusters={CLUSTER: cluster}, runs=RedisRunRepository(store.RunStore(client)),
                             locks=RedisClusterLocks(store.ClusterLock(client)), gateway=fake, admin=fake,
                             clock=SystemClock(), ids=RandomIds())
    try:
        isolated_redis_server.stop()
        status = await service.handle_text(f"status {CLUSTER}", USER)
        runs = await service.handle_text("runs", USER)
        restart = await service.handle_text(f"restart {CLUSTER}", USER)
    finally:
        await client.aclose()
    assert status.ok, status.text
    assert f"{CLUSTER}: Ready" in status.text and "broker 0" in status.text and "partitions" in status.text
    assert "runs: unknown, Redis is unreachable" in status.text
    for refused in (runs, restart):
        assert not refused.ok and "Redis" in refused.text and "unreachable" in refused.text, refused.text
        assert refused.text.count("unreachable") == 1 and refused.text.count("until it is back") <= 1, refused.text
