"""Wiring: build the bot's parts from the settings, for every front end (console, Slack)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import redis.asyncio as aioredis
from kubernetes import client as kube_client

from bot import store
from bot.alerting.runtime import Alerting, build_alerting
from bot.clock import RandomIds, SystemClock
from bot.config.kafka_security import KafkaSecurityConfig
from bot.config.kube_targets import ClusterKube, KubeTarget, KubeTargetProblems, resolve_kube_targets
from bot.config.settings import ConfigError, Settings, load_clusters_config
from bot.foreground import Foreground
from bot.kafka.admin import KafkaAdminAdapter
from bot.kafka.mirror_canary import KafkaMirrorCanary
from bot.kafka.security import KafkaSecurityResolver
from bot.kube.apis import ClusterGateways, load_target
from bot.kube.errors import KubeError
from bot.monitors.rebalances import RebalanceMonitor
from bot.startup import (
    REDIS_URL_FORMS,
    kube_load_problem,
    kubeconfig_load_problem,
    kubeconfig_problem,
    read_secret_file,
    redis_problem,
    redis_url_problem,
)
from bot.store.alert_state import MonitorLease, RedisCanaryStates
from bot.store.rebalance_cards import RedisRebalanceCards
from bot.store.replication import ReplicaWait
from bot.store.repository import RedisClusterLocks, RedisRunRepository
from bot.store.run_events import RunEventBus
from bot.worker import Worker
from handlers.clusters import ManagedCluster
from handlers.commands.service import CommandService
from handlers.rebalance_cards import RebalanceCards


class Closing(Protocol):
    async def close(self) -> None: ...


@dataclass
class Runtime:
    service: CommandService
    worker: Worker
    bus: RunEventBus
    redis: aioredis.Redis
    admin: Closing  # the Kafka admin client, closed with the runtime
    alerting: Alerting | None = None  # monitors, alert state and channel, /metrics (bot.alerting.runtime)
    # Shared by the front ends (requests in flight) and the background work that yields to them.
    foreground: Foreground = field(default_factory=Foreground)
    gateway: ClusterGateways | None = None  # closed last: its threads must not outlive the runtime
    rebalances: RebalanceMonitor | None = None  # the KafkaRebalance cards (bot.monitors.rebalances)

    _closed: bool = field(default=False, init=False, repr=False)

    async def start(self) -> None:
        """Start the event bus, the worker and the alerting; if one fails (say the health port is
        taken), what already runs is stopped before the error goes on: left running, the worker's
        tasks would outlive the front end and hold the process at exit."""
        try:
            self.bus.add_listener(self.worker.on_run_event)
            await self.bus.start()
            await self.worker.start()
            if self.alerting is not None:
                await self.alerting.start()
            if self.rebalances is not None:
                await self.rebalances.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.rebalances is not None:
            await self.rebalances.stop()
        if self.alerting is not None:
            await self.alerting.close()
        await self.worker.stop()
        await self.bus.stop()
        await self.admin.close()
        await self.redis.aclose()
        if self.gateway is not None:
            self.gateway.close()


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def build_runtime(
    settings: Settings, *, clusters: dict[str, ManagedCluster] | None = None, owner: str | None = None,
    poll_interval_s: float | None = None, lease_ttl_s: float | None = None,
    kube: dict[str, ClusterKube] | None = None, security: dict[str, KafkaSecurityConfig] | None = None,
) -> Runtime:
    """Everything the front ends share. The files the settings name are read first and Redis is asked
    last; each problem is a ConfigError naming the setting. ``clusters`` given without ``kube``: all
    on KUBECONFIG's current context (or the pod's service account); without ``security``, in plaintext."""
    base_dir = Path.cwd()
    if clusters is None:
        if not settings.kafka_chatops_config:
            raise ConfigError("KAFKA_CHATOPS_CONFIG is not set: point it at the clusters YAML file")
        clusters, kube, security = load_clusters_config(Path(settings.kafka_chatops_config))
        base_dir = Path(settings.kafka_chatops_config).parent
    gateway = cluster_gateways(settings.kubeconfig, kube or {}, clusters, base_dir=base_dir)
    try:
        client = await connect_redis(settings.redis_url, password_file=settings.redis_password_file,
                                     sentinel_password_file=settings.redis_sentinel_password_file)
    except BaseException:
        gateway.close()
        raise
    replica_wait = (ReplicaWait(settings.redis_wait_replicas, settings.redis_wait_timeout_ms)
                    if settings.redis_wait_replicas else None)
    runs = RedisRunRepository(store.RunStore(client, replica_wait=replica_wait))
    locks = RedisClusterLocks(store.ClusterLock(client))
    owner = owner or default_owner()
    # Every Kafka client of a cluster (admin, lag consumer, offsets stream) connects with its settings.
    securities = KafkaSecurityResolver(security or {}, gateway, base_dir=base_dir)
    admin = KafkaAdminAdapter(security=securities)
    canary = KafkaMirrorCanary(security=securities)  # the mirror runbook's aiokafka producer and consumers
    bus = RunEventBus(client)
    clock, ids = SystemClock(), RandomIds()
    foreground = Foreground()
    alerting = build_alerting(
        clusters=clusters, redis=client, runs=runs, gateway=gateway, clock=clock, owner=owner,
        monitors=settings.kafka_chatops_monitors, http_port=settings.kafka_chatops_http_port,
        http_host=settings.kafka_chatops_http_host, watch_api=gateway.watch_clients(),
        watch_timeout_s=settings.kafka_chatops_watch_timeout, lag_stream=settings.kafka_chatops_lag_stream,
        security=securities, mirrors=gateway,  # MirrorMaker 2 alerts: KafkaMirrorMaker2 status and lag
        canary=canary,  # and the mirror canary the monitor sends
    )
    service = CommandService(clusters=clusters, runs=runs, locks=locks, gateway=gateway, admin=admin,
                             clock=clock, ids=ids, alerts=alerting.queries, operator=gateway,
                             mirror_makers=gateway, canary=canary, canary_states=RedisCanaryStates(client))
    worker = Worker(
        runs=runs, locks=locks, leases=store.RunLease(client), clusters=clusters, gateway=gateway, admin=admin,
        clock=clock, ids=ids, owner=owner,
        lease_ttl_s=lease_ttl_s or settings.kafka_chatops_lease_ttl,
        poll_interval_s=poll_interval_s or settings.kafka_chatops_poll_interval, foreground=foreground,
        rebalances=gateway.rebalances(),  # the runbooks' --engine cruise-control
        mirror_makers=gateway, canary=canary,
    )
    rebalances = None
    if settings.kafka_chatops_monitors:
        kube_rebalances = gateway.rebalances()
        rebalances = RebalanceMonitor(
            RebalanceCards(clusters=clusters, rebalances=kube_rebalances, store=RedisRebalanceCards(client),
                           clock=clock, owner=owner),
            MonitorLease(client), owner=owner, interval_s=settings.kafka_chatops_rebalance_poll_interval,
            on_stop=kube_rebalances.close)
    return Runtime(service=service, worker=worker, bus=bus, redis=client, admin=admin, alerting=alerting,
                   foreground=foreground, gateway=gateway, rebalances=rebalances)


def cluster_gateways(kubeconfig: str | None, kube: dict[str, ClusterKube], clusters: dict[str, ManagedCluster],
                     *, base_dir: Path) -> ClusterGateways:
    """The Kubernetes API of every cluster (its ``kubeconfig``/``context``, else KUBECONFIG or the pod's
    service account); ConfigError naming the cluster and key, or KUBECONFIG, when one cannot be used."""
    on_default = [name for name in clusters if kube.get(name, ClusterKube()) == ClusterKube()]
    if on_default:
        problem = kubeconfig_problem(kubeconfig)
        if problem is not None:
            raise ConfigError(problem)
    try:
        targets = resolve_kube_targets({name: kube.get(name, ClusterKube()) for name in clusters},
                                       default_kubeconfig=kubeconfig, base_dir=base_dir)
    except KubeTargetProblems as exc:
        raise ConfigError.of(exc.problems) from None
    default = targets[on_default[0]] if on_default else None
    loading: KubeTarget | None = None

    def load(target: KubeTarget) -> kube_client.ApiClient:
        nonlocal loading
        loading = target
        return load_target(target)

    try:
        return ClusterGateways(targets, default=default, load=load)
    except (KubeError, TypeError, ValueError, KeyError, AttributeError) as exc:
        # The client's loader trusts the file's shape (a list where it wants a mapping raised TypeError).
        users = sorted(name for name, target in targets.items() if target == loading)
        if loading is None or loading == default:
            raise ConfigError(kubeconfig_load_problem(kubeconfig, exc)) from None
        raise ConfigError(f"clusters.{users[0] if users else '?'}: {kube_load_problem(loading, exc)}") from None


async def connect_redis(url: str, *, password_file: str | None = None,
                        sentinel_password_file: str | None = None) -> aioredis.Redis:
    """The store's Redis client, checked with a PING (and, through Sentinel, every Sentinel asked for
    the master); ConfigError naming REDIS_URL or the password file otherwise."""
    problem = redis_url_problem(url)
    if problem is not None:
        raise ConfigError(problem)
    password = read_secret_file("REDIS_PASSWORD_FILE", password_file)
    sentinel_password = read_secret_file("REDIS_SENTINEL_PASSWORD_FILE", sentinel_password_file)
    try:
        return await store.connect(url, password=password, sentinel_password=sentinel_password)
    except ValueError:
        raise ConfigError(f"REDIS_URL {store.redact_url(url)} is malformed: give {REDIS_URL_FORMS}") from None
    except store.StoreError as exc:
        raise ConfigError(redis_problem(url, exc)) from None
