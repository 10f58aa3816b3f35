"""Wiring: build the bot's parts from the settings, for every front end (console, Slack)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import redis.asyncio as aioredis

from bot import store
from bot.alerts.runtime import Alerting, build_alerting
from bot.clock import RandomIds, SystemClock
from bot.config import ConfigError, Settings, load_clusters
from bot.events import RunEventBus
from bot.foreground import Foreground
from bot.kafka.admin import KafkaAdminAdapter
from bot.kube.gateway import KubeClusterGateway, load_api_client
from bot.runs import RedisClusterLocks, RedisRunRepository
from bot.worker import Worker
from handlers.clusters import ManagedCluster
from handlers.service import CommandService


@dataclass
class Runtime:
    service: CommandService
    worker: Worker
    bus: RunEventBus
    redis: aioredis.Redis
    admin: KafkaAdminAdapter
    alerting: Alerting | None = None  # monitors, alert state and channel, /metrics (bot.alerts.runtime)
    # Shared by the front ends (requests in flight) and the background work that yields to them.
    foreground: Foreground = field(default_factory=Foreground)

    async def start(self) -> None:
        self.bus.add_listener(self.worker.on_run_event)
        await self.bus.start()
        await self.worker.start()
        if self.alerting is not None:
            await self.alerting.start()

    async def close(self) -> None:
        if self.alerting is not None:
            await self.alerting.close()
        await self.worker.stop()
        await self.bus.stop()
        await self.admin.close()
        await self.redis.aclose()


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def build_runtime(
    settings: Settings, *, clusters: dict[str, ManagedCluster] | None = None, owner: str | None = None,
    poll_interval_s: float | None = None, lease_ttl_s: float | None = None,
) -> Runtime:
    if clusters is None:
        if not settings.kafka_chatops_config:
            raise ConfigError("KAFKA_CHATOPS_CONFIG is not set: point it at the clusters YAML file")
        clusters = load_clusters(Path(settings.kafka_chatops_config))
    client = await store.connect(settings.redis_url)
    runs = RedisRunRepository(store.RunStore(client))
    locks = RedisClusterLocks(store.ClusterLock(client))
    gateway = KubeClusterGateway(load_api_client(settings.kubeconfig))
    owner = owner or default_owner()
    admin = KafkaAdminAdapter()
    bus = RunEventBus(client)
    clock, ids = SystemClock(), RandomIds()
    foreground = Foreground()
    alerting = build_alerting(
        clusters=clusters, redis=client, runs=runs, gateway=gateway, clock=clock, owner=owner,
        monitors=settings.kafka_chatops_monitors, http_port=settings.kafka_chatops_http_port,
        http_host=settings.kafka_chatops_http_host, watch_api=lambda: load_api_client(settings.kubeconfig),
        watch_timeout_s=settings.kafka_chatops_watch_timeout,
    )
    service = CommandService(clusters=clusters, runs=runs, locks=locks, gateway=gateway, admin=admin,
                             clock=clock, ids=ids, alerts=alerting.queries)
    worker = Worker(
        runs=runs, locks=locks, leases=store.RunLease(client), clusters=clusters, gateway=gateway, admin=admin,
        clock=clock, ids=ids, owner=owner,
        lease_ttl_s=lease_ttl_s or settings.kafka_chatops_lease_ttl,
        poll_interval_s=poll_interval_s or settings.kafka_chatops_poll_interval, foreground=foreground,
    )
    return Runtime(service=service, worker=worker, bus=bus, redis=client, admin=admin, alerting=alerting,
                   foreground=foreground)
