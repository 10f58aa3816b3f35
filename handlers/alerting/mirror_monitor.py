"""The MirrorMaker 2 monitor of one managed cluster: every ``mirror_poll_s`` it lists the
KafkaMirrorMaker2 resources in the cluster's namespace (a mirror lives next to its *target*
cluster) and turns what it reads into observations for the ``AlertEvaluator``:

- ``mirror_failed``: each FAILED connector and task of ``status.connectors`` (Connect's raw status;
  Strimzi's Ready stays True next to them), with the trace's first line and the restart as the
  next action, a ``/kafka mirror-restart`` command that goes through the command service (access
  rules, then an approver) and ends as Strimzi's restart annotation.
- ``mirror_lag``: per mirror, the source topics it copies (its ``topicsPattern``) against their
  remote topics on this cluster, in records (end offsets) and in seconds (the age of the oldest
  record not yet copied).

A list that fails leaves every mirror alert as it is (it says nothing about the mirrors); a lag that
cannot be measured leaves that mirror's lag alert as it is.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime

from handlers.alerting.evaluator import AlertEvaluator
from handlers.alerting.mirror_canary_watch import CanaryWatch, stopped_sources
from handlers.clusters import ManagedCluster
from handlers.mirror_lag import IDENTITY_POLICY, MirrorSource, ReaderLagReads, measure_lag, mirror_sources
from handlers.mirror_ports import CanaryStates, MirrorCanary, MirrorMakers, MirrorMakerStatus
from handlers.ports import ClusterRef, KafkaAdmin, LagReader
from runbooks.alerting.lifecycle import AlertKey, Condition, MirrorLagRule, Observation
from runbooks.alerting.mirror import (
    ConnectorHealth,
    MirrorLag,
    TaskHealth,
    lag_over,
    mirror_failures,
)

log = logging.getLogger(__name__)

__all__ = ["IDENTITY_POLICY", "MirrorMonitor", "MirrorSource", "mirror_sources"]


def restart_command(cluster: str, mirror: str, connector: str, task: int | None) -> str:
    """The command an alert's restart button runs (``handlers.commands`` parses it back)."""
    line = f"/kafka mirror-restart {shlex.quote(cluster)} {shlex.quote(mirror)} {shlex.quote(connector)}"
    return line if task is None else f"{line} --task {task}"


def connector_health(resource: MirrorMakerStatus) -> list[ConnectorHealth]:
    return [ConnectorHealth(name=c.name, state=c.state, trace=c.trace or None,
                            tasks=tuple(TaskHealth(id=t.id, state=t.state, trace=t.trace or None, worker=t.worker_id)
                                        for t in c.tasks))
            for c in resource.connectors]


def failure_observations(cluster: str, resources: Sequence[MirrorMakerStatus]) -> list[Observation]:
    found: list[Observation] = []
    for resource in resources:
        for failure in mirror_failures(resource.name, connector_health(resource)):
            what = f"task {failure.task} of {failure.connector}" if failure.task is not None else failure.connector
            key = AlertKey(cluster=cluster, condition=Condition.MIRROR_FAILED, subject=failure.subject)
            label = f"Restart task {failure.task}" if failure.task is not None else "Restart the connector"
            found.append(Observation(
                key=key, value=1,
                detail=f"MirrorMaker 2 {resource.name}: {what} is FAILED: {failure.first_line}",
                facts={"mirror": resource.name, "connector": failure.connector, "task": failure.task,
                       "trace": failure.first_line, "annotation": failure.restart_annotation,
                       "next_command": restart_command(cluster, resource.name, failure.connector, failure.task),
                       "next_label": label},
            ))
    return found


def lag_observation(cluster: str, lag: MirrorLag, rule: MirrorLagRule, why: str = "") -> Observation | None:
    reasons = lag_over(rule.max_records, rule.max_seconds, lag)
    if not reasons:
        return None
    worst = ", ".join(f"{p.topic}-{p.partition} {p.records:,}" for p in lag.worst())
    seconds = f", the oldest record not copied is {lag.seconds:.0f} s old" if lag.seconds is not None else ""
    missing = f"; no remote topic yet for {', '.join(lag.missing_remote[:5])}" if lag.missing_remote else ""
    key = AlertKey(cluster=cluster, condition=Condition.MIRROR_LAG, subject=f"mirror/{lag.mirror}")
    return Observation(
        key=key, value=float(lag.records),
        detail=f"MirrorMaker 2 {lag.mirror} is {lag.records:,} records behind{seconds} ({'; '.join(reasons)}); "
               f"worst partitions: {worst or 'none'}{missing}" + (f"; {why}" if why else ""),
        facts={"mirror": lag.mirror, "unit": "records", "seconds": lag.seconds,
               "next_command": f"/kafka mirror status {shlex.quote(lag.mirror)}", "next_label": "Mirror status"},
    )


