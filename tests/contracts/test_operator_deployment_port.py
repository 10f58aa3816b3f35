"""One contract for the operator-Deployment port (``handlers.operator_deployment.OperatorDeployments``),
held by the in-memory fake (``tests.fakes.FakeOperatorDeployments``, installed as Strimzi 1.2 with the
sandbox's Kafka version) and by the Kubernetes adapter against the session sandbox, whose operator
has its Deployment in the cluster's namespace: read, it names the operator image and every Kafka
version the operator runs; a name that does not exist raises, with the name and the HTTP status.
Read only. Marked ``sandbox``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from handlers.operator_deployment import OperatorDeployments, OperatorLocation, supported_kafka_versions
from handlers.ports import ClusterRef
from runbooks.rules.strimzi_releases import VersionsSource, parse_kafka_images
from runbooks.rules.versions import ClusterMode
from tests.fakes import FakeOperatorDeployments

if TYPE_CHECKING:
    from tests.fixtures.sandbox import SandboxInfo

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(180), pytest.mark.asyncio(loop_scope="module")]


@dataclass
class Side:
    ref: ClusterRef
    port: OperatorDeployments
    kafka_version: str


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["fake", "real"])
async def side(request: pytest.FixtureRequest) -> AsyncIterator[Side]:
    sandbox: SandboxInfo = request.getfixturevalue("sandbox")
    ref = ClusterRef(name=sandbox.cluster, namespace=sandbox.namespace, kafka=sandbox.cluster)
    if request.param == "fake":
        fake = FakeOperatorDeployments()
        fake.install("1.2.0", [sandbox.kafka_version], namespace=sandbox.namespace)
        yield Side(ref, fake, sandbox.kafka_version)
        return
    from bot.kube import KubeClusterGateway

    gateway = KubeClusterGateway(sandbox.api_client())
    try:
        yield Side(ref, gateway, sandbox.kafka_version)
    finally:
        gateway.close()


async def test_the_operators_deployment_names_its_image_and_the_kafka_versions_it_runs(side: Side) -> None:
    found = await side.port.operator_deployment(side.ref, side.ref.namespace, "strimzi-cluster-operator")
    assert (found.namespace, found.name, found.image) == (side.ref.namespace, "strimzi-cluster-operator",
                                                          "quay.io/strimzi/operator:1.2.0")
    assert found.kafka_images is not None and side.kafka_version in parse_kafka_images(found.kafka_images)
    supported = await supported_kafka_versions(side.port, side.ref, location=OperatorLocation(),
                                               mode=ClusterMode.KRAFT)
    assert supported.source is VersionsSource.DEPLOYMENT and supported.operator_version == "1.2.0"
    assert side.kafka_version in supported.versions


async def test_a_deployment_that_does_not_exist_raises_naming_it(side: Side) -> None:
    with pytest.raises(Exception) as caught:
        await side.port.operator_deployment(side.ref, side.ref.namespace, "no-such-operator")
    assert f"Deployment {side.ref.namespace}/no-such-operator: HTTP 404" in str(caught.value)
