"""The lag job's cadence on the real APScheduler and a real Redis lease (``bot.monitors.scheduler``):
every second while the reader streams the cluster's committed offsets, every ``lag_poll_s`` while
it falls back to the admin API, and the stream released when the lease goes."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from bot.monitors.scheduler import Monitors
from bot.store.alert_state import MonitorLease, RedisAlertStore
from handlers.alerting.evaluator import AlertEvaluator
from handlers.ports import BrokerPod, ClusterRef, ConsumerGroup, KafkaResourceStatus
from runbooks.alerting.lifecycle import AlertRules
from runbooks.rules.health import BrokerInfo, ClusterSnapshot
from tests.fakes.alerts import FakeLagReader, MemoryLagReports, RecordingChannel, cluster

pytestmark = pytest.mark.timeout(30)


class StreamingFakeReader(FakeLagReader):
    """The fake cluster of ``FakeLagReader``, streaming or not as the test says (the port
    ``bot.monitors.scheduler.StreamingLag``)."""

    def __init__(self, streaming: bool) -> None:
        super().__init__()
        self.is_streaming = streaming
        self.released: list[str] = []

    def streaming(self, cluster_name: str) -> bool:
        return self.is_streaming

    async def release(self, cluster_name: str) -> None:
        self.released.append(cluster_name)


class QuietKafka:
    async def kafka_status(self, ref: ClusterRef) -> KafkaResourceStatus:
        return KafkaResourceStatus(ready=True, bootstrap_servers="k:9092")

    async def broker_pods(self, ref: ClusterRef) -> list[BrokerPod]:
        return [BrokerPod(node_id=0, name="p-0", uid="u", ready=True)]

    async def snapshot(self, ref: ClusterRef, bootstrap: str) -> ClusterSnapshot:
        return ClusterSnapshot(taken_at=datetime.now(UTC), brokers=(BrokerInfo(id=0),))


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def monitors(reader: FakeLagReader, redis: aioredis.Redis, owner: str = "a") -> Monitors:
    prod = cluster(rules=AlertRules(health_poll_s=0.5, lag_poll_s=60))
    evaluator = AlertEvaluator(clusters={"prod": prod}, store=RedisAlertStore(redis), clock=_Clock(), owner=owner,
                               channel=RecordingChannel())
    kafka = QuietKafka()
    return Monitors(clusters={"prod": prod}, admin=kafka, gateway=kafka, lag_reader=reader,  # type: ignore[arg-type]
                    reports=MemoryLagReports(), evaluator=evaluator, lease=MonitorLease(redis), owner=owner,
                    watch_api=None)


def lag_polls(reader: FakeLagReader) -> int:
    return reader.calls.count("groups")


async def test_a_streamed_cluster_is_evaluated_every_second(redis_client: aioredis.Redis) -> None:
    reader = StreamingFakeReader(streaming=True)
    scheduler = monitors(reader, redis_client)
    await scheduler.start()
    try:
        await asyncio.sleep(3.5)
    finally:
        await scheduler.stop()
    assert lag_polls(reader) >= 3  # lag_poll_s is 60: without the stream there would be one


async def test_without_the_stream_the_admin_api_is_polled_at_lag_poll_s(redis_client: aioredis.Redis) -> None:
    reader = StreamingFakeReader(streaming=False)
    scheduler = monitors(reader, redis_client)
    await scheduler.start()
    try:
        await asyncio.sleep(3.5)
        assert lag_polls(reader) == 1
        reader.is_streaming = True  # the replay finished: every second from now on
        await asyncio.sleep(2.5)
    finally:
        await scheduler.stop()
    assert lag_polls(reader) >= 3


async def test_losing_the_lease_releases_the_stream(redis_client: aioredis.Redis) -> None:
    reader = StreamingFakeReader(streaming=True)
    scheduler = monitors(reader, redis_client)
    await scheduler.start()
    try:
        await asyncio.sleep(1.0)
        assert scheduler.leading["prod"] and reader.released == []
        await redis_client.set("kco:monitor:prod", "someone-else")  # another replica holds the lease now
        await asyncio.sleep(1.5)
        assert not scheduler.leading["prod"]
        assert reader.released == ["prod"]
    finally:
        await scheduler.stop()


class SlowStreamingReader(StreamingFakeReader):
    """Evaluations that take 0.7 s (a cluster of a million pairs on a small CPU)."""

    async def log_offsets(self, cluster: ClusterRef, bootstrap_servers: str,
                          partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, int]]:
        await asyncio.sleep(0.7)
        return await super().log_offsets(cluster, bootstrap_servers, partitions)


async def test_slow_evaluations_are_spaced_not_run_back_to_back(redis_client: aioredis.Redis) -> None:
    """Each evaluation waits twice the last one's duration: at most half the time is spent evaluating."""
    reader = SlowStreamingReader(streaming=True)
    reader.groups = [ConsumerGroup(group="g", state="Stable")]
    reader.commits = {"g": {"t": {0: 1}}}
    reader.ends = {("t", 0): (0, 1)}
    scheduler = monitors(reader, redis_client)
    await scheduler.start()
    try:
        await asyncio.sleep(6.2)
    finally:
        await scheduler.stop()
    assert 2 <= lag_polls(reader) <= 4  # back to back, every second, would be 6 or 7