class MirrorMonitor:
    def __init__(
        self, cluster: ManagedCluster, *, mirrors: MirrorMakers, admin: KafkaAdmin, reader: LagReader,
        evaluator: AlertEvaluator, bootstrap: Callable[[], Awaitable[str | None]], now: Callable[[], datetime],
        clusters: Mapping[str, ManagedCluster] | None = None,
        source_bootstrap: Callable[[ManagedCluster], Awaitable[str | None]] | None = None,
        canary: MirrorCanary | None = None, canary_states: CanaryStates | None = None,
    ) -> None:
        self.cluster = cluster
        self._mirrors = mirrors
        self._reads = ReaderLagReads(admin, reader)
        self._evaluator = evaluator
        self._bootstrap = bootstrap  # this (the target) cluster's address, as the other monitors reach it
        self._now = now
        self._clusters = dict(clusters or {})
        self._source_bootstrap = source_bootstrap  # a managed source's address, as its own monitor reaches it
        # The canary alert needs the canary's clients and a place every replica reads (without: off).
        self._canaries = None
        if canary is not None and canary_states is not None:
            self._canaries = CanaryWatch(cluster, canary=canary, states=canary_states, evaluator=evaluator, now=now,
                                         bootstrap=bootstrap, locate=self._source)

    async def check(self) -> None:
        name = self.cluster.name
        try:
            resources = await self._mirrors.list_mirror_makers(self.cluster.ref)
        except Exception as exc:  # unknown, not healthy: every mirror alert stays as it is
            log.warning("listing the KafkaMirrorMaker2 resources of %s failed: %s: %s", name, type(exc).__name__, exc)
            return
        await self._evaluator.evaluate(self.cluster, {Condition.MIRROR_FAILED}, failure_observations(name, resources))
        await self._check_lag(resources)
        if self._canaries is not None:
            await self._canaries.check(resources)

    async def _check_lag(self, resources: Sequence[MirrorMakerStatus]) -> None:
        name = self.cluster.name
        rule = self.cluster.alerts.mirror_lag
        if not rule.enabled:
            return
        observations: list[Observation] = []
        unknown: set[str] = set()
        for resource in resources:
            try:
                lag = await self.measure(resource)
            except Exception as exc:
                log.warning("lag of MirrorMaker 2 %s on %s not measured: %s: %s", resource.name, name,
                            type(exc).__name__, exc)
                unknown.add(f"mirror/{resource.name}")
                continue
            seen = lag_observation(name, lag, rule, stopped_sources(resource)) if lag is not None else None
            if seen is not None:
                observations.append(seen)
        await self._evaluator.evaluate(self.cluster, {Condition.MIRROR_LAG}, observations, unknown)

    async def measure(self, resource: MirrorMakerStatus) -> MirrorLag | None:
        """The lag of every mirror of ``resource``, summed; None when it has nothing to measure."""
        sources = mirror_sources(resource.spec)
        target = await self._bootstrap()
        if not sources or not target:
            return None

        def unread(mirror: str, exc: Exception) -> None:  # the records behind stand without their age
            log.warning("record times of MirrorMaker 2 %s's source not read: %s: %s", mirror, type(exc).__name__, exc)

        return await measure_lag(self._reads, resource.name, sources, target=self.cluster.ref,
                                 target_bootstrap=target, locate=self._source, now=self._now, on_unread_times=unread)

    async def _source(self, source: MirrorSource) -> tuple[ClusterRef, str] | None:
        """Where the bot reads a mirror's source. A managed cluster named like the source's alias (as
        the mirror runbook names them) is read as the bot reads it anyway: its client settings and the
        address its monitors use, since ``spec.mirrors[].source.bootstrapServers`` may be an address
        only MirrorMaker 2's pod can reach. Any other source is read at that address with this
        cluster's client settings (a mirror's two clusters usually share their setup)."""
        managed = self._clusters.get(source.alias)
        if managed is None:
            return self.cluster.ref, source.bootstrap_servers
        if self._source_bootstrap is not None:
            address = await self._source_bootstrap(managed)
            if address:
                return managed.ref, address
        return managed.ref, managed.ref.bootstrap_servers or source.bootstrap_servers
