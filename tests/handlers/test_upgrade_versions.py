"""The versions ``/kafka upgrade`` may target come from the operator that runs the cluster, through
the command service (the path Slack and the console share), with the in-memory Strimzi and the fake
operator-Deployment port: what the Deployment lists is planned even where Strimzi 1.2 would refuse
it, what it does not list is refused naming the operator's list, and a Deployment the bot may not
read gives the shipped table, with the reason. Dry runs: nothing is written."""

from __future__ import annotations

import pytest

from handlers.clusters import ManagedCluster
from handlers.commands.service import CommandService
from handlers.operator_deployment import OperatorLocation
from handlers.ports import ClusterRef
from handlers.replies import Reply
from runbooks.engine.models import Actor, ApprovalPolicy
from tests.fakes import FakeClock, FakeOperatorDeployments, FakeStrimzi, SequentialIds
from tests.fakes.store import MemoryClusterLocks, MemoryRunRepository, MemoryRunStore

pytestmark = pytest.mark.timeout(20)

REQUESTER = Actor(id="U_REQ")
ON_049 = ("4.0.0", "4.0.1", "4.1.0", "4.1.1")


def cluster(*, operator: OperatorLocation | None = None, override: tuple[str, ...] | None = None) -> ManagedCluster:
    return ManagedCluster(ref=ClusterRef(name="prod", namespace="kafka", kafka="prod"),
                          policy=ApprovalPolicy(approvers=(REQUESTER.id, "U_APP")),
                          operator=operator or OperatorLocation(), supported_kafka_versions=override)


async def say(text: str, fake: FakeStrimzi, operator: FakeOperatorDeployments, managed: ManagedCluster) -> Reply:
    state = MemoryRunStore()
    service = CommandService(clusters={"prod": managed}, runs=MemoryRunRepository(state),
                             locks=MemoryClusterLocks(state), gateway=fake, admin=fake, clock=FakeClock(),
                             ids=SequentialIds(), operator=operator)
    return await service.handle_text(text, REQUESTER)


async def test_a_version_the_operator_supports_but_strimzi_1_2_does_not_is_planned() -> None:
    """Strimzi 0.49 runs a 4.0.1 cluster: 4.1.1 (not in Strimzi 1.2's list) gets a plan; 4.3.1 (in
    Strimzi 1.2's list) is refused naming the operator's version, its Deployment and its list."""
    fake = FakeStrimzi("prod", version="4.0.1", zookeeper=False)
    operator = FakeOperatorDeployments()
    operator.install("0.49.0", ON_049)
    planned = await say("upgrade prod 4.1.1 --dry-run", fake, operator, cluster())
    assert planned.ok and planned.run is None, planned.text
    assert "Roll to Kafka 4.1.1" in planned.text and "Raise metadataVersion 4.0-IV3 -> 4.1-IV1" in planned.text
    refused = await say("upgrade prod 4.3.1 --dry-run", fake, operator, cluster())
    assert not refused.ok and refused.run is None
    assert ("Kafka 4.3.1 is not supported by the Strimzi operator 0.49.0 running this cluster (from its "
            "Deployment kafka/strimzi-cluster-operator): supported 4.0.0, 4.0.1, 4.1.0, 4.1.1") in refused.text
    assert operator.reads == [("prod", "kafka", "strimzi-cluster-operator")] * 2
    assert fake.generation == 1 and fake.spec["version"] == "4.0.1"


async def test_the_operator_is_looked_for_where_the_clusters_file_says() -> None:
    fake = FakeStrimzi("prod", version="4.0.1", zookeeper=False)
    operator = FakeOperatorDeployments()
    operator.install("0.49.0", ON_049, namespace="strimzi", name="cluster-operator")
    reply = await say("upgrade prod 4.1.0 --dry-run", fake, operator,
                      cluster(operator=OperatorLocation(namespace="strimzi", deployment="cluster-operator")))
    assert reply.ok, reply.text
    assert operator.reads == [("prod", "strimzi", "cluster-operator")]


async def test_a_forbidden_deployment_falls_back_to_the_table_by_the_status_version_saying_why() -> None:
    """RBAC forbids the read: the Kafka status names the operator (1.2.0), so Strimzi 1.2's list stands
    in, and the refusal says the bot may not read the Deployment, with the API's answer."""
    fake = FakeStrimzi("prod", version="4.2.2", zookeeper=False)
    operator = FakeOperatorDeployments()
    operator.install("0.49.0", ON_049)
    operator.forbidden.add("kafka")
    refused = await say("upgrade prod 4.1.1 --dry-run", fake, operator, cluster())
    assert ("Kafka 4.1.1 is not supported by the Strimzi operator 1.2.0 running this cluster (Strimzi 1.2's list: "
            "the bot may not read the operator Deployment kafka/strimzi-cluster-operator: Kubernetes API: get "
            "Deployment kafka/strimzi-cluster-operator: HTTP 403 Forbidden") in refused.text, refused.text
    assert "supported 4.2.0, 4.2.1, 4.2.2, 4.3.0, 4.3.1" in refused.text
    planned = await say("upgrade prod 4.3.1 --dry-run", fake, operator, cluster())
    assert planned.ok, planned.text


async def test_the_clusters_file_list_overrides_the_deployment_and_is_not_read() -> None:
    fake = FakeStrimzi("prod", version="4.0.1", zookeeper=False)
    operator = FakeOperatorDeployments()
    operator.install("0.49.0", ON_049)
    refused = await say("upgrade prod 4.1.1 --dry-run", fake, operator, cluster(override=("4.0.1", "4.1.0")))
    assert "Kafka 4.1.1 is not supported on this cluster (from the clusters file: supported_kafka_versions): " \
           "supported 4.0.1, 4.1.0" in refused.text, refused.text
    assert operator.reads == []
