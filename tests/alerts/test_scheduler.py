"""The monitors' scheduling on the real APScheduler 3 ``AsyncIOScheduler`` and a real Redis lease: a
poll that overruns its interval is skipped and counted, never stacked; only the lease holder polls."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import redis.asyncio as aioredis

from bot.alerts.store import MonitorLease, RedisAlertStore
from bot.monitors.scheduler import Monitors
from handlers.alerts import AlertEvaluator
from handlers.ports import BrokerPod, ClusterRef, KafkaResourceStatus
from runbooks.alerts import AlertRules
from runbooks.health import BrokerInfo, ClusterSnapshot
from tests.handlers.alert_fakes import FakeLagReader, MemoryLagReports, RecordingChannel, cluster


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
