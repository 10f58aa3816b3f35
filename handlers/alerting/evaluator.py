"""Alert use cases: evaluate what the monitors observed against the stored alerts, post or edit
messages, and answer ``/kafka alerts``, ``/kafka snooze`` and ``/kafka lag``.

Every replica may evaluate (during a monitor hand-over two may, briefly), so nothing here trusts
memory: each alert's state is read from the store, decided by ``runbooks.alerting.lifecycle.step``, and written
back with compare-and-set *before* its message is posted or edited. A replica that loses the race
does nothing; a new message additionally needs the post claim (SET NX per alert occurrence), so two
replicas never post the same alert twice, and a restarted bot finds the open alerts where it left
them and posts none of them again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import timedelta

from handlers.alerting.alert_ports import AlertChannel, AlertStore, LagReports
from handlers.alerting.alert_text import AlertView, alert_view, alerts_text, clock_time, lag_detail, lag_overview, span
from handlers.clusters import ManagedCluster, UnknownCluster
from handlers.ports import Clock, RunRepository, VersionConflict
from handlers.replies import Reply
from runbooks.alerting.lifecycle import (
    ROLL_CONDITIONS,
    Action,
    AlertDecision,
    AlertState,
    Condition,
    MessageRef,
    Observation,
    expired,
    snooze,
    step,
)
from runbooks.engine.models import Actor

log = logging.getLogger(__name__)

POST_CLAIM_TTL_S = 600.0  # a replica that died mid-post blocks a re-post this long, then another retries
MAX_SNOOZE = timedelta(days=7)


class LoggingChannel:
    """The channel until a front end attaches its own: alerts are decided and stored, and logged."""

    async def post(self, cluster: ManagedCluster, view: AlertView) -> MessageRef:
        log.warning("alert (no channel attached) on %s: %s", cluster.name, view.headline)
        return MessageRef(channel=None, id=f"log:{view.alert_id}")

    async def update(self, cluster: ManagedCluster, ref: MessageRef, view: AlertView) -> None:
        log.info("alert update (no channel attached) on %s: %s", cluster.name, view.headline)


class AlertEvaluator:
    def __init__(
        self, *, clusters: Mapping[str, ManagedCluster], store: AlertStore, clock: Clock, owner: str,
        runs: RunRepository | None = None, channel: AlertChannel | None = None,
        mention: Callable[[str], str] = str,
    ) -> None:
        self.clusters = dict(clusters)
        self._store = store
        self._clock = clock
        self._owner = owner
        self._runs = runs
        self.channel: AlertChannel = channel or LoggingChannel()
        self.mention = mention  # how the channel shows a user id (Slack sets <@U1>)

    async def evaluate(
        self, cluster: ManagedCluster, scope: Collection[Condition], active: Sequence[Observation],
        unknown: Collection[str] = (),
    ) -> list[tuple[AlertState | None, Action]]:
        """Decide every alert of ``scope`` on ``cluster``: the ``active`` observations, and each stored
        alert of the scope that is not among them (cleared), except the subjects in ``unknown``
        (their monitor could not tell this time). Returns what was decided, for logs and tests."""
        now = self._clock.now()
        rules = cluster.alerts
        run_active = False
        if self._runs is not None and ROLL_CONDITIONS.intersection(scope):
            run_active = bool(await self._runs.active(cluster.name))
        stored = {state.key: (state, version) for state, version in await self._store.load_cluster(cluster.name)
                  if state.key.condition in scope}
        seen = {o.key: o for o in active if rules.rule(o.key.condition).enabled}
        outcomes: list[tuple[AlertState | None, Action]] = []
        for key in sorted(set(seen) | set(stored), key=lambda k: (k.condition, k.subject)):
            if key not in seen and key.subject in unknown:
                continue
            state, version = stored.get(key, (None, 0))
            rule = rules.rule(key.condition)
            if state is not None and key not in seen and expired(state, now, cooldown_s=rule.cooldown_s):
                await self._store.delete(state.id, expected_version=version)
                continue
            for_s = rules.for_window(key.condition, run_active=run_active)
            decision = step(state, seen.get(key), now=now, for_s=for_s, cooldown_s=rule.cooldown_s,
                            update_interval_s=rules.update_interval_s)
            if await self._apply(cluster, state, version, decision):
                outcomes.append((decision.state, decision.action))
        return outcomes

    async def _apply(
        self, cluster: ManagedCluster, state: AlertState | None, version: int, decision: AlertDecision,
    ) -> bool:
        new = decision.state
        if new is None:
            if state is not None:
                await self._store.delete(state.id, expected_version=version)
            return state is not None
        if new == state and decision.action is Action.NONE:
            return False
        try:
            new_version = await self._store.save(new, expected_version=version)
        except VersionConflict:
            return False  # another replica decided this alert meanwhile; the next poll looks again
        if decision.action is Action.POST:
            await self._post(cluster, new, new_version)
        elif decision.action is Action.UPDATE and new.message is not None:
            await self._edit(cluster, new)
        return True

    async def _post(self, cluster: ManagedCluster, state: AlertState, version: int) -> None:
        if not await self._store.claim_post(state.id, state.occurrence, self._owner, POST_CLAIM_TTL_S):
            return  # another replica is posting this very occurrence
        try:
            ref = await self.channel.post(cluster, alert_view(state, self._clock.now(), mention=self.mention))
        except Exception as exc:  # the state stays "firing, no message": the next evaluation retries
            log.warning("could not post alert %s on %s: %s: %s", state.id, cluster.name, type(exc).__name__, exc)
            await self._store.release_post(state.id, state.occurrence, self._owner)
            return
        for _ in range(5):  # remember where the message is, whatever else changed meanwhile
            loaded = await self._store.load(state.id)
            if loaded is None or loaded[0].occurrence != state.occurrence or loaded[0].message is not None:
                return
            recorded = loaded[0].model_copy(update={"message": ref})
            try:
                await self._store.save(recorded, expected_version=loaded[1])
            except VersionConflict:
                continue
            if loaded[0] != state:
                # It changed while being posted (a snooze, a newer value), and whoever changed it could
                # not edit a message whose id was not recorded yet: show what is stored now.
                await self._edit(cluster, recorded)
            return
        log.warning("alert %s was posted but its message could not be recorded", state.id)

    async def _edit(self, cluster: ManagedCluster, state: AlertState) -> None:
        assert state.message is not None
        try:
            view = alert_view(state, self._clock.now(), mention=self.mention)
            await self.channel.update(cluster, state.message, view)
        except Exception as exc:  # the stored state is right; the next change edits the message again
            log.warning("could not update alert %s on %s: %s: %s", state.id, cluster.name, type(exc).__name__, exc)

    # -- people's actions ------------------------------------------------------------------------

    async def snooze(self, alert_id: str, duration: timedelta, actor: Actor) -> Reply:
        if duration > MAX_SNOOZE:
            return Reply.error(f"Snoozes last at most {span(MAX_SNOOZE.total_seconds())}: a longer mute hides the "
                               "next incident too. Fix the cause or change the rule in the clusters file.")
        for _ in range(5):
            loaded = await self._store.load(alert_id)
            if loaded is None:
                return Reply.error(f"No alert {alert_id}: `/kafka alerts <cluster>` lists them.")
            state, version = loaded
            now = self._clock.now()
            snoozed = snooze(state, until=now + duration, by=actor.id)
            try:
                await self._store.save(snoozed, expected_version=version)
            except VersionConflict:
                continue
            cluster = self.clusters.get(state.key.cluster)
            if cluster is not None and snoozed.message is not None:
                await self._edit(cluster, snoozed)
            return Reply(text=f"Snoozed {alert_id} ({state.key.cluster}, {state.key.condition.value} "
                              f"{state.key.subject}) until {clock_time(now + duration)}: it posts nothing new "
                              f"for {span(duration.total_seconds())}.")
        return Reply.error(f"{alert_id} kept changing while being snoozed; try again.")


class AlertQueries:
    """``/kafka alerts``, ``/kafka snooze`` and ``/kafka lag``, for the command service."""

    def __init__(self, evaluator: AlertEvaluator, store: AlertStore, reports: LagReports, clock: Clock) -> None:
        self._evaluator = evaluator
        self._store = store
        self._reports = reports
        self._clock = clock

    def _cluster(self, name: str) -> ManagedCluster:
        clusters = self._evaluator.clusters
        if name not in clusters:
            raise UnknownCluster(name, list(clusters))
        return clusters[name]

    async def alerts(self, cluster_name: str) -> Reply:
        cluster = self._cluster(cluster_name)
        states = [state for state, _ in await self._store.load_cluster(cluster.name)]
        return Reply(text=alerts_text(cluster.name, states, self._clock.now()), ephemeral=True)

    async def snooze(self, alert_id: str, duration: timedelta, actor: Actor) -> Reply:
        return await self._evaluator.snooze(alert_id, duration, actor)

    async def cluster_of(self, alert_id: str) -> str | None:
        """The cluster alert ``alert_id`` is about; None for an unknown id (the snooze says so)."""
        loaded = await self._store.load(alert_id)
        return loaded[0].key.cluster if loaded is not None else None

    async def lag(self, cluster_name: str, group: str | None) -> Reply:
        cluster = self._cluster(cluster_name)
        report = await self._reports.latest(cluster.name)
        if report is None:
            return Reply.error(f"No lag figures for {cluster.name} yet: the lag monitor polls it every "
                               f"{cluster.alerts.lag_poll_s:g} s; try again in a moment.")
        now = self._clock.now()
        if report.error is not None:
            return Reply.error(f"The last lag poll of {cluster.name} failed: {report.error}")
        if group is None:
            return Reply(text=lag_overview(report, now), ephemeral=True)
        found = report.group(group)
        if found is None:
            names = sorted(g.group for g in report.groups)
            hint = f" The groups are: {', '.join(names[:20])}" + (" ..." if len(names) > 20 else "") if names else ""
            return Reply.error(f"No consumer group {group!r} on {cluster.name}.{hint}")
        return Reply(text=lag_detail(report, found, now), ephemeral=True)

