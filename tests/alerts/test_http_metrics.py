"""/metrics, /healthz and /readyz: Kafka Lag Exporter's metric names and labels rendered from a lag
report in a real Redis, the bot's own metrics, and the probes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
import redis.asyncio as aioredis

from bot.observability.http import HttpServer
from bot.observability.metrics import Exposition, add_alerts, add_lag_report, add_runs
from bot.store import RunStore
from bot.store.alert_state import RedisAlertStore, RedisLagReports
from bot.store.repository import RedisRunRepository
from handlers.alerting.lag_models import GroupLag, LagReport, PartitionLag, SecondsFrom
from handlers.ports import GroupMember
from runbooks.alerting.lifecycle import AlertKey, AlertState, Condition, MessageRef, Phase
from runbooks.catalogue.restart import RestartBrokerArgs
from tests.alerts.test_scheduler import SlowKafka, monitors
from tests.fakes.alerts import cluster
from tests.fixtures.waiting import wait_for
from tests.runbooks.builders import make_run, spec, started

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def report() -> LagReport:
    member = GroupMember(member_id="c-1-abc", client_id="c-1", host="/10.0.0.7", partitions=(("orders", 0),))
    partitions = (
        PartitionLag(topic="orders", partition=0, committed=90, end=100, lag=10, seconds=2.5,
                     seconds_from=SecondsFrom.TABLE, member_id="c-1-abc", client_id="c-1", host="/10.0.0.7"),
        PartitionLag(topic="orders", partition=1, committed=5, end=50, lag=45, seconds=None,
                     seconds_from=SecondsFrom.UNKNOWN),
    )
    return LagReport(cluster="prod", taken_at=NOW, poll_seconds=0.125, log_offsets={"orders": {0: (3, 100)}},
                     groups=(GroupLag(group='app "one"', state="Stable", members=(member,), partitions=partitions),
                             GroupLag(group="broken", error="timeout")))


def test_lag_metrics_keep_kafka_lag_exporters_names_and_labels() -> None:
    """Per partition: offset, lag, lag_seconds (NaN when unknown), the member's host as the client reports it and
    "unknown" where no member holds the partition; per group: max, sum (no is_simple_consumer, as in Lag
    Exporter's source); per partition offsets."""
    out = Exposition()
    add_lag_report(out, report())
    text = out.text()
    labels = ('cluster_name="prod",group="app \\"one\\"",topic="orders",partition="0",member_host="/10.0.0.7",'
              'consumer_id="c-1-abc",client_id="c-1"')
    assert f"kafka_consumergroup_group_offset{{{labels}}} 90" in text
    assert f"kafka_consumergroup_group_lag{{{labels}}} 10" in text
    assert f"kafka_consumergroup_group_lag_seconds{{{labels}}} 2.5" in text
    assert 'kafka_consumergroup_group_lag_seconds{cluster_name="prod",group="app \\"one\\"",topic="orders",' \
           'partition="1",member_host="unknown",consumer_id="unknown",client_id="unknown"} NaN' in text
    group = 'cluster_name="prod",group="app \\"one\\""'
    assert f'kafka_consumergroup_group_max_lag{{{group}}} 45' in text
    assert 'kafka_consumergroup_group_max_lag_seconds{cluster_name="prod",group="app \\"one\\""} 2.5' in text
    assert "is_simple_consumer" not in text
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
    # Without monitors this process leads no cluster: the series about clusters come from the leader.
    assert "kafka_consumergroup_group_lag{" not in text
    assert "kafka_chatops_alerts{" not in text
    assert "# TYPE kafka_chatops_runs gauge" in text


async def fetch_metrics(server: HttpServer) -> str:
    async with aiohttp.ClientSession(f"http://127.0.0.1:{server.port}") as http, http.get("/metrics") as metrics:
        return await metrics.text()


async def test_two_replicas_export_each_lag_series_and_run_gauge_once(redis_client: aioredis.Redis) -> None:
    """Two replicas with monitors on one Redis: only the monitor-lease holder exports the cluster's lag
    series, alerts and run gauges, so sum() over both counts each once (Kafka Lag Exporter's dashboards)."""
    reports, alerts = RedisLagReports(redis_client), RedisAlertStore(redis_client)
    await reports.save(report(), ttl_s=60)
    key = AlertKey(cluster="prod", condition=Condition.CONSUMER_LAG, subject="group:x")
    await alerts.save(AlertState(key=key, phase=Phase.FIRING, since=NOW), expected_version=0)
    runs = RedisRunRepository(RunStore(redis_client))
    restarts = [spec(f"restart-{b}", args=RestartBrokerArgs(broker=b, pod=f"prod-kafka-{b}")) for b in range(3)]
    run = make_run(specs=restarts)
    await runs.create(run.model_copy(update={"cluster": "prod"}), [])
    replicas = [monitors(SlowKafka(0.01), redis_client, owner) for owner in ("a", "b")]
    servers = [HttpServer(clusters={"prod": cluster()}, redis=redis_client, runs=runs, alerts=alerts, reports=reports,
                          monitors=m, host="127.0.0.1", port=0) for m in replicas]
    for replica, server in zip(replicas, servers, strict=True):
        await replica.start()
        await server.start()
    try:
        await wait_for(lambda: sum(m.leading.get("prod", False) for m in replicas) == 1, timeout=10,
                       message="one replica leading prod's monitor")
        texts = [await fetch_metrics(server) for server in servers]
    finally:
        for replica, server in zip(replicas, servers, strict=True):
            await server.stop()
            await replica.stop()
    series = 'kafka_consumergroup_group_lag{cluster_name="prod",group="app \\"one\\"",topic="orders",partition="0"'
    assert sum(text.count(series) for text in texts) == 1
    assert sum(text.count('kafka_chatops_alerts{cluster="prod"') for text in texts) == 1
    assert sum(text.count('kafka_chatops_alerts_unposted{cluster="prod"}') for text in texts) == 1
    assert sum(text.count(f'kafka_chatops_run_in_progress{{cluster="prod",run_id="{run.id}"') for text in texts) == 1
    leader = texts[[m.leading.get("prod", False) for m in replicas].index(True)]
    assert f'kafka_chatops_run_steps_left{{cluster="prod",run_id="{run.id}",runbook="restart"}} 3' in leader
    assert "kafka_chatops_run_in_progress{" in leader


def test_run_gauges_say_the_step_the_steps_left_and_how_long_an_approval_has_waited() -> None:
    """A run waiting 95 s for its first approval: in progress on b0, 3 steps left, waited 95 s."""
    driver = started(3)
    out = Exposition()
    add_runs(out, [driver.run], now=driver.clock.now + timedelta(seconds=95))
    text = out.text()
    labels = 'cluster="prod-east",run_id="run-1",runbook="restart"'
    assert f'kafka_chatops_run_in_progress{{{labels},state="awaiting_approval",step="b0"}} 1' in text
    assert f"kafka_chatops_run_steps_left{{{labels}}} 3" in text
    assert f'kafka_chatops_approval_waiting_seconds{{{labels},step="b0"}} 95.0' in text
    assert 'kafka_chatops_runs{cluster="prod-east",state="awaiting_approval"} 1' in text


def test_alerts_firing_without_a_message_are_counted_per_cluster() -> None:
    """A firing alert whose post failed counts as unposted; one posted, one snoozed, one pending, and
    one resolved do not; a cluster with none says 0, so an alert rule can tell "none" from "no data"."""
    def alert(subject: str, **changes: object) -> AlertState:
        key = AlertKey(cluster="prod", condition=Condition.CONSUMER_LAG, subject=subject)
        return AlertState(key=key, phase=Phase.FIRING, since=NOW).model_copy(update=changes)

    alerts = [alert("group:failed"), alert("group:posted", message=MessageRef(channel="C1", id="1.2")),
              alert("group:snoozed", snoozed_until=NOW + timedelta(hours=1)),
              alert("group:pending", phase=Phase.PENDING), alert("group:over", phase=Phase.RESOLVED)]
    out = Exposition()
    add_alerts(out, alerts, ["prod", "staging"], now=NOW)
    text = out.text()
    assert 'kafka_chatops_alerts_unposted{cluster="prod"} 1' in text
    assert 'kafka_chatops_alerts_unposted{cluster="staging"} 0' in text
    assert 'kafka_chatops_alerts{cluster="prod",condition="consumer_lag",phase="firing"} 3' in text
