"""End to end on the session sandbox: `/kafka upgrade` through the command service with the real
Kubernetes and Kafka adapters judges the target by the sandbox operator's own Deployment (its
STRIMZI_KAFKA_IMAGES, read over the emulated API), and says so. A dry run: nothing changes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from handlers.clusters import ManagedCluster
from handlers.commands.service import CommandService
from handlers.ports import ClusterRef
from runbooks.engine.models import Actor, ApprovalPolicy
from tests.fakes import FakeClock, SequentialIds
from tests.fakes.store import MemoryClusterLocks, MemoryRunRepository, MemoryRunStore

if TYPE_CHECKING:
    from tests.fixtures.sandbox import SandboxInfo

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(180)]


async def test_an_upgrade_is_judged_by_the_sandbox_operators_deployment(sandbox: SandboxInfo) -> None:
    from bot.kafka import KafkaAdminAdapter
    from bot.kube import KubeClusterGateway

    gateway = KubeClusterGateway(sandbox.api_client())
    admin = KafkaAdminAdapter(request_timeout_ms=5000, call_deadline_s=15)
    cluster = ManagedCluster(ref=ClusterRef(name=sandbox.cluster, namespace=sandbox.namespace, kafka=sandbox.cluster),
                             policy=ApprovalPolicy(approvers=("U_REQ", "U_APP")))
    state = MemoryRunStore()
    service = CommandService(clusters={sandbox.cluster: cluster}, runs=MemoryRunRepository(state),
                             locks=MemoryClusterLocks(state), gateway=gateway, admin=admin, clock=FakeClock(),
                             ids=SequentialIds(), operator=gateway)
    try:
        before = await gateway.kafka_status(cluster.ref)
        reply = await service.handle_text(f"upgrade {sandbox.cluster} 4.4.0 --dry-run", Actor(id="U_REQ"))
        assert not reply.ok and reply.run is None
        assert (f"Kafka 4.4.0 is not supported by the Strimzi operator 1.2.0 running this cluster (from its "
                f"Deployment {sandbox.namespace}/strimzi-cluster-operator): supported ") in reply.text, reply.text
        assert sandbox.kafka_version in reply.text.rsplit("supported ", 1)[1]
        after = await gateway.kafka_status(cluster.ref)
        assert after.generation == before.generation
    finally:
        await admin.close()
        gateway.close()
