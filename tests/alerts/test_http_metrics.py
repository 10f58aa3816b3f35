"""/metrics, /healthz and /readyz: Kafka Lag Exporter's metric names and labels rendered from a lag
report in a real Redis, the bot's own metrics, and the probes."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import redis.asyncio as aioredis

from bot.observability.http import HttpServer
from bot.observability.metrics import Exposition, add_lag_report
from bot.store import RunStore
from bot.store.alert_state import RedisAlertStore, RedisLagReports
from bot.store.repository import RedisRunRepository
from handlers.alerting.lag_models import GroupLag, LagReport, PartitionLag, SecondsFrom
from handlers.ports import GroupMember
from runbooks.alerting.lifecycle import AlertKey, AlertState, Condition, Phase
from tests.fakes.alerts import cluster

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def report() -> LagReport:
    member = GroupMember(member_id="c-1-abc", client_id="c-1", host="10.0.0.7", partitions=(("orders", 0),))
    partitions = (
        PartitionLag(topic="orders", partition=0, committed=90, end=100, lag=10, seconds=2.5,
                     seconds_from=SecondsFrom.TABLE, member_id="c-1-abc", client_id="c-1", host="10.0.0.7"),
        PartitionLag(topic="orders", partition=1, committed=5, end=50, lag=45, seconds=None,
                     seconds_from=SecondsFrom.UNKNOWN),
    )
    return LagReport(cluster="prod", taken_at=NOW, poll_seconds=0.125, log_offsets={"orders": {0: (3, 100)}},
                     groups=(GroupLag(group='app "one"', state="Stable", members=(member,), partitions=partitions),
                             GroupLag(group="broken", error="timeout")))


def test_lag_metrics_keep_kafka_lag_exporters_names_and_labels() -> None:
    """Per partition: offset, lag, lag_seconds (NaN when unknown); per group: max, sum; per partition offsets."""
    out = Exposition()
    add_lag_report(out, report())
    text = out.text()
    labels = ('cluster_name="prod",group="app \\"one\\"",topic="orders",partition="0",member_host="10.0.0.7",'
              'consumer_id="c-1-abc",client_id="c-1"')
    assert f"kafka_consumergroup_group_offset{{{labels}}} 90" in text
    assert f"kafka_consumergroup_group_lag{{{labels}}} 10" in text
    assert f"kafka_consumergroup_group_lag_seconds{{{labels}}} 2.5" in text
    assert 'kafka_consumergroup_group_lag_seconds{cluster_name="prod",group="app \\"one\\"",topic="orders",' \
           'partition="1",member_host="",consumer_id="",client_id=""} NaN' in text
    group = 'cluster_name="prod",group="app \\"one\\""'
    assert f'kafka_consumergroup_group_max_lag{{{group},is_simple_consumer="false"}} 45' in text
    assert 'kafka_consumergroup_group_max_lag_seconds{cluster_name="prod",group="app \\"one\\"",' \
           'is_simple_consumer="false"} 2.5' in text
    assert 'kafka_consumergroup_group_sum_lag{cluster_name="prod",group="app \\"one\\""} 55' in text
    assert f'kafka_consumergroup_group_topic_sum_lag{{{group},topic="orders"}} 55' in text
    assert 'kafka_partition_latest_offset{cluster_name="prod",topic="orders",partition="0"} 100' in text
    assert 'kafka_partition_earliest_offset{cluster_name="prod",topic="orders",partition="0"} 3' in text
    assert 'kafka_consumergroup_poll_time_ms{cluster_name="prod"} 125.0' in text
    assert 'group="broken"' not in text  # a group that could not be read has no series
    assert text.count("# TYPE kafka_consumergroup_group_lag gauge") == 1


async def test_the_http_server_serves_probes_and_metrics(redis_client: aioredis.Redis) -> None:
    """/healthz answers; /readyz checks Redis; /metrics has the lag report, the runs and the alerts."""
    reports, alerts = RedisLagReports(redis_client), RedisAlertStore(redis_client)
    await reports.save(report(), ttl_s=60)
    key = AlertKey(cluster="prod", condition=Condition.CONSUMER_LAG, subject="group:x")
    await alerts.save(AlertState(key=key, phase=Phase.FIRING, since=NOW), expected_version=0)
    server = HttpServer(clusters={"prod": cluster()}, redis=redis_client,
                        runs=RedisRunRepository(RunStore(redis_client)), alerts=alerts, reports=reports,
                        monitors=None, host="127.0.0.1", port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as http:
            async with http.get("/healthz") as health:
                assert health.status == 200
            async with http.get("/readyz") as ready:
                assert ready.status == 200
            async with http.get("/metrics") as metrics:
                assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                text = await metrics.text()
    finally:
        await server.stop()
    assert "kafka_consumergroup_group_lag{" in text
    assert 'kafka_chatops_alerts{cluster="prod",condition="consumer_lag",phase="firing"} 1' in text
    assert "# TYPE kafka_chatops_runs gauge" in text
