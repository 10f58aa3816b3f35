"""The throttle poll on the real scheduler and a real Redis: ``Monitors`` given the run repository
runs it every ``throttle_poll`` under the monitor lease and posts the unowned-throttles alert;
without a run repository (nobody can tell who owns a throttle) there is no throttle poll."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from bot.monitors.scheduler import Monitors
from bot.store.alert_state import MonitorLease, RedisAlertStore
from handlers.alerting.evaluator import AlertEvaluator
from handlers.replica_moves import ReplicationThrottle
from runbooks.alerting.lifecycle import AlertRules, Condition, ConditionRule
from runbooks.rules.reassignment import PartitionMove
from tests.fakes import FakeStrimzi
from tests.fakes.alerts import FakeLagReader, MemoryLagReports, RecordingChannel, cluster
from tests.fakes.store import MemoryRunRepository
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.timeout(30)
RULES = AlertRules(health_poll_s=0.3, lag_poll_s=60, throttle_poll_s=0.3, unowned_throttles=ConditionRule(for_s=0.5))


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def _monitors(redis: aioredis.Redis, runs: MemoryRunRepository | None) -> tuple[Monitors, RecordingChannel]:
    prod = cluster(rules=RULES)
    kafka = FakeStrimzi("prod", zookeeper=False, brokers=3)
    move = PartitionMove(topic="orders", partition=0, old=(0, 1), new=(0, 2), leader=0, size_bytes=0)
    await kafka.set_replication_throttles(prod.ref, "prod:9092", ReplicationThrottle.for_moves([move], 1024))
    channel = RecordingChannel()
    evaluator = AlertEvaluator(clusters={"prod": prod}, store=RedisAlertStore(redis), clock=_Clock(), owner="a",
                               channel=channel, runs=runs)
    return Monitors(clusters={"prod": prod}, admin=kafka, gateway=kafka, lag_reader=FakeLagReader(),  # type: ignore[arg-type]
                    reports=MemoryLagReports(), evaluator=evaluator, lease=MonitorLease(redis), owner="a",
                    watch_api=None, runs=runs), channel


async def test_the_throttle_poll_runs_on_its_cadence_and_posts_the_alert(redis_client: aioredis.Redis) -> None:
    """Polled every 0.3 s, held 0.5 s: posted within a few seconds, and the poll's duration recorded."""
    scheduler, channel = await _monitors(redis_client, MemoryRunRepository())
    await scheduler.start()
    try:
        await wait_for(lambda: any(v.condition is Condition.UNOWNED_THROTTLES for v in channel.posts), timeout=10,
                       message="the unowned-throttles alert posted")
    finally:
        await scheduler.stop()
    assert ("prod", "throttles") in scheduler.durations


async def test_without_a_run_repository_there_is_no_throttle_poll(redis_client: aioredis.Redis) -> None:
    """No way to tell who owns a throttle: no job, and no throttle alert however long it runs."""
    scheduler, channel = await _monitors(redis_client, None)
    await scheduler.start()
    try:
        assert scheduler.scheduler is not None
        assert scheduler.scheduler.get_job("throttles:prod") is None
        await wait_for(lambda: ("prod", "health") in scheduler.durations, timeout=10, message="a health poll")
    finally:
        await scheduler.stop()
    assert not [v for v in channel.posts if v.condition is Condition.UNOWNED_THROTTLES]
