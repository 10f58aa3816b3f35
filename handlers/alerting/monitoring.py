"""The monitors' use cases for one cluster: the health check, the lag check and the Kubernetes
conditions, each turning what it read into observations for the ``AlertEvaluator``.

The Kubernetes side comes from watches (``bot.monitors``) as a ``KubeState``: the health check reads
its bootstrap address and the expected brokers from it instead of asking the API server every
poll, and falls back to the gateway only until the watches have synced.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from handlers.alerting.alert_ports import LagReports
from handlers.alerting.conditions import (
    PodSeen,
    RestartEvent,
    health_observations,
    kafka_observations,
    lag_observations,
    pod_observations,
    restart_observations,
    unreachable_observation,
)
from handlers.alerting.evaluator import AlertEvaluator
from handlers.alerting.lag_models import LagReport
from handlers.alerting.lag_poll import LagPoller
from handlers.clusters import ManagedCluster
from handlers.ports import BrokerPod, ClusterGateway, KafkaAdmin, KafkaResourceStatus
from runbooks.alerting.lifecycle import HEALTH_CONDITIONS, Condition, lag_grew

log = logging.getLogger(__name__)

KUBE_CONDITIONS = frozenset({Condition.KAFKA_NOT_READY, Condition.KAFKA_WARNING, Condition.POD_CRASHING,
                             Condition.STRIMZI_RESTART})
REPORT_TTL_POLLS = 4  # a lag report older than this many poll intervals is gone: nobody is polling


class KubeState(BaseModel):
    """What the watches know about one cluster right now."""

    model_config = ConfigDict(frozen=True)

    synced: bool = False  # every watch has listed once
    kafka: KafkaResourceStatus | None = None
    pods: tuple[BrokerPod, ...] = ()  # every Kafka pod of the cluster (brokers and controllers)
    broker_ids: tuple[int, ...] = ()  # the nodes whose pods have the broker role: Kafka must list them
    pods_seen: dict[str, PodSeen] = {}
    restart_events: tuple[RestartEvent, ...] = ()


class ClusterMonitor:
    def __init__(
        self, cluster: ManagedCluster, *, admin: KafkaAdmin, gateway: ClusterGateway, poller: LagPoller,
        reports: LagReports, evaluator: AlertEvaluator, kube: Callable[[], KubeState],
        now: Callable[[], datetime],
    ) -> None:
        self.cluster = cluster
        self._admin = admin
        self._gateway = gateway
        self._poller = poller
        self._reports = reports
        self._evaluator = evaluator
        self._kube = kube
        self._now = now
        self._lag_history: dict[str, deque[tuple[float, int]]] = {}

    async def _bootstrap_and_brokers(self, kube: KubeState) -> tuple[str | None, list[int]]:
        ref = self.cluster.ref
        if kube.synced and kube.kafka is not None:
            return ref.bootstrap_servers or kube.kafka.bootstrap_servers, list(kube.broker_ids)
        status = await self._gateway.kafka_status(ref)
        pods = await self._gateway.broker_pods(ref)
        return ref.bootstrap_servers or status.bootstrap_servers, [p.node_id for p in pods]

    async def check_health(self) -> None:
        """One health poll: brokers, URP (per broker), under-min-ISR, offline, quorum."""
        name = self.cluster.name
        try:
            bootstrap, brokers = await self._bootstrap_and_brokers(self._kube())
            if not bootstrap:
                raise LookupError("the Kafka resource has no bootstrap address yet")
            snapshot = await self._admin.snapshot(self.cluster.ref, bootstrap)
        except Exception as exc:  # what failed is itself the observation; URP and friends are unknown
            log.warning("health poll of %s failed: %s: %s", name, type(exc).__name__, exc)
            await self._evaluator.evaluate(self.cluster, {Condition.KAFKA_UNREACHABLE},
                                           [unreachable_observation(name, f"{type(exc).__name__}: {exc}")])
            return
        await self._evaluator.evaluate(self.cluster, HEALTH_CONDITIONS,
                                       health_observations(name, snapshot, brokers))

    async def check_kubernetes(self) -> None:
        """The Kafka resource's conditions, crashing broker pods and Strimzi restarts, from the watches."""
        kube = self._kube()
        if not kube.synced:
            return
        name, kafka = self.cluster.name, self.cluster.ref.kafka
        observations = pod_observations(name, kube.pods)
        observations += restart_observations(name, kube.restart_events, kube.pods_seen, self._now())
        if kube.kafka is not None:
            observations += kafka_observations(name, kafka, kube.kafka)
        await self._evaluator.evaluate(self.cluster, KUBE_CONDITIONS, observations)

    async def check_lag(self) -> LagReport | None:
        """One lag poll: offsets, seconds, the report for every replica, then the lag alerts."""
        rule = self.cluster.alerts.consumer_lag
        resource = f"{self.cluster.ref.namespace}/{self.cluster.ref.kafka}"
        ttl = REPORT_TTL_POLLS * self.cluster.alerts.lag_poll_s
        try:
            bootstrap, _ = await self._bootstrap_and_brokers(self._kube())
        except Exception as exc:
            await self._lag_failed(f"the lag monitor cannot read the Kafka resource {resource}: "
                                   f"{type(exc).__name__}: {exc}", ttl)
            return None
        if not bootstrap:
            await self._lag_failed(f"the Kafka resource {resource} has no bootstrap address yet", ttl)
            return None
        try:
            report = await self._poller.poll(self.cluster, bootstrap, rule)
        except Exception as exc:
            await self._lag_failed(f"the lag monitor cannot read Kafka at {bootstrap}: {type(exc).__name__}: {exc}",
                                   ttl)
            return None
        try:
            await self._reports.save(report, ttl_s=ttl)
        except Exception as exc:  # alerts still work from this process's own report
            log.warning("could not store the lag report of %s: %s", self.cluster.name, exc)
        now = report.taken_at.timestamp()
        grew: dict[str, bool] = {}
        for group in report.groups:
            if group.error is not None:
                continue
            history = self._lag_history.setdefault(group.group, deque(maxlen=256))
            history.append((now, group.sum_lag))
            while history and now - history[0][0] > rule.growth_window_s:
                history.popleft()
            grew[group.group] = lag_grew(list(history), now, rule)
        for gone in set(self._lag_history) - {g.group for g in report.groups}:
            del self._lag_history[gone]
        unknown = {f"group:{g.group}" for g in report.groups if g.error is not None}
        await self._evaluator.evaluate(self.cluster, {Condition.CONSUMER_LAG},
                                       lag_observations(self.cluster.name, report.groups, rule, grew), unknown)
        return report

    async def _lag_failed(self, reason: str, ttl: float) -> None:
        """A poll that could not be made. Lag alerts stay as they are (it says nothing about the
        groups). ``/kafka lag`` must not say "not polled yet" of a cluster that cannot be polled: the
        reason is stored, unless recent good figures are there, which it keeps showing until they
        expire (a blip should not hide them)."""
        log.warning("lag poll of %s failed: %s", self.cluster.name, reason)
        try:
            latest = await self._reports.latest(self.cluster.name)
            if latest is None or latest.error is not None:
                await self._reports.save(LagReport(cluster=self.cluster.name, taken_at=self._now(), poll_seconds=0.0,
                                                   error=reason), ttl_s=ttl)
        except Exception as exc:
            log.warning("could not store why the lag poll of %s failed: %s", self.cluster.name, exc)
