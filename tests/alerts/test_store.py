"""The Redis side of alerts against a real redis-server: compare-and-set of alert states, the
post claim, the monitor lease, lag reports that expire, and the evaluator on top of them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from bot.store.alert_state import MonitorLease, RedisAlertStore, RedisCanaryStates, RedisLagReports
from handlers.alerting.evaluator import AlertEvaluator
from handlers.alerting.lag_models import LagReport
from handlers.ports import StoreUnavailable, VersionConflict
from runbooks.alerting.lifecycle import AlertKey, AlertState, Condition, MessageRef, Observation, Phase
from runbooks.alerting.mirror import CanaryState
from tests.fakes.alerts import FakeClock, RecordingChannel, cluster
from tests.fakes.mirror_canary import MemoryCanaryStates

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
KEY = AlertKey(cluster="prod", condition=Condition.BROKER_DOWN, subject="broker-1")


def state(**changes: object) -> AlertState:
    return AlertState(key=KEY, phase=Phase.FIRING, since=NOW).model_copy(update=changes)


async def test_states_are_saved_with_compare_and_set(redis_client: aioredis.Redis) -> None:
    """Version 0 creates; a stale version is refused and changes nothing; the cluster index lists it."""
    alerts = RedisAlertStore(redis_client)
    assert await alerts.save(state(), expected_version=0) == 1
    assert await alerts.save(state(value=2.0), expected_version=1) == 2
    with pytest.raises(VersionConflict):
        await alerts.save(state(value=3.0), expected_version=1)
    loaded = await alerts.load(KEY.id)
    assert loaded is not None and loaded[0].value == 2.0 and loaded[1] == 2
    assert [s.id for s, _ in await alerts.load_cluster("prod")] == [KEY.id]
    assert await alerts.load_cluster("other") == []


async def test_delete_needs_the_current_version(redis_client: aioredis.Redis) -> None:
    """A replica that read an old version cannot delete what another one just changed."""
    alerts = RedisAlertStore(redis_client)
    await alerts.save(state(), expected_version=0)
    assert not await alerts.delete(KEY.id, expected_version=5)
    assert await alerts.delete(KEY.id, expected_version=1)
    assert await alerts.load(KEY.id) is None and await alerts.load_cluster("prod") == []


async def test_the_post_claim_goes_to_one_replica_and_can_be_given_back(redis_client: aioredis.Redis) -> None:
    """SET NX: of two simultaneous claims one wins; released after a failed post, it can be taken again."""
    alerts = RedisAlertStore(redis_client)
    results = await asyncio.gather(*(alerts.claim_post(KEY.id, 1, owner, 60) for owner in ("a", "b")))
    assert sorted(results) == [False, True]
    winner = "a" if results[0] else "b"
    await alerts.release_post(KEY.id, 1, "not-the-owner")
    assert not await alerts.claim_post(KEY.id, 1, "c", 60)
    await alerts.release_post(KEY.id, 1, winner)
    assert await alerts.claim_post(KEY.id, 1, "c", 60)
    assert await alerts.claim_post(KEY.id, 2, "c", 60)  # a new occurrence is a new claim


async def test_the_monitor_lease_has_one_holder_and_expires(redis_client: aioredis.Redis) -> None:
    """The holder renews; another replica waits; after the TTL (or a release) it takes over."""
    lease = MonitorLease(redis_client)
    assert await lease.hold("prod", "a", 0.3)
    assert await lease.hold("prod", "a", 0.3)
    assert not await lease.hold("prod", "b", 0.3)
    await asyncio.sleep(0.4)
    assert await lease.hold("prod", "b", 10)
    await lease.release("prod", "a")  # not the holder: nothing happens
    assert not await lease.hold("prod", "a", 10)
    await lease.release("prod", "b")
    assert await lease.hold("prod", "a", 10)


async def test_lag_reports_round_trip_and_expire(redis_client: aioredis.Redis) -> None:
    """The latest report is readable by any replica until nobody refreshes it."""
    reports = RedisLagReports(redis_client)
    report = LagReport(cluster="prod", taken_at=NOW, poll_seconds=0.5, log_offsets={"t": {0: (1, 9)}})
    await reports.save(report, ttl_s=0.3)
    assert await reports.latest("prod") == report
    await asyncio.sleep(0.4)
    assert await reports.latest("prod") is None


async def test_lag_reports_read_an_older_replicas_report_until_a_newer_one_is_stored(
        redis_client: aioredis.Redis) -> None:
    """Replicas before the compact form stored the models' form under ``kco:lag:<cluster>``: it is
    read while no report is under the new key, then the new one is; saving never writes the old key
    (where an older replica would take a compact document for groups with no partitions)."""
    reports = RedisLagReports(redis_client)
    older = LagReport(cluster="prod", taken_at=NOW, poll_seconds=0.5, log_offsets={"t": {0: (1, 9)}})
    await redis_client.set("kco:lag:prod", older.model_dump_json(), px=5_000)
    assert await reports.latest("prod") == older
    newer = older.model_copy(update={"poll_seconds": 0.25})
    await reports.save(newer, ttl_s=5)
    assert await reports.latest("prod") == newer
    assert LagReport.model_validate_json(await redis_client.get("kco:lag:prod")) == older


async def test_lag_reports_tell_figures_from_a_failed_polls_reason(redis_client: aioredis.Redis) -> None:
    """What a failed poll asks before storing its reason (good figures are kept through a blip)."""
    reports = RedisLagReports(redis_client)
    assert not await reports.holds_figures("prod")
    await reports.save(LagReport(cluster="prod", taken_at=NOW, poll_seconds=0.0, error="Kafka is down"), ttl_s=5)
    assert not await reports.holds_figures("prod")
    await reports.save(LagReport(cluster="prod", taken_at=NOW, poll_seconds=0.5), ttl_s=5)
    assert await reports.holds_figures("prod")


async def test_the_evaluator_on_redis_posts_once_across_two_replicas(redis_client: aioredis.Redis) -> None:
    """Two evaluators (two replicas) deciding the same alert at once on one Redis: one message."""
    clock = FakeClock(NOW)
    channels = [RecordingChannel(), RecordingChannel()]
    evaluators = [AlertEvaluator(clusters={"prod": cluster()}, store=RedisAlertStore(redis_client), clock=clock,
                                 owner=f"replica-{i}", channel=channels[i]) for i in range(2)]
    seen = [Observation(key=KEY, value=1, detail="broker 1 is fenced")]
    for _ in range(3):
        await asyncio.gather(*(e.evaluate(e.clusters["prod"], {Condition.BROKER_DOWN}, seen) for e in evaluators))
        clock.advance(5)
    assert sum(len(c.posts) for c in channels) == 1
    loaded = await RedisAlertStore(redis_client).load(KEY.id)
    assert loaded is not None and isinstance(loaded[0].message, MessageRef)


async def test_a_dead_redis_is_store_unavailable() -> None:
    """No server: the port's StoreUnavailable, which the command service turns into a clear refusal."""
    from bot.store import connect

    client = await connect("redis://127.0.0.1:1/0", check=False, retries=0)
    try:
        with pytest.raises(StoreUnavailable):
            await RedisAlertStore(client).load_cluster("prod")
    finally:
        await client.aclose()


async def test_the_canary_state_is_kept_per_mirror_and_expires_by_itself(redis_client: aioredis.Redis) -> None:
    """Redis and the fake agree: nothing before the first save, the last save read back whole (positions keyed by
    partition number) per (cluster, mirror); in Redis the key expires within a week (a removed mirror's goes)."""
    at = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    saved = CanaryState(cluster="west", mirror="dr", source="east", topic="kafka-chatops-canary-dr",
                        remote_topic="east.kafka-chatops-canary-dr", watching_since=at, last_sent_at=at,
                        last_arrival_at=at, last_latency_ms=85.0, positions={0: 12, 1: 3})
    for states in (RedisCanaryStates(redis_client), MemoryCanaryStates()):
        assert await states.load("west", "dr") is None
        await states.save(saved.model_copy(update={"last_latency_ms": 1.0}))
        await states.save(saved)
        assert await states.load("west", "dr") == saved and await states.load("east", "dr") is None
    ttl_ms = await redis_client.pttl("kco:mirror-canary:west:dr")
    assert 0 < ttl_ms <= 7 * 24 * 3600 * 1000
