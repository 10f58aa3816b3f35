"""The clusters file's `listener`: the bootstrap address is that listener's in the Kafka status, and
when the status has no such listener there is no address, a warning names the listener and those
there are, and a step that needs the address says so instead of "no listener address yet"."""

from __future__ import annotations

from typing import Any, cast

import pytest

from bot.kube.parse import kafka_status_from
from handlers.ports import ClusterGateway, ClusterRef, KafkaAdmin, KafkaResourceStatus
from handlers.steps.base import StepContext, StepError
from tests.fakes import FakeClock

pytestmark = pytest.mark.timeout(10)

KAFKA: dict[str, Any] = {
    "metadata": {"name": "prod", "generation": 1},
    "status": {"conditions": [{"type": "Ready", "status": "True"}], "listeners": [
        {"name": "plain", "bootstrapServers": "prod-kafka-bootstrap.kafka.svc:9092"},
        {"name": "tls", "bootstrapServers": "prod-kafka-bootstrap.kafka.svc:9093"},
    ]},
}


def test_without_a_listener_the_first_one_is_used_as_before() -> None:
    status = kafka_status_from(KAFKA)
    assert (status.bootstrap_servers, status.bootstrap_problem, status.warnings) == (
        "prod-kafka-bootstrap.kafka.svc:9092", "", ())


def test_the_named_listener_gives_the_bootstrap() -> None:
    assert kafka_status_from(KAFKA, "tls").bootstrap_servers == "prod-kafka-bootstrap.kafka.svc:9093"


def test_a_listener_missing_from_the_status_leaves_no_bootstrap_and_says_which_there_are() -> None:
    status = kafka_status_from(KAFKA, "mtls")
    said = "listener 'mtls' (the clusters file's `listener`) is not in the Kafka status; its listeners: plain, tls"
    assert status.bootstrap_servers is None
    assert status.bootstrap_problem == said and said in status.warnings


class StatusOnly:
    """The Kubernetes port as far as StepContext.bootstrap reads it."""

    def __init__(self, status: KafkaResourceStatus) -> None:
        self.status = status

    async def kafka_status(self, cluster: ClusterRef) -> KafkaResourceStatus:
        return self.status


async def test_a_step_without_an_address_says_why() -> None:
    ref = ClusterRef(name="prod", namespace="kafka", kafka="prod", listener="mtls")
    ctx = StepContext(cluster=ref, gateway=cast(ClusterGateway, StatusOnly(kafka_status_from(KAFKA, "mtls"))),
                      admin=cast(KafkaAdmin, None), clock=FakeClock())
    with pytest.raises(StepError, match=r"listener 'mtls' .* is not in the Kafka status; its listeners: plain, tls"):
        await ctx.bootstrap()
    found = StepContext(cluster=ref, gateway=cast(ClusterGateway, StatusOnly(kafka_status_from(KAFKA, "tls"))),
                        admin=cast(KafkaAdmin, None), clock=FakeClock())
    assert await found.bootstrap() == "prod-kafka-bootstrap.kafka.svc:9093"
