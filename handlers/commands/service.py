"""The use cases behind every ``/kafka`` command: one entry point shared by Slack and the console.

Parsing is ``handlers.commands.grammar``; this module decides what a command means for the clusters,
the runs and the store, and answers with a ``Reply``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from handlers.alerting.evaluator import AlertQueries
from handlers.clusters import ManagedCluster, UnknownCluster
from handlers.commands.access_gate import AccessGate
from handlers.commands.grammar import ParseError, help_text, parse
from handlers.commands.mirror import MirrorRequests
from handlers.commands.planning import Planner, Planning, Unplannable
from handlers.commands.undo import UndoRequests
from handlers.commands.verbs import (
    AbortCommand,
    AlertsCommand,
    ApproveCommand,
    ClustersCommand,
    ConfigCommand,
    HelpCommand,
    LagCommand,
    MirrorCommand,
    MirrorRestartCommand,
    ReplaceBrokerCommand,
    RestartCommand,
    ResumeCommand,
    RunsCommand,
    ScaleCommand,
    ShowRunCommand,
    SnoozeCommand,
    StatusCommand,
    UndoCommand,
    UpgradeCommand,
)
from handlers.mirror_ports import CanaryStates, MirrorCanary, MirrorMakers
from handlers.operator_deployment import OperatorDeployments
from handlers.ports import (
    Clock,
    ClusterGateway,
    ClusterHeld,
    ClusterLocks,
    Ids,
    KafkaAdmin,
    RunRepository,
    StoreUnavailable,
)
from handlers.replies import Reply, cap_echoes
from handlers.runs.actions import RunActions
from handlers.runs.run_text import plan_text, run_card, run_row
from runbooks.catalogue.config import ConfigParams
from runbooks.catalogue.mirror_restart import MirrorRestartParams
from runbooks.catalogue.replace_broker import ReplaceBrokerParams
from runbooks.catalogue.replica_steps import DEFAULT_THROTTLE
from runbooks.catalogue.restart import RestartParams
from runbooks.catalogue.runbook import P, W
from runbooks.catalogue.scale import ScaleParams
from runbooks.catalogue.upgrade import UpgradeParams
from runbooks.engine.access import CONSOLE
from runbooks.engine.decide import decide
from runbooks.engine.events import Notify, Start
from runbooks.engine.models import Actor, AuditEntry, PlanRefused, Run, RunState, Step, StepSpec, plan_hash
from runbooks.rules.health import at_min_isr, offline, under_min_isr, under_replicated

log = logging.getLogger(__name__)

# The store adapter's error already says what is unreachable and that commands wait for it: add only
# that nothing was done (it used to say it all twice).
REDIS_DOWN = "Not done: {error}."
RUNS_UNKNOWN = "  runs: unknown, Redis is unreachable"


def config_params(command: ConfigCommand) -> ConfigParams:
    if command.action == "set":
        return ConfigParams(action="set", values=command.values)
    return ConfigParams(action="unset", keys=tuple(command.entries))


class CommandService:
    def __init__(
        self, *, clusters: Mapping[str, ManagedCluster], runs: RunRepository, locks: ClusterLocks,
        gateway: ClusterGateway, admin: KafkaAdmin, clock: Clock, ids: Ids,
        alerts: AlertQueries | None = None, operator: OperatorDeployments | None = None,
        mirror_makers: MirrorMakers | None = None, canary: MirrorCanary | None = None,
        canary_states: CanaryStates | None = None,
    ) -> None:
        self.clusters = dict(clusters)
        self.alerts = alerts  # lag, alerts and snooze; None where no alert store is wired
        self._runs = runs
        self._locks = locks
        self._gateway = gateway
        self._admin = admin
        self._clock = clock
        self._ids = ids
        self.actions = RunActions(runs=runs, clock=clock, ids=ids)
        self._planner = Planner(gateway, admin, operator)  # operator: the Deployment naming supported versions
        self.access = AccessGate(self.clusters, runs, alerts)  # who may ask for what, and where
        self.mirrors = MirrorRequests(self, clusters=self.clusters, gateway=gateway, admin=admin, runs=runs,
                                      mirror_makers=mirror_makers, canary=canary, clock=clock,
                                      canary_states=canary_states)
        self.undo = UndoRequests(clusters=self.clusters, runs=runs, gateway=gateway, admin=admin, clock=clock, ids=ids)

    async def handle_text(self, text: str, actor: Actor, *, channel: str | None = None,
                          console: bool = False) -> Reply:
        try:
            command = parse(text)
        except ParseError as exc:
            return Reply.error(exc.render())
        return await self.handle(command, actor, channel=channel, text=text, console=console)

    async def handle(self, command: object, actor: Actor, *, channel: str | None = None, text: str = "",
                     console: bool = False) -> Reply:
        """A command ``handlers.commands.grammar.parse`` returned (``text``, what was typed, is for the log),
        typed in Slack channel ``channel`` or in the console (``console``: it has no channel)."""
        try:
            place = CONSOLE if console else channel
            refused = await self.access.refusal(command, actor, place)
            if refused is not None:  # before anything is read from the cluster or written
                return refused
            return await self._dispatch(command, actor, channel, place)
        except UnknownCluster as exc:
            return Reply.error(f"{exc}. `/kafka clusters` lists them.")
        except StoreUnavailable as exc:
            return Reply.error(REDIS_DOWN.format(error=exc))
        except Exception as exc:
            # Kubernetes or Kafka unreachable, or a bug: one command fails, the front end lives on,
            # and nothing was written (runs are created last, after planning succeeded).
            log.exception("command %r failed", text)
            return Reply.error(cap_echoes(f"Could not do that: {type(exc).__name__}: {exc}"))

    async def _dispatch(self, command: object, actor: Actor, channel: str | None, place: str | None) -> Reply:
        match command:
            case HelpCommand(verb=verb):
                return Reply(text=help_text(verb), ephemeral=True)
            case ClustersCommand():
                return Reply(text=self._clusters_text(), ephemeral=True)
            case StatusCommand(cluster=name):
                return await self.status(self.cluster(name))
            case LagCommand() | AlertsCommand() | SnoozeCommand():
                return await self._alert_command(command, actor)
            case RestartCommand(cluster=name, brokers=brokers, dry_run=dry_run):
                params = RestartParams(brokers=tuple(brokers) if brokers is not None else None)
                return await self.start(self._planner.restart, self.cluster(name), params, actor, channel=channel,
                                        dry_run=dry_run)
            case UpgradeCommand(cluster=name, version=version, dry_run=dry_run):
                return await self.start(self._planner.upgrade, self.cluster(name), UpgradeParams(version=version),
                                        actor, channel=channel, dry_run=dry_run)
            case ConfigCommand(cluster=name, dry_run=dry_run) as config:
                return await self.start(self._planner.config, self.cluster(name), config_params(config), actor,
                                        channel=channel, dry_run=dry_run)
            case ReplaceBrokerCommand(cluster=name, broker=broker, throttle=throttle, keep_data=keep, dry_run=dry_run,
                                      engine=engine):
                replace = ReplaceBrokerParams(broker=broker, throttle=throttle or DEFAULT_THROTTLE, keep_data=keep,
                                              engine="cruise-control" if engine == "cruise-control" else "bot")
                return await self.start(self._planner.replace_broker, self.cluster(name), replace, actor,
                                        channel=channel, dry_run=dry_run)
            case ScaleCommand(cluster=name, dry_run=dry_run) as scale:
                resize = ScaleParams(pool=scale.pool, replicas=scale.replicas, remove_ids=scale.remove_ids,
                                     throttle=scale.throttle or DEFAULT_THROTTLE,
                                     engine="cruise-control" if scale.engine == "cruise-control" else "bot")
                return await self.start(self._planner.scale, self.cluster(name), resize, actor, channel=channel,
                                        dry_run=dry_run)
            case MirrorCommand() as mirror:
                return await self.mirrors.handle(mirror, actor, channel, place)
            case MirrorRestartCommand(cluster=name, dry_run=dry_run) as restart:
                what = MirrorRestartParams(mirror=restart.mirror, connector=restart.connector, task=restart.task)
                return await self.start(self._planner.mirror_restart, self.cluster(name), what, actor,
                                        channel=channel, dry_run=dry_run)
            case RunsCommand(cluster=name):
                return await self.list_runs(self.cluster(name).name if name else None, actor, place=place)
            case ShowRunCommand(run_id=run_id):
                return await self.show_run(run_id)
            case AbortCommand(run_id=run_id):
                return await self.actions.abort(run_id, actor)
            case ResumeCommand(run_id=run_id):
                return await self.actions.resume(run_id, actor)
            case UndoCommand(cluster=name, run_id=run_id):
                return await self.undo.undo(run_id, actor, cluster=self.cluster(name).name, channel=channel)
            case ApproveCommand(run_id=run_id, step_id=step_id):
                return await self.actions.approve(run_id, actor, step_id=step_id)
        return Reply.error(f"{type(command).__name__} is not handled yet.")

    async def _alert_command(self, command: LagCommand | AlertsCommand | SnoozeCommand, actor: Actor) -> Reply:
        if self.alerts is None:
            return Reply.error("Alerts are not available in this process (no alert store is configured).")
        if isinstance(command, LagCommand):
            return await self.alerts.lag(self.cluster(command.cluster).name, command.group)
        if isinstance(command, AlertsCommand):
            return await self.alerts.alerts(self.cluster(command.cluster).name)
        return await self.alerts.snooze(command.alert_id, command.length, actor)

    def cluster(self, name: str) -> ManagedCluster:
        if name not in self.clusters:
            raise UnknownCluster(name, list(self.clusters))
        return self.clusters[name]

    def _clusters_text(self) -> str:
        if not self.clusters:
            return "No clusters are configured (KAFKA_CHATOPS_CONFIG lists them)."
        lines = ["Managed clusters:"]
        for c in self.clusters.values():
            lines.append(f"  {c.name}: Kafka {c.ref.kafka} in namespace {c.ref.namespace}")
        return "\n".join(lines)

    async def status(self, cluster: ManagedCluster) -> Reply:
        status = await self._gateway.kafka_status(cluster.ref)
        pods = await self._gateway.broker_pods(cluster.ref)
        lines = [
            f"{cluster.name}: {'Ready' if status.ready else 'NOT Ready'}"
            + (f" ({status.reason}: {status.message})" if not status.ready and status.reason else "")
            + f" · Kafka {status.kafka_version or '?'} · metadata {status.metadata_version or '?'}",
        ]
        lines += [f"  warning: {w}" for w in status.warnings]
        for pod in sorted(pods, key=lambda p: p.node_id):
            lines.append(f"  broker {pod.node_id}: {pod.name} {'Ready' if pod.ready else 'not Ready'}"
                         f" · {pod.kafka_version or '?'} · restarts {pod.restart_count}")
        bootstrap = cluster.ref.bootstrap_servers or status.bootstrap_servers
        if bootstrap:
            try:
                snap = await self._admin.snapshot(cluster.ref, bootstrap)
            except Exception as exc:  # the status must still answer when Kafka does not
                lines.append(f"  Kafka admin unreachable: {exc}")
            else:
                lines.append(
                    f"  partitions {len(snap.partitions)} · URP {len(under_replicated(snap))} · "
                    f"under min ISR {len(under_min_isr(snap))} · at min ISR {len(at_min_isr(snap))} · "
                    f"offline {len(offline(snap))} · controller {snap.active_controller}")
        try:
            active = await self._runs.active(cluster.name)
        except StoreUnavailable:  # what Kubernetes and Kafka say stands; only the runs are unknown
            lines.append(RUNS_UNKNOWN)
        else:
            if active:
                lines.append(f"  active run: {', '.join(active)}")
        return Reply(text="\n".join(lines))

    async def start(
        self, planning: Planning[P, W], cluster: ManagedCluster, params: P, actor: Actor, *, channel: str | None,
        dry_run: bool,
    ) -> Reply:
        """Every runbook of the catalogue: read the world and plan, refuse saying why, show the plan
        (dry run), or create the run."""
        runbook = planning.runbook
        try:
            steps = await planning.plan(cluster, params)
        except Unplannable as exc:
            return Reply.error(str(exc))
        except PlanRefused as exc:
            return Reply.error(cap_echoes(f"{runbook.refusal(cluster.name, params)}: {exc}."))
        if dry_run:
            return Reply(text=plan_text(cluster.name, runbook.title(params), steps))
        return await self.create_run(cluster, runbook.name, runbook.stored(params), steps, actor, channel)

    async def create_run(
        self, cluster: ManagedCluster, runbook: str, params: dict[str, object], steps: list[StepSpec],
        actor: Actor, channel: str | None,
    ) -> Reply:
        """Write the run, started, holding the cluster's lock: the record exists before any effect."""
        run_id = self._ids.run_id()
        now = self._clock.now()
        run = Run(
            id=run_id, runbook=runbook, cluster=cluster.name, params=params, requested_by=actor.id, channel=channel,
            created_at=now, updated_at=now, steps=tuple(Step(spec=s) for s in steps), plan_hash=plan_hash(steps),
            policy=cluster.policy,
        )
        created = AuditEntry(at=now, run_id=run_id, actor=actor.id, action="requested", from_state=RunState.PLANNED,
                             to_state=RunState.PLANNED, detail=f"{runbook} {params}")
        decision = decide(run, Start(), now, self._ids)
        notes = [Notify(event="run_created", text=run.runbook), *(e for e in decision.effects if isinstance(e, Notify))]
        token = await self._create_holding_lock(decision.run, [created, *decision.audit], notes)
        if isinstance(token, Reply):
            return token
        started = decision.run.model_copy(update={"fencing_token": token})
        return Reply(text=run_card(started, now), run=started)

    async def _create_holding_lock(self, run: Run, audit: list[AuditEntry], notes: list[Notify]) -> int | Reply:
        try:
            return await self._runs.create(run, audit, notes=notes)
        except ClusterHeld as held:
            holder = held.holder
        loaded = await self._runs.load(holder)
        if loaded is None or loaded[0].state.terminal:
            # The holder finished without releasing, or was never written (a lock taken by an older
            # version of the bot, which wrote the run in a second step): it protects nothing.
            await self._locks.release(run.cluster, holder)
            try:
                return await self._runs.create(run, audit, notes=notes)
            except ClusterHeld as again:  # another request took it over first
                holder = again.holder
            loaded = await self._runs.load(holder)
        if loaded is not None and not loaded[0].state.terminal:
            active = loaded[0]
            return Reply.error(
                f"{run.cluster} already has an active run: {active.id} ({active.runbook}, requested by "
                f"{active.requested_by}, {active.state.value}). One mutating run per cluster: finish or "
                f"`/kafka abort {active.id}` first.")
        return Reply.error(f"{run.cluster} is locked by run {holder}; try again in a moment.")

    async def list_runs(self, cluster: str | None, actor: Actor | None = None, *, place: str | None = None) -> Reply:
        ids = await self._runs.recent(cluster, limit=20)
        rows = []
        for run_id in ids:
            loaded = await self._runs.load(run_id)
            if loaded is None:
                continue
            # Listing every cluster: runs of a cluster the actor may not view, or whose commands are not
            # taken in this place, are left out (as `runs <cluster>` there would be refused).
            if actor is not None and cluster is None and not await self.access.may_view(loaded[0].cluster, actor,
                                                                                         place):
                continue
            rows.append(run_row(loaded[0]))
        scope = f" on {cluster}" if cluster else ""
        if not rows:
            return Reply(text=f"No runs{scope} yet.", ephemeral=True)
        return Reply(text=f"Recent runs{scope}:\n" + "\n".join(rows), ephemeral=True)

    async def show_run(self, run_id: str) -> Reply:
        loaded = await self._runs.load(run_id)
        if loaded is None:
            return Reply.error(f"No run {run_id}. `/kafka runs` lists the recent ones.")
        now: datetime = self._clock.now()
        return Reply(text=run_card(loaded[0], now), run=loaded[0])
