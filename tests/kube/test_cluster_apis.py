"""Two Kubernetes clusters behind two kubeconfigs (two API emulators over real HTTP), one bot: every
gateway call and every watch of a cluster goes to its own API, chosen by the clusters file.

Both hold a Kafka `prod` in namespace `kafka` with a pod `prod-brokers-0`, so a call sent to the
wrong API would find an object of the same name and only the contents tell them apart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import yaml

from bot.app import cluster_gateways
from bot.config.settings import load_clusters_file
from bot.kube.apis import ClusterGateways
from bot.kube.gateway import ROLL_ANNOTATION
from bot.monitors.scheduler import Monitors
from bot.sandbox.kube import ObjectStore, start_server, write_kubeconfig
from bot.sandbox.operator.deployment import APPS_GROUP, DEPLOYMENTS, operator_deployment
from bot.store.alert_state import MonitorLease, RedisAlertStore
from handlers.alerting.evaluator import AlertEvaluator
from handlers.clusters import ManagedCluster
from handlers.ports import KafkaSpecEdit
from tests.alerts.test_scheduler import SlowKafka
from tests.fakes.alerts import FakeLagReader, MemoryLagReports, RecordingChannel
from tests.fixtures.waiting import wait_for
from tests.kube.test_gateway import NS, STRIMZI, annotations_of, create_kafka, create_pod

pytestmark = pytest.mark.timeout(30)


@dataclass
class TwoClusters:
    east: ObjectStore
    west: ObjectStore
    clusters: dict[str, ManagedCluster]
    gateways: ClusterGateways


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[TwoClusters]:
    """prod-east on KUBECONFIG's current context; prod-west in a kubeconfig of its own with two
    contexts, the one named by `context` not being the current one."""
    east, west = ObjectStore(), ObjectStore()
    create_kafka(east, name="prod")
    create_kafka(west, name="prod", conditions=[{"type": "NotReady", "status": "True", "reason": "WestIsDown"}])
    create_pod(east, "prod-brokers-0")
    create_pod(west, "prod-brokers-0")
    create_pod(west, "prod-brokers-1")
    east_runner, east_url = await start_server(east)
    west_runner, west_url = await start_server(west)
    env = write_kubeconfig(tmp_path / "east" / "config", east_url, namespace=NS, context_name="east")
    both = yaml.safe_load(write_kubeconfig(tmp_path / "west" / "config", west_url, namespace=NS,
                                           context_name="west").read_text())
    decoy = yaml.safe_load(env.read_text())  # the file's current context is east's API: `context` must win
    for key in ("clusters", "users", "contexts"):
        both[key] = [{**decoy[key][0], "name": "decoy"} if key != "contexts" else
                     {"name": "decoy", "context": {"cluster": "decoy", "user": "decoy"}}] + both[key]
    both["current-context"] = "decoy"
    (tmp_path / "west" / "config").write_text(yaml.safe_dump(both))
    (tmp_path / "clusters.yaml").write_text(yaml.safe_dump({"clusters": {
        "prod-east": {"kafka": "prod", "approvers": ["U1"]},
        "prod-west": {"kafka": "prod", "approvers": ["U1"], "kubeconfig": "west/config", "context": "west"},
    }}))
    clusters, kube = load_clusters_file(tmp_path / "clusters.yaml")
    gateways = cluster_gateways(str(env), kube, clusters, base_dir=tmp_path)
    try:
        yield TwoClusters(east, west, clusters, gateways)
    finally:
        gateways.close()
        await east_runner.cleanup()
        await west_runner.cleanup()


async def test_status_and_pods_of_each_cluster_come_from_its_own_api(two: TwoClusters) -> None:
    """prod-east is Ready with one broker, prod-west NotReady (WestIsDown) with two."""
    assert two.gateways.distinct == 2
    east, west = two.clusters["prod-east"].ref, two.clusters["prod-west"].ref
    east_status, west_status = await asyncio.gather(two.gateways.kafka_status(east), two.gateways.kafka_status(west))
    assert east_status.ready and not west_status.ready
    assert west_status.reason == "WestIsDown"
    assert [p.name for p in await two.gateways.broker_pods(east)] == ["prod-brokers-0"]
    assert [p.name for p in await two.gateways.broker_pods(west)] == ["prod-brokers-0", "prod-brokers-1"]
    assert await two.gateways.strimzi_api_version(west) == "v1"


async def test_each_clusters_operator_deployment_is_read_from_its_own_api(two: TwoClusters) -> None:
    """Strimzi 1.2 runs east, 0.49 runs west: each cluster's Deployment comes from its own API."""
    two.east.create(APPS_GROUP, DEPLOYMENTS, NS, operator_deployment(NS, ["4.1.1"]))
    west = operator_deployment(NS, ["4.3.1"])
    west["spec"]["template"]["spec"]["containers"][0]["image"] = "quay.io/strimzi/operator:0.49.0"
    two.west.create(APPS_GROUP, DEPLOYMENTS, NS, west)
    east_found = await two.gateways.operator_deployment(two.clusters["prod-east"].ref, NS, "strimzi-cluster-operator")
    west_found = await two.gateways.operator_deployment(two.clusters["prod-west"].ref, NS, "strimzi-cluster-operator")
    assert (east_found.image, west_found.image) == ("quay.io/strimzi/operator:1.2.0", "quay.io/strimzi/operator:0.49.0")
    assert "4.1.1=" in (east_found.kafka_images or "") and "4.3.1=" in (west_found.kafka_images or "")


