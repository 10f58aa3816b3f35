"""``/kafka mirror``: set a mirror up (the catalogue's ``mirror`` runbook, on the target cluster), and
``mirror status|pause|resume|remove <name>`` for one already there.

The set-up's world is read from both clusters (each through its own Kubernetes API and Kafka
security): Ready and health, the source's topics with partitions and bytes, the target's topics,
and the KafkaMirrorMaker2 resources in both namespaces (a name taken, the same topics mirrored
twice, the reverse direction that would loop). A mirror named in the other forms is looked up in
the namespace of every managed cluster; the access rules are then those of the cluster it was found
on, as for any command naming that cluster.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from handlers.alerting.mirror_canary_watch import canary_source
from handlers.clusters import ManagedCluster
from handlers.commands.command_models import MirrorCommand
from handlers.commands.planning import Planning
from handlers.mirror_lag import CanaryLagReads, MirrorSource, measure_lag, mirror_sources
from handlers.mirror_ports import CanaryStates, MirrorCanary, MirrorMakers, MirrorMakerStatus
from handlers.mirror_secrets import secrets_in, side_security
from handlers.ports import Clock, ClusterGateway, ClusterRef, KafkaAdmin, RunRepository
from handlers.replies import Reply, cap_echoes
from handlers.runs.run_text import plan_text
from handlers.steps.mirror import connectors_text, failure_of
from runbooks.alerting.mirror import MirrorLag, PartitionLag, canary_text, remote_topic
from runbooks.catalogue.mirror import (
    CANARY_PREFIX,
    IDENTITY_POLICY,
    MIRROR,
    ExistingMirror,
    MirrorInput,
    MirrorParams,
    MirrorSide,
    TopicInfo,
    needed_secrets,
)
from runbooks.catalogue.mirror_manage import copies_on_target, plan_remove, plan_state
from runbooks.engine.models import Actor, PlanRefused, StepSpec
from runbooks.rules.health import assess

if TYPE_CHECKING:
    from handlers.commands.service import CommandService

MAX_LAG_TOPICS = 20


def existing_mirrors(found: list[MirrorMakerStatus]) -> list[ExistingMirror]:
    out = []
    for resource in found:
        target = str((resource.spec.get("target") or {}).get("alias", ""))
        for mirror in resource.spec.get("mirrors") or []:
            config = (mirror.get("sourceConnector") or {}).get("config") or {}
            out.append(ExistingMirror(
                name=resource.name, namespace=resource.namespace, target_alias=target,
                source_alias=str((mirror.get("source") or {}).get("alias", "")),
                topics_pattern=str(mirror.get("topicsPattern") or ""),
                identity=config.get("replication.policy.class") == IDENTITY_POLICY))
    return out


@dataclass(frozen=True)
class _Read:
    side: MirrorSide
    topics: tuple[TopicInfo, ...]


class MirrorRequests:
    def __init__(self, service: CommandService, *, clusters: Mapping[str, ManagedCluster], gateway: ClusterGateway,
                 admin: KafkaAdmin, runs: RunRepository, mirror_makers: MirrorMakers | None,
                 canary: MirrorCanary | None, clock: Clock, canary_states: CanaryStates | None = None) -> None:
        self._service = service
        self._canary_states = canary_states  # the mirror monitor's canary figures
        self._clock = clock
        self._clusters = clusters
        self._gateway = gateway
        self._admin = admin
        self._runs = runs
        self._mirror_makers = mirror_makers
        self._canary = canary
        self.planning = Planning(MIRROR, self._world)

    def _port(self) -> MirrorMakers:
        if self._mirror_makers is None:
            raise PlanRefused("this bot was started without access to KafkaMirrorMaker2 resources")
        return self._mirror_makers

    async def _read(self, cluster: ManagedCluster, user: str | None) -> _Read:
        status = await self._gateway.kafka_status(cluster.ref)
        bootstrap = cluster.ref.bootstrap_servers or status.bootstrap_servers or ""
        problems: tuple[str, ...] = ()
        topics: dict[str, TopicInfo] = {}
        if bootstrap:
            try:
                problems = assess(await self._admin.snapshot(cluster.ref, bootstrap)).problems
                layout = await self._admin.replica_layout(cluster.ref, bootstrap)
            except Exception as exc:  # the refusal must say why, whatever the adapter raised
                problems = (f"Kafka did not answer ({type(exc).__name__}: {exc})",)
            else:
                for p in layout.partitions:
                    had = topics.get(p.topic, TopicInfo(name=p.topic, partitions=0))
                    topics[p.topic] = TopicInfo(name=p.topic, partitions=had.partitions + 1,
                                                size_bytes=had.size_bytes + p.size_bytes)
        side = MirrorSide(name=cluster.name, namespace=cluster.ref.namespace, ready=status.ready,
                          not_ready_reason=status.reason, problems=problems, bootstrap=bootstrap,
                          kafka_version=status.kafka_version, security=side_security(cluster, status, user),
                          kubectl=cluster.kubectl_flags)
        return _Read(side=side, topics=tuple(sorted(topics.values(), key=lambda t: t.name)))

    async def _world(self, target: ManagedCluster, params: MirrorParams) -> MirrorInput:
        port = self._port()
        if params.source == params.target:
            return MirrorInput(source=MirrorSide(name=params.source, namespace="", ready=True),
                               target=MirrorSide(name=params.target, namespace="", ready=True))  # the plan refuses
        source = self._service.cluster(params.source)
        source_read = await self._read(source, params.source_user)
        target_read = await self._read(target, params.target_user)
        mirrors = existing_mirrors(await port.list_mirror_makers(target.ref))
        mirrors += existing_mirrors(await port.list_mirror_makers(source.ref))
        world = MirrorInput(source=source_read.side, target=target_read.side, source_topics=source_read.topics,
                            target_topics=tuple(t.name for t in target_read.topics), mirrors=tuple(mirrors))
        if world.source.security.problem or world.target.security.problem:
            return world  # the plan refuses with the problem; no Secret to look for
        secrets = await secrets_in(self._gateway, target.ref, needed_secrets(params, world))
        return world.model_copy(update={"secrets": secrets})

    # -- the command ---------------------------------------------------------------------------

    async def handle(self, command: MirrorCommand, actor: Actor, channel: str | None, place: str | None) -> Reply:
        if command.action == "create":
            params = MirrorParams(source=command.source, target=command.target, topics=command.topics or "",
                                  groups=command.groups, name=command.name, identity_names=command.identity_names,
                                  source_user=command.source_user, target_user=command.target_user)
            self._service.cluster(command.source)  # an unknown source is refused before anything is read
            return await self._service.start(self.planning, self._service.cluster(command.target), params, actor,
                                             channel=channel, dry_run=command.dry_run)
        try:
            cluster, found = await self._find(command.target)
        except PlanRefused as exc:
            return Reply.error(cap_echoes(f"{exc}."))
        gate = _Gated(kind="status" if command.action == "status" else "mirror", cluster=cluster.name)
        refused = await self._service.access.refusal(gate, actor, place)
        if refused is not None:
            return refused
        if command.action == "status":
            return Reply(text=await self.status_text(cluster, found))
        try:
            steps = await self._manage_steps(cluster, found, command.action)
        except PlanRefused as exc:
            return Reply.error(cap_echoes(f"Cannot {command.action} mirror {found.name}: {exc}."))
        if command.dry_run:
            return Reply(text=plan_text(cluster.name, f"{command.action} mirror {found.name}", steps))
        return await self._service.create_run(cluster, f"mirror-{command.action}", {"name": found.name}, steps, actor,
                                              channel)

    async def _find(self, name: str) -> tuple[ManagedCluster, MirrorMakerStatus]:
        """The mirror ``name`` and the cluster it belongs to: the one its spec names as the target when
        several clusters share a namespace."""
        port = self._port()
        matches = []
        for cluster in self._clusters.values():
            found = await port.get_mirror_maker(cluster.ref, name)
            if found is not None:
                matches.append((cluster, found))
        if not matches:
            raise PlanRefused(f"no KafkaMirrorMaker2 named {name} in the namespace of any managed cluster "
                              f"({', '.join(sorted(self._clusters))})")
        for cluster, found in matches:
            if (found.spec.get("target") or {}).get("alias") == cluster.name:
                return cluster, found
        return matches[0]

    async def _manage_steps(self, cluster: ManagedCluster, found: MirrorMakerStatus, action: str) -> list[StepSpec]:
        if action == "pause":
            return plan_state(found.name, found.spec, found.generation, "paused")
        if action == "resume":
            return plan_state(found.name, found.spec, found.generation, "running")
        topics: tuple[str, ...] = ()
        bootstrap = await self._bootstrap(cluster)
        if bootstrap:
            layout = await self._admin.replica_layout(cluster.ref, bootstrap)
            topics = tuple(sorted({p.topic for p in layout.partitions}))
        return plan_remove(found.name, found.namespace, copies_on_target(found.spec, topics), _canary_of(found))

    async def _bootstrap(self, cluster: ManagedCluster) -> str:
        if cluster.ref.bootstrap_servers:
            return cluster.ref.bootstrap_servers
        return (await self._gateway.kafka_status(cluster.ref)).bootstrap_servers or ""

    async def status_text(self, cluster: ManagedCluster, found: MirrorMakerStatus) -> str:
        sources = [str((m.get("source") or {}).get("alias", "?")) for m in found.spec.get("mirrors") or []]
        ready = "Ready" if found.ready else f"NOT Ready ({found.reason}: {found.message})"[:300]
        lines = [f"Mirror {found.name}: {', '.join(sources)} → {cluster.name} (KafkaMirrorMaker2 "
                 f"{found.namespace}/{found.name}) · {ready} · generation "
                 f"{found.observed_generation}/{found.generation}"]
        for connector in found.connectors:
            lines.append(f"  {connectors_text((connector,))}")
        failed = failure_of(found)
        if failed is not None:
            lines.append(f"  ⚠ {failed}")
        lines += [f"  auto-restarted {r.connector}: {r.count} times (last {r.last_restart or '?'})"
                  for r in found.auto_restarts if r.count]
        lines += await self._lag_lines(cluster, found)
        monitored = await self._canary_line(cluster, found)
        if monitored:
            lines.append(monitored)
        canary = await self._last_canary(cluster.name, found.name)
        lines.append(f"  canary: {canary}" if canary else "  canary: no run of this bot has measured it yet")
        return "\n".join(lines)

    async def _lag_lines(self, cluster: ManagedCluster, found: MirrorMakerStatus) -> list[str]:
        """Per mirrored topic: records not copied yet and the age of the oldest of them, measured as the
        lag alert measures them (``handlers.mirror_lag``), for the sources this bot manages."""
        if self._canary is None:
            return []
        reads = CanaryLagReads(self._admin, self._canary)

        async def locate(source: MirrorSource) -> tuple[ClusterRef, str] | None:
            managed = self._clusters.get(source.alias)
            return None if managed is None else (managed.ref, await self._bootstrap(managed))

        lines = []
        try:
            target_bootstrap = await self._bootstrap(cluster)
            for source in mirror_sources(found.spec) if target_bootstrap else []:
                lag = await measure_lag(reads, found.name, [source], target=cluster.ref,
                                        target_bootstrap=target_bootstrap, locate=locate, now=self._clock.now)
                lines += _topic_lines(lag, source)
        except Exception as exc:  # the status still answers when a cluster does not
            lines.append(f"  replication lag unknown: {type(exc).__name__}: {exc}"[:300])
        return lines

    async def _canary_line(self, cluster: ManagedCluster, found: MirrorMakerStatus) -> str:
        """The monitor's canary (sent every ``mirror_canary.every``), from the state the monitor keeps."""
        if self._canary_states is None or canary_source(found) is None:
            return ""
        try:
            state = await self._canary_states.load(cluster.name, found.name)
        except Exception as exc:  # the store down: say so, the rest of the status stands
            return f"  canary (monitor): unknown, {type(exc).__name__}: {exc}"[:300]
        if state is None:
            return "  canary (monitor): not sent yet (the mirror monitor sends one every " \
                   f"{cluster.alerts.mirror_canary.every_s:g} s)"
        return f"  canary (monitor): {canary_text(state, self._clock.now())}"

    async def _last_canary(self, cluster: str, name: str) -> str:
        for run_id in await self._runs.recent(cluster, limit=50):
            loaded = await self._runs.load(run_id)
            if loaded is None or loaded[0].runbook != MIRROR.name:
                continue
            run = loaded[0]
            if MirrorParams.model_validate(run.params).resource_name != name:
                continue
            step = run.step("mirror-canary")
            if step is not None and step.detail and step.applied:
                return f"{step.detail} (run {run.id}, {step.finished_at or step.started_at:%Y-%m-%d %H:%M} UTC)"
        return ""


