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
    THROTTLES_SUBJECT,
    PodSeen,
    RestartEvent,
    health_observations,
    kafka_observations,
    lag_observations,
    lag_over,
    pod_observations,
    restart_observations,
    throttle_observations,
    unreachable_observation,
)
from handlers.alerting.evaluator import AlertEvaluator
from handlers.alerting.lag_document import lag_document
from handlers.alerting.lag_models import LagReport
from handlers.alerting.lag_poll import LagPoller
from handlers.alerting.lag_snapshot import LagSnapshot
from handlers.clusters import ManagedCluster
from handlers.ports import BrokerPod, ClusterGateway, KafkaAdmin, KafkaResourceStatus, RunRepository
from runbooks.alerting.lifecycle import HEALTH_CONDITIONS, Condition, lag_grew
from runbooks.rules.unowned_throttles import ThrottlesSeen, unowned_throttles

log = logging.getLogger(__name__)

KUBE_CONDITIONS = frozenset({Condition.KAFKA_NOT_READY, Condition.KAFKA_WARNING, Condition.POD_CRASHING,
                             Condition.STRIMZI_RESTART})
NO_BOOTSTRAP = "the Kafka resource has no bootstrap address yet"
REPORT_TTL_POLLS = 4  # a lag report older than this many poll intervals is gone: nobody is polling
GROWTH_BUCKETS = 30  # a group's total-lag history for the growth rule: the minimum per 1/30 of the window


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
        now: Callable[[], datetime], runs: RunRepository | None = None,
    ) -> None:
        self.cluster = cluster
        self._runs = runs
        self._admin = admin
        self._gateway = gateway
        self._poller = poller
        self._reports = reports
        self._evaluator = evaluator
        self._kube = kube
        self._now = now
        self._lag_history: dict[str, deque[tuple[float, int]]] = {}
        self._report_saved_at: float | None = None
        self._no_bootstrap = NO_BOOTSTRAP  # why, when the last look found no address (the named listener?)

    async def _bootstrap_and_brokers(self, kube: KubeState) -> tuple[str | None, list[int]]:
        ref = self.cluster.ref
        if kube.synced and kube.kafka is not None:
            self._no_bootstrap = kube.kafka.bootstrap_problem or NO_BOOTSTRAP
            return ref.bootstrap_servers or kube.kafka.bootstrap_servers, list(kube.broker_ids)
        status = await self._gateway.kafka_status(ref)
        self._no_bootstrap = status.bootstrap_problem or NO_BOOTSTRAP
        pods = await self._gateway.broker_pods(ref)
        return ref.bootstrap_servers or status.bootstrap_servers, [p.node_id for p in pods]

    async def bootstrap(self) -> str | None:
        """The cluster's bootstrap address as the monitors reach it (the mirror monitor's target side)."""
        bootstrap, _ = await self._bootstrap_and_brokers(self._kube())
        return bootstrap

    async def check_health(self) -> None:
        """One health poll: brokers, URP (per broker), under-min-ISR, offline, quorum."""
        name = self.cluster.name
        try:
            bootstrap, brokers = await self._bootstrap_and_brokers(self._kube())
            if not bootstrap:
                raise LookupError(self._no_bootstrap)
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

    async def check_throttles(self) -> None:
        """One throttle poll: replication throttles set while no run that moves replicas is active
        on the cluster. A poll that fails (Kafka, or the runs' store) leaves the alert as it is:
        it says nothing about the throttles. Without a run repository nobody can tell who owns a
        throttle, so nothing is checked."""
        if self._runs is None:
            return
        name = self.cluster.name
        try:
            runbooks = await self._active_runbooks(self._runs)
            bootstrap, _ = await self._bootstrap_and_brokers(self._kube())
            if not bootstrap:
                raise LookupError(self._no_bootstrap)
            present = await self._admin.replication_throttles(self.cluster.ref, bootstrap)
        except Exception as exc:
            log.warning("throttle poll of %s failed: %s: %s", name, type(exc).__name__, exc)
            await self._evaluator.evaluate(self.cluster, {Condition.UNOWNED_THROTTLES}, [], {THROTTLES_SUBJECT})
            return
        seen = ThrottlesSeen(brokers=present.brokers, default_rates=present.default_rates, topics=present.topics)
        found = unowned_throttles(seen, runbooks, bootstrap)
        await self._evaluator.evaluate(self.cluster, {Condition.UNOWNED_THROTTLES},
                                       throttle_observations(name, found))

    async def _active_runbooks(self, runs: RunRepository) -> list[str]:
        names = []
        for run_id in await runs.active(self.cluster.name):
            loaded = await runs.load(run_id)
            if loaded is not None:
                names.append(loaded[0].runbook)
        return names

    async def check_lag(self) -> LagSnapshot | None:
        """One lag poll: offsets and seconds, the report for every replica (once per ``lag_poll_s``),
        then the lag alerts (every poll: every second when the offsets are streamed)."""
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
            await self._lag_failed(f"{self._no_bootstrap} ({resource})", ttl)
            return None
        try:
            snapshot = await self._poller.measure(self.cluster, bootstrap, rule)
        except Exception as exc:
            await self._lag_failed(f"the lag monitor cannot read Kafka at {bootstrap}: {type(exc).__name__}: {exc}",
                                   ttl)
            return None
        now = snapshot.taken_at.timestamp()
        if self._report_saved_at is None or now - self._report_saved_at >= 0.9 * self.cluster.alerts.lag_poll_s:
            try:
                await self._reports.save(lag_document(snapshot), ttl_s=ttl)
                self._report_saved_at = now
            except Exception as exc:  # alerts still work from this process's own figures
                log.warning("could not store the lag report of %s: %s", self.cluster.name, exc)
        stats = snapshot.stats()
        grew: dict[str, bool] = {}
        for group, figures in stats.items():
            history = self._lag_history.setdefault(group, deque(maxlen=GROWTH_BUCKETS + 2))
            grew[group] = lag_grew([*history, (now, figures.sum_lag)], now, rule)
            _remember(history, now, figures.sum_lag, rule.growth_window_s / GROWTH_BUCKETS)
        for gone in set(self._lag_history) - {g.group for g in snapshot.groups}:
            del self._lag_history[gone]
        # Models only for the groups an alert is about (their worst partitions and members).
        over = [snapshot.group_lag(group) for group, figures in stats.items()
                if grew[group] or any(lag_over(rule, figures.max_lag, figures.max_lag_seconds))]
        unknown = {f"group:{group}" for group in snapshot.failed()}
        await self._evaluator.evaluate(self.cluster, {Condition.CONSUMER_LAG},
                                       lag_observations(self.cluster.name, [g for g in over if g], rule, grew), unknown)
        return snapshot

    def stop(self) -> None:
        """The monitors stop: end what the lag poller runs beside the polls."""
        self._poller.cancel()

    async def _lag_failed(self, reason: str, ttl: float) -> None:
        """A poll that could not be made. Lag alerts stay as they are (it says nothing about the
        groups). ``/kafka lag`` must not say "not polled yet" of a cluster that cannot be polled: the
        reason is stored, unless recent good figures are there, which it keeps showing until they
        expire (a blip should not hide them)."""
        log.warning("lag poll of %s failed: %s", self.cluster.name, reason)
        try:
            if not await self._reports.holds_figures(self.cluster.name):  # no models: 100 MB at 100,000 pairs
                await self._reports.save(LagReport(cluster=self.cluster.name, taken_at=self._now(), poll_seconds=0.0,
                                                   error=reason), ttl_s=ttl)
        except Exception as exc:
            log.warning("could not store why the lag poll of %s failed: %s", self.cluster.name, exc)


def _remember(history: deque[tuple[float, int]], now: float, total: int, bucket_s: float) -> None:
    """One sample of a group's total lag, kept as the smallest per bucket of ``bucket_s`` seconds:
    the growth rule compares with the smallest value in its window, so a poll every second keeps
    30 numbers per group instead of one per second (the window's edge is then known within one
    bucket)."""
    if history and now - history[-1][0] < bucket_s:
        at, smallest = history[-1]
        if total < smallest:
            history[-1] = (at, total)
        return
    history.append((now, total))
