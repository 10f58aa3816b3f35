"""The monitors' scheduling on the real APScheduler 3 ``AsyncIOScheduler`` and a real Redis lease: a
poll that overruns its interval is skipped and counted, never stacked; only the lease holder polls."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.kube import load_api_client
from bot.monitors.scheduler import Monitors
from bot.sandbox.kube import ObjectStore, start_server, write_kubeconfig
from bot.store.alert_state import MonitorLease, RedisAlertStore
from handlers.alerting.evaluator import AlertEvaluator
from handlers.ports import BrokerPod, ClusterRef, KafkaResourceStatus
from runbooks.alerting.lifecycle import AlertRules, AlertState
from runbooks.rules.health import BrokerInfo, ClusterSnapshot
from tests.fakes.alerts import FakeLagReader, MemoryLagReports, RecordingChannel, cluster
from tests.fixtures.waiting import wait_for
from tests.kube.test_gateway import create_kafka, create_pod


class SlowKafka:
    """A cluster whose health snapshot takes longer than the poll interval."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.running = 0
        self.most_at_once = 0
        self.snapshots = 0

    async def kafka_status(self, ref: ClusterRef) -> KafkaResourceStatus:
        return KafkaResourceStatus(ready=True, bootstrap_servers="k:9092")

    async def broker_pods(self, ref: ClusterRef) -> list[BrokerPod]:
        return [BrokerPod(node_id=0, name="p-0", uid="u", ready=True)]

    async def snapshot(self, ref: ClusterRef, bootstrap: str) -> ClusterSnapshot:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        self.snapshots += 1
        try:
            await asyncio.sleep(self.seconds)
        finally:
            self.running -= 1
        return ClusterSnapshot(taken_at=datetime.now(UTC), brokers=(BrokerInfo(id=0),))


def monitors(kafka: SlowKafka, redis: aioredis.Redis, owner: str) -> Monitors:
    prod = cluster(rules=AlertRules(health_poll_s=0.3, lag_poll_s=60))
    evaluator = AlertEvaluator(clusters={"prod": prod}, store=RedisAlertStore(redis), clock=_Clock(), owner=owner,
                               channel=RecordingChannel())
    return Monitors(clusters={"prod": prod}, admin=kafka, gateway=kafka, lag_reader=FakeLagReader(),  # type: ignore[arg-type]
                    reports=MemoryLagReports(), evaluator=evaluator, lease=MonitorLease(redis), owner=owner,
                    watch_api=None)


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def test_an_overrunning_poll_is_skipped_and_counted_not_stacked(redis_client: aioredis.Redis) -> None:
    """Health polls every 0.3 s that take 1 s: never two at once, and the skipped runs are counted."""
    kafka = SlowKafka(1.0)
    scheduler = monitors(kafka, redis_client, "a")
    await scheduler.start()
    try:
        await asyncio.sleep(2.5)
    finally:
        await scheduler.stop()
    assert kafka.most_at_once == 1
    assert scheduler.overruns.get(("prod", "health"), 0) >= 2
    assert kafka.snapshots >= 2 and scheduler.durations[("prod", "health")] >= 1.0


async def test_only_the_lease_holder_polls_and_a_stop_hands_over(redis_client: aioredis.Redis) -> None:
    """Two replicas: one polls; when it stops (releasing its lease) the other takes over at once."""
    kafka_a, kafka_b = SlowKafka(0.01), SlowKafka(0.01)
    a, b = monitors(kafka_a, redis_client, "a"), monitors(kafka_b, redis_client, "b")
    await a.start()
    await asyncio.sleep(0.2)
    await b.start()
    try:
        await asyncio.sleep(1.0)
        assert kafka_a.snapshots >= 2 and kafka_b.snapshots == 0
        assert a.leading["prod"] and not b.leading["prod"]
        await a.stop()
        await asyncio.sleep(1.0)
        assert kafka_b.snapshots >= 2 and b.leading["prod"]
    finally:
        await b.stop()


class GatedAlertStore(RedisAlertStore):
    """The real Redis alert store, whose ``load_cluster`` (the first thing every evaluation does)
    can be held shut, to keep an evaluation in flight as long as a test needs."""

    def __init__(self, redis: aioredis.Redis) -> None:
        super().__init__(redis)
        self.open = asyncio.Event()
        self.open.set()
        self.loads = 0
        self.held = 0

    async def load_cluster(self, cluster: str) -> list[tuple[AlertState, int]]:
        self.loads += 1
        self.held += 0 if self.open.is_set() else 1
        await self.open.wait()
        return await super().load_cluster(cluster)


async def test_a_kubernetes_change_during_an_evaluation_is_evaluated_after_it(
        redis_client: aioredis.Redis, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A pod changes while the previous change is still being evaluated (a broker restart makes a
    string of them): the newer evaluation is scheduled and runs, and the older one, finishing,
    leaves it alone (it used to remove the newer one's entry, which then raised KeyError and the
    change was never evaluated)."""
    store = ObjectStore()
    runner, url = await start_server(store)
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", url, namespace="kafka", context_name="test")
    create_kafka(store, name="prod")
    create_pod(store, "prod-brokers-0", cluster="prod")
    kubelet_status = {"name": "kafka", "ready": True, "restartCount": 0, "image": "kafka", "imageID": "kafka@sha256:0"}
    store.merge_patch("", "pods", "kafka", "prod-brokers-0", {"status": {"containerStatuses": [kubelet_status]}},
                      subresource="status")
    prod = cluster(rules=AlertRules(health_poll_s=60, lag_poll_s=60))
    alerts = GatedAlertStore(redis_client)
    evaluator = AlertEvaluator(clusters={"prod": prod}, store=alerts, clock=_Clock(), owner="a",
                               channel=RecordingChannel())
    kafka = SlowKafka(0.0)
    scheduler = Monitors(clusters={"prod": prod}, admin=kafka, gateway=kafka, lag_reader=FakeLagReader(),  # type: ignore[arg-type]
                         reports=MemoryLagReports(), evaluator=evaluator, lease=MonitorLease(redis_client), owner="a",
                         watch_api=lambda ref: load_api_client(str(kubeconfig)))
    caplog.set_level(logging.ERROR, logger="bot.monitors.scheduler")
    await scheduler.start()

    def touch(n: int) -> None:  # a pod update, as a restart makes them
        store.merge_patch("", "pods", "kafka", "prod-brokers-0", {"metadata": {"annotations": {"touch": str(n)}}})

    try:
        await wait_for(lambda: scheduler.leading.get("prod") and scheduler.watches["prod"].state().synced,
                       timeout=10, message="the monitors leading, with the watches synced")
        await asyncio.sleep(1.0)  # the start-up burst of evaluations is over
        alerts.open.clear()
        touch(1)
        await wait_for(lambda: alerts.held == 1, timeout=5, message="the evaluation of change 1 in flight")
        touch(2)
        await wait_for(lambda: "prod" in scheduler._kube_pending, timeout=5, message="change 2 scheduled")
        before = alerts.loads
        alerts.open.set()  # evaluation 1 finishes while change 2 waits out its debounce
        await wait_for(lambda: alerts.loads > before, timeout=5, message="change 2 evaluated")
        await asyncio.sleep(0.5)
    finally:
        await scheduler.stop()
        await runner.cleanup()
    assert not [r for r in caplog.records if "Kubernetes state" in r.getMessage()], caplog.text