def _topic_lines(lag: MirrorLag, source: MirrorSource) -> list[str]:
    """One line per source topic: records behind summed over its partitions (each counted from 0 up, a
    partition ahead does not hide one behind), the oldest uncopied record's age when read."""
    by_topic: dict[str, list[PartitionLag]] = defaultdict(list)
    for row in lag.partitions:
        by_topic[row.topic].append(row)
    lines = []
    for topic in sorted(by_topic)[:MAX_LAG_TOPICS]:
        rows = by_topic[topic]
        remote = remote_topic(topic, source.alias, identity=source.identity, separator=source.separator)
        ages = [r.age_s for r in rows if r.age_s is not None]
        lines.append(f"  {topic} → {remote}: {sum(r.records for r in rows):,} records behind"
                     + (f", {max(ages):,.0f} s behind" if ages else "")
                     + (" (not on the target yet)" if all(r.target_end is None for r in rows) else ""))
    return lines


def _canary_of(found: MirrorMakerStatus) -> str | None:
    for mirror in found.spec.get("mirrors") or []:
        for part in str(mirror.get("topicsPattern") or "").split("|"):
            if part.replace("\\", "").startswith(CANARY_PREFIX):
                return part.replace("\\", "")
    return None


@dataclass(frozen=True)
class _Gated:
    """What the access rules judge for a mirror named by its name: a view (status) or a change of
    ``cluster``, the cluster whose namespace holds it."""

    kind: str
    cluster: str
    dry_run: bool = False
