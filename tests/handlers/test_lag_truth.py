"""`/kafka lag` says what is true about a cluster without figures: not polled yet (try again soon)
or cannot be polled (and why), here a clusters file naming the wrong namespace, read through the
real Kubernetes gateway from the sandbox's API emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.kube import KubeClusterGateway, load_api_client
from bot.sandbox.kube import ObjectStore, start_server, write_kubeconfig
from handlers.alerting.evaluator import AlertEvaluator, AlertQueries
from handlers.alerting.lag_poll import LagPoller
from handlers.alerting.monitoring import ClusterMonitor, KubeState
from handlers.clusters import ManagedCluster
from handlers.ports import ClusterRef, ConsumerGroup
from runbooks.engine.models import ApprovalPolicy
from tests.fakes.alerts import FakeClock, FakeLagReader, MemoryAlertStore, MemoryLagReports
from tests.kube.test_gateway import create_kafka

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[KubeClusterGateway]:
    store = ObjectStore()
    create_kafka(store, name="prod")  # in namespace "kafka"
    runner, url = await start_server(store)
    kube = KubeClusterGateway(load_api_client(str(write_kubeconfig(tmp_path / "kubeconfig", url, namespace="kafka",
                                                                   context_name="test"))))
    try:
        yield kube
    finally:
        kube.close()
        await runner.cleanup()


def in_namespace(namespace: str) -> ManagedCluster:
    return ManagedCluster(ref=ClusterRef(name="prod", namespace=namespace, kafka="prod"), policy=ApprovalPolicy(),
                          channel="C1")


def lag_service(prod: ManagedCluster, gateway: KubeClusterGateway,
                reports: MemoryLagReports) -> tuple[ClusterMonitor, AlertQueries]:
    clock = FakeClock()
    evaluator = AlertEvaluator(clusters={"prod": prod}, store=MemoryAlertStore(), clock=clock, owner="a")
    reader = FakeLagReader()
    reader.groups = [ConsumerGroup(group="orders", state="Empty")]
    monitor = ClusterMonitor(prod, admin=None, gateway=gateway, poller=LagPoller(reader, clock),  # type: ignore[arg-type]
                             reports=reports, evaluator=evaluator, kube=KubeState, now=clock.now)
    return monitor, AlertQueries(evaluator, MemoryAlertStore(), reports, clock)


async def test_lag_on_a_cluster_whose_namespace_is_wrong_says_the_resource_cannot_be_read(
        gateway: KubeClusterGateway) -> None:
    """The Kafka resource is in "kafka", the clusters file says "kafak": after a poll, `lag` says the
    lag monitor cannot read kafak/prod and why (404), not "try again in a moment"."""
    monitor, queries = lag_service(in_namespace("kafak"), gateway, MemoryLagReports())
    await monitor.check_lag()
    reply = await queries.lag("prod", None)
    assert not reply.ok
    assert "try again" not in reply.text, reply.text
    assert "cannot read the Kafka resource kafak/prod" in reply.text and "404" in reply.text, reply.text


async def test_lag_before_the_first_poll_says_not_polled_yet(gateway: KubeClusterGateway) -> None:
    """No poll has run yet: `lag` says so and when to look again."""
    _, queries = lag_service(in_namespace("kafka"), gateway, MemoryLagReports())
    reply = await queries.lag("prod", None)
    assert "No lag figures for prod yet" in reply.text and "try again" in reply.text


async def test_a_failed_poll_keeps_the_last_good_figures(gateway: KubeClusterGateway) -> None:
    """A good poll, then one that fails: `lag` still shows the good figures (until they expire)
    rather than an error for what may be a blip."""
    reports = MemoryLagReports()
    good, _ = lag_service(in_namespace("kafka"), gateway, reports)
    assert await good.check_lag() is not None
    failing, queries = lag_service(in_namespace("kafak"), gateway, reports)
    await failing.check_lag()
    reply = await queries.lag("prod", None)
    assert reply.ok and "orders" in reply.text, reply.text
