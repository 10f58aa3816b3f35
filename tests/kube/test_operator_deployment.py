"""The operator-Deployment adapter (``KubeClusterGateway.operator_deployment``) over real HTTP, against
the sandbox's Kubernetes API emulator served in-process (no brokers), with the Deployment the
sandbox's own operator applies; then the whole resolution (handlers.operator_deployment) through it:
the list the Deployment names, and the table with the API's reason when the read is forbidden (an
RBAC denial as the API server answers it, in front of the emulator) or the Deployment is missing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.kube import KubeClusterGateway
from bot.sandbox.kube import ObjectStore
from bot.sandbox.operator.deployment import APPS_GROUP, DEPLOYMENTS, operator_deployment
from handlers.operator_deployment import OperatorLocation, supported_kafka_versions
from handlers.ports import ClusterRef
from runbooks.rules.strimzi_releases import VersionsSource
from runbooks.rules.versions import ClusterMode
from tests.kube.emulator_gateway import emulator_gateway

pytestmark = pytest.mark.timeout(30)

NS = "kafka"
CLUSTER = ClusterRef(name="prod", namespace=NS, kafka="prod")
FORBIDDEN_NS = "locked"


def _locked(path: str) -> tuple[str, str, str] | None:
    if path.startswith(f"/apis/apps/v1/namespaces/{FORBIDDEN_NS}/deployments"):
        return "deployments", "apps", path.rsplit("/", 1)[-1]
    return None


async def serve(tmp_path: Path) -> AsyncIterator[tuple[ObjectStore, KubeClusterGateway]]:
    async with emulator_gateway(tmp_path, NS, _locked) as served:
        yield served


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[tuple[ObjectStore, KubeClusterGateway]]:
    async for served in serve(tmp_path):
        yield served


async def test_the_sandbox_operators_deployment_is_read_through_the_client(kube: Any) -> None:
    store, gateway = kube
    store.create(APPS_GROUP, DEPLOYMENTS, NS, operator_deployment(NS, ["4.2.2", "4.3.1"]))
    found = await gateway.operator_deployment(CLUSTER, NS, "strimzi-cluster-operator")
    assert (found.namespace, found.name, found.image) == (NS, "strimzi-cluster-operator",
                                                          "quay.io/strimzi/operator:1.2.0")
    assert found.kafka_images == ("4.2.2=quay.io/strimzi/kafka:1.2.0-kafka-4.2.2\n"
                                  "4.3.1=quay.io/strimzi/kafka:1.2.0-kafka-4.3.1\n")
    supported = await supported_kafka_versions(gateway, CLUSTER, location=OperatorLocation(), mode=ClusterMode.KRAFT)
    assert (supported.source, supported.versions, supported.operator_version) == (
        VersionsSource.DEPLOYMENT, ("4.2.2", "4.3.1"), "1.2.0")


async def test_a_forbidden_or_missing_deployment_gives_the_table_and_the_apis_answer(kube: Any) -> None:
    _, gateway = kube
    forbidden = await supported_kafka_versions(gateway, CLUSTER, location=OperatorLocation(namespace=FORBIDDEN_NS),
                                               mode=ClusterMode.KRAFT, status_operator_version="0.49.0")
    assert (forbidden.source, forbidden.release) == (VersionsSource.TABLE, "0.49")
    assert forbidden.unread.startswith("the bot may not read the operator Deployment locked/strimzi-cluster-operator: "
                                       "Kubernetes API: get Deployment locked/strimzi-cluster-operator: HTTP 403")
    assert 'cannot get resource "deployments"' in forbidden.unread
    missing = await supported_kafka_versions(gateway, CLUSTER, location=OperatorLocation(deployment="nope"),
                                             mode=ClusterMode.KRAFT)
    assert (missing.source, missing.release) == (VersionsSource.NEWEST, "1.2")
    assert "get Deployment kafka/nope: HTTP 404" in missing.unread