async def test_a_roll_and_a_patch_on_one_cluster_touch_only_that_cluster(two: TwoClusters) -> None:
    """Rolling prod-west's broker 0 annotates west's pod; east's pod of the same name keeps no annotation.
    A spec patch of prod-east changes east's Kafka only."""
    west = two.clusters["prod-west"].ref
    pod = next(p for p in await two.gateways.broker_pods(west) if p.name == "prod-brokers-0")
    assert await two.gateways.request_pod_roll(west, pod.name, pod.uid)
    assert annotations_of(two.west, "prod-brokers-0").get(ROLL_ANNOTATION) == "true"
    assert ROLL_ANNOTATION not in annotations_of(two.east, "prod-brokers-0")

    east = two.clusters["prod-east"].ref
    await two.gateways.patch_kafka_spec(east, [KafkaSpecEdit(path=("config", "x.y"), value="1")])
    assert two.east.get(STRIMZI, "kafkas", NS, "prod")["spec"]["kafka"]["config"] == {"x.y": "1"}
    assert "config" not in two.west.get(STRIMZI, "kafkas", NS, "prod")["spec"]["kafka"]


async def test_the_watches_of_each_cluster_see_its_own_pods(two: TwoClusters, redis_client: aioredis.Redis) -> None:
    """The monitors of both clusters, with the watch clients the runtime gives them: east's watches
    list east's one pod, west's its two; a pod added to west shows in west's state only."""
    clusters = two.clusters
    evaluator = AlertEvaluator(clusters=clusters, store=RedisAlertStore(redis_client), clock=_Clock(), owner="a",
                               channel=RecordingChannel())
    monitors = Monitors(clusters=clusters, admin=SlowKafka(0.0), gateway=two.gateways, lag_reader=FakeLagReader(),  # type: ignore[arg-type]
                        reports=MemoryLagReports(), evaluator=evaluator, lease=MonitorLease(redis_client), owner="a",
                        watch_api=two.gateways.watch_clients())
    await monitors.start()
    try:
        await wait_for(lambda: all(w.state().synced for w in monitors.watches.values()), timeout=10,
                       message="the watches of both clusters synced")
        east, west = monitors.watches["prod-east"].state(), monitors.watches["prod-west"].state()
        assert [p.name for p in east.pods] == ["prod-brokers-0"]
        assert sorted(p.name for p in west.pods) == ["prod-brokers-0", "prod-brokers-1"]
        assert east.kafka is not None and east.kafka.ready
        assert west.kafka is not None and west.kafka.reason == "WestIsDown"
        create_pod(two.west, "prod-brokers-2")
        await wait_for(lambda: len(monitors.watches["prod-west"].state().pods) == 3, timeout=10,
                       message="west's new pod seen by west's watch")
        assert [p.name for p in monitors.watches["prod-east"].state().pods] == ["prod-brokers-0"]
    finally:
        await monitors.stop()


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)
