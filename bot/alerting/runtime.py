"""Wiring of the alert side of a bot process: the evaluator and its Redis state, the commands'
queries, the monitors (health, lag, Kubernetes watches) and the HTTP server for probes and metrics.

A front end attaches its channel (``attach``) before ``start``: the console prints alerts, Slack
posts them in each cluster's channel. Without one, alerts are decided, stored and logged.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from kubernetes import client

from bot.kafka.admin import KafkaAdminAdapter
from bot.kafka.lag import KafkaLagReader
from bot.kafka.lag_stream import StreamingLagReader
from bot.kafka.security import ClientSecurities
from bot.monitors.scheduler import Monitors
from bot.store.alert_state import MonitorLease, RedisAlertStore, RedisCanaryStates, RedisLagReports
from handlers.alerting.alert_ports import AlertChannel
from handlers.alerting.evaluator import AlertEvaluator, AlertQueries
from handlers.clusters import ManagedCluster
from handlers.mirror_ports import MirrorCanary, MirrorMakers
from handlers.ports import Clock, ClusterGateway, ClusterRef, KafkaAdmin, RunRepository

if TYPE_CHECKING:  # imported where a port is given: aiohttp is ~10 MB resident a bot without one never uses
    from bot.observability.http import HttpServer

# The monitors' own admin client: a slow lag poll never queues behind (or ahead of) a runbook's
# calls, and a short deadline keeps a poll within a few intervals when a broker dies.
MONITOR_CALL_DEADLINE_S = 10.0


@dataclass
class Alerting:
    evaluator: AlertEvaluator
    queries: AlertQueries
    store: RedisAlertStore
    reports: RedisLagReports
    monitors: Monitors | None
    http: HttpServer | None
    lag_reader: StreamingLagReader
    monitor_admin: KafkaAdminAdapter
    mirror_reader: KafkaLagReader | None = None  # both sides of each MirrorMaker 2 (its consumers closed here)

    def attach(self, channel: AlertChannel, *, mention: Callable[[str], str] | None = None) -> None:
        self.evaluator.channel = channel
        if mention is not None:
            self.evaluator.mention = mention

    async def start(self) -> None:
        if self.http is not None:
            await self.http.start()
        if self.monitors is not None:
            await self.monitors.start()

    async def close(self) -> None:
        if self.monitors is not None:
            await self.monitors.stop()
        if self.http is not None:
            await self.http.stop()
        with contextlib.suppress(Exception):
            await self.lag_reader.close()
        if self.mirror_reader is not None:
            with contextlib.suppress(Exception):
                await self.mirror_reader.close()
        with contextlib.suppress(Exception):
            await self.monitor_admin.close()


def build_alerting(
    *, clusters: Mapping[str, ManagedCluster], redis: aioredis.Redis, runs: RunRepository, gateway: ClusterGateway,
    clock: Clock, owner: str, monitors: bool, http_port: int | None,
    watch_api: Callable[[ClusterRef], client.ApiClient] | None,
    http_host: str = "0.0.0.0", watch_timeout_s: int = 60, lag_stream: bool = True,
    security: ClientSecurities | None = None, mirrors: MirrorMakers | None = None, canary: MirrorCanary | None = None,
) -> Alerting:
    store = RedisAlertStore(redis)
    reports = RedisLagReports(redis)
    evaluator = AlertEvaluator(clusters=clusters, store=store, clock=clock, owner=owner, runs=runs)
    queries = AlertQueries(evaluator, store, reports, clock)
    monitor_admin = KafkaAdminAdapter(client_id="kafka-chatops-monitor", call_deadline_s=MONITOR_CALL_DEADLINE_S,
                                      security=security)
    # lag_stream=False (KAFKA_CHATOPS_LAG_STREAM=false): committed offsets from the admin API only.
    lag_reader = StreamingLagReader(KafkaLagReader(monitor_admin), stream=lag_stream)
    admin: KafkaAdmin = monitor_admin
    mirror_reader = KafkaLagReader(monitor_admin, client_id="kafka-chatops-mirror-lag") if mirrors is not None else None
    scheduler = Monitors(
        clusters=clusters, admin=admin, gateway=gateway, lag_reader=lag_reader, reports=reports, evaluator=evaluator,
        lease=MonitorLease(redis), owner=owner, watch_api=watch_api, watch_timeout_s=watch_timeout_s, runs=runs,
        mirrors=mirrors, mirror_reader=mirror_reader,
        canary=canary if mirrors is not None else None, canary_states=RedisCanaryStates(redis),
    ) if monitors else None
    http = None
    if http_port is not None:
        from bot.observability.http import HttpServer  # see the TYPE_CHECKING import above

        http = HttpServer(clusters=clusters, redis=redis, runs=runs, alerts=store, reports=reports,
                          monitors=scheduler, host=http_host, port=http_port)
    return Alerting(evaluator=evaluator, queries=queries, store=store, reports=reports, monitors=scheduler, http=http,
                    lag_reader=lag_reader, monitor_admin=monitor_admin, mirror_reader=mirror_reader)
