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
from typing import Any

from pydantic import BaseModel, ConfigDict

from handlers.alerting.evaluator import AlertEvaluator
from handlers.clusters import ManagedCluster
from handlers.mirror_ports import MirrorMakers, MirrorMakerStatus
from handlers.ports import ClusterRef, KafkaAdmin, LagReader
from runbooks.alerting.lifecycle import AlertKey, Condition, MirrorLagRule, Observation
from runbooks.alerting.mirror import (
    DEFAULT_EXCLUDE,
    ConnectorHealth,
    MirrorLag,
    PartitionLag,
    TaskHealth,
    lag_over,
    mirror_failures,
    mirror_lag,
    mirrored_topics,
    remote_topic,
)

log = logging.getLogger(__name__)

IDENTITY_POLICY = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"


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


class MirrorSource(BaseModel):
    """One ``spec.mirrors[]`` entry, as far as lag is concerned."""

    model_config = ConfigDict(frozen=True)

    alias: str
    bootstrap_servers: str
    topics_pattern: str
    topics_exclude: tuple[str, ...] | None = None
    identity: bool = False
    separator: str = "."


def mirror_sources(spec: Mapping[str, Any]) -> list[MirrorSource]:
    """The mirrors of a spec (v1 and v1beta2 field names); entries without what lag needs are skipped."""
    sources = []
    for entry in spec.get("mirrors") or []:
        if not isinstance(entry, dict):
            continue
        source = entry.get("source") or {}
        alias = source.get("alias") or entry.get("sourceCluster")
        bootstrap = source.get("bootstrapServers")
        pattern = entry.get("topicsPattern")
        if not (isinstance(alias, str) and isinstance(bootstrap, str) and isinstance(pattern, str)):
            continue
        config = (entry.get("sourceConnector") or {}).get("config") or {}
        exclude = entry.get("topicsExcludePattern") or config.get("topics.exclude")
        sources.append(MirrorSource(
            alias=alias, bootstrap_servers=bootstrap, topics_pattern=pattern,
            topics_exclude=tuple(str(exclude).split(",")) if exclude else None,
            identity=str(config.get("replication.policy.class", "")) == IDENTITY_POLICY,
            separator=str(config.get("replication.policy.separator", ".")),
        ))
    return sources


def stopped_sources(resource: MirrorMakerStatus) -> str:
    """Why a mirror may be behind on purpose: its source connectors that are not RUNNING (paused or
    stopped through their ``state``, or failed), said in the lag alert."""
    stopped = [f"{c.name} is {c.state}" for c in resource.connectors
               if c.name.endswith(".MirrorSourceConnector") and c.state != "RUNNING"]
    return "; ".join(stopped)


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
    ) -> None:
        self.cluster = cluster
        self._mirrors = mirrors
        self._admin = admin
        self._reader = reader
        self._evaluator = evaluator
        self._bootstrap = bootstrap  # this (the target) cluster's address, as the other monitors reach it
        self._now = now
        self._clusters = dict(clusters or {})
        self._source_bootstrap = source_bootstrap  # a managed source's address, as its own monitor reaches it

    async def check(self) -> None:
        name = self.cluster.name
        try:
            resources = await self._mirrors.list_mirror_makers(self.cluster.ref)
        except Exception as exc:  # unknown, not healthy: every mirror alert stays as it is
            log.warning("listing the KafkaMirrorMaker2 resources of %s failed: %s: %s", name, type(exc).__name__, exc)
            return
        await self._evaluator.evaluate(self.cluster, {Condition.MIRROR_FAILED}, failure_observations(name, resources))
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
        """The lag of every mirror of ``resource``, summed; None when it has nothing to measure. Only
        the remote partitions that exist are asked for (ListOffsets of a topic that does not exist
        waits out the client's deadline); one not created yet counts all the source's records."""
        sources = mirror_sources(resource.spec)
        target = await self._bootstrap()
        if not sources or not target:
            return None
        existing = set(await self._partitions(self.cluster.ref, target))
        rows: list[PartitionLag] = []
        seconds: float | None = None
        for source in sources:
            ref, address = await self._source(source)
            partitions = await self._partitions(ref, address)
            topics = set(mirrored_topics(sorted({t for t, _ in partitions}), source.topics_pattern,
                                         source.topics_exclude or DEFAULT_EXCLUDE))
            source_ends = await self._ends(ref, address, [p for p in partitions if p[0] in topics])
            remote = [(remote_topic(t, source.alias, identity=source.identity, separator=source.separator), p)
                      for t, p in sorted(source_ends)]
            remote = [tp for tp in remote if tp in existing]
            target_ends = await self._ends(self.cluster.ref, target, remote)
            lag = mirror_lag(resource.name, source_ends, target_ends, source.alias, identity=source.identity,
                             separator=source.separator)
            rows += lag.partitions
            oldest = await self._oldest_uncopied(ref, address, lag)
            if oldest is not None:
                seconds = max(seconds or 0.0, oldest)
        return MirrorLag(mirror=resource.name, partitions=tuple(rows), seconds=seconds)

    async def _source(self, source: MirrorSource) -> tuple[ClusterRef, str]:
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

    async def _partitions(self, ref: ClusterRef, bootstrap: str) -> list[tuple[str, int]]:
        snapshot = await self._admin.snapshot(ref, bootstrap)
        return sorted((p.topic, p.partition) for p in snapshot.partitions)

    async def _ends(self, ref: ClusterRef, bootstrap: str, partitions: Sequence[tuple[str, int]]) -> dict[
            tuple[str, int], int]:
        if not partitions:
            return {}
        offsets = await self._reader.log_offsets(ref, bootstrap, partitions)
        return {tp: latest for tp, (_, latest) in offsets.items()}

    async def _oldest_uncopied(self, ref: ClusterRef, bootstrap: str, lag: MirrorLag) -> float | None:
        """Seconds since the oldest record of a lagging partition that is not on the target yet was written."""
        positions = [(p.topic, p.partition, p.target_end or 0) for p in lag.worst(20)]
        if not positions:
            return 0.0
        try:
            stamps = await self._reader.record_timestamps(ref, bootstrap, positions)
        except Exception as exc:  # the records behind stand without their age
            log.warning("record times of MirrorMaker 2 %s's source not read: %s: %s", lag.mirror, type(exc).__name__,
                        exc)
            return None
        if not stamps:
            return None
        now_ms = self._now().timestamp() * 1000
        return max(0.0, (now_ms - min(stamps.values())) / 1000)
