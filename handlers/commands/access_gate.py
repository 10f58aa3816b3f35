"""Who may ask for what, and where, applied to a parsed command before it reads or writes anything.

The rule is ``runbooks.engine.access``; this module finds what a command asks of which cluster
(a run-id command's cluster is its run's), looks up the actor's user groups when the id alone is
not enough, and audits each refusal as one line on the audit logger (who, which verb, which
cluster, where, why). A refusal has no run, so it has no place in a run's audit stream.

``help``, ``clusters`` and ``abort`` are not gated: the first two name no cluster, and stopping a
run is always open to its requester and approvers. ``snooze`` (typed, or an alert's Snooze button)
is judged like a view of the alert's cluster: its channel rule and its viewers. Muting an alert is
not a change to the cluster, but it hides it from everyone, so it is not open wider than reading it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from handlers.clusters import ManagedCluster
from handlers.ports import RunRepository
from handlers.replies import Reply
from runbooks.catalogue.steps import RUNBOOKS
from runbooks.engine.access import CONSOLE, Need, authorize_channel, authorize_request, may_view, place_name
from runbooks.engine.approvals import Refusal, RefusalCode
from runbooks.engine.models import Actor

# bot.observability.logs.AUDIT_LOGGER: a SIEM reading the logs sees refused commands next to run changes.
audit_log = logging.getLogger("kafka_chatops.audit")

_RUN_ACTIONS = frozenset({"resume", "approve", "undo"})
_VIEWS = frozenset({"status", "lag", "alerts", "runs", "run"})


class MemberGroups(Protocol):
    """Which of ``groups`` a chat user is a member of (Slack: ``usergroups.users.list``, cached)."""

    async def groups_of(self, user_id: str, groups: Sequence[str]) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Asked:
    """What a command asks: ``need`` of cluster ``cluster`` (named, or ``run_id``'s or ``alert_id``'s
    cluster) by ``verb``."""

    verb: str
    need: Need
    cluster: str | None = None
    run_id: str | None = None
    alert_id: str | None = None


def asked(command: object) -> Asked | None:
    """What ``command`` asks of a cluster; None for the commands no cluster rule applies to."""
    verb = str(getattr(command, "kind", ""))
    cluster, run_id = getattr(command, "cluster", None), getattr(command, "run_id", None)
    if verb in RUNBOOKS:
        need = Need.VIEW if getattr(command, "dry_run", False) else Need.REQUEST
        return Asked(verb=verb, need=need, cluster=cluster)
    if verb in _RUN_ACTIONS:
        return Asked(verb=verb, need=Need.RUN_ACTION, cluster=cluster, run_id=None if cluster else run_id)
    if verb == "snooze":
        return Asked(verb=verb, need=Need.VIEW, alert_id=str(getattr(command, "alert_id", "")))
    if verb in _VIEWS and (cluster or run_id):
        return Asked(verb=verb, need=Need.VIEW, cluster=cluster, run_id=None if cluster else run_id)
    return None


class AlertClusters(Protocol):
    """Which cluster an alert is about (``handlers.alerting.evaluator.AlertQueries``)."""

    async def cluster_of(self, alert_id: str) -> str | None: ...


class AccessGate:
    def __init__(self, clusters: Mapping[str, ManagedCluster], runs: RunRepository,
                 alerts: AlertClusters | None = None) -> None:
        self._clusters = clusters
        self._runs = runs
        self._alerts = alerts
        self.groups: MemberGroups | None = None  # set by a chat front end; the console has no user groups

    async def refusal(self, command: object, actor: Actor, place: str | None) -> Reply | None:
        """The refusal of ``command`` by ``actor`` typed in ``place`` (a channel id, ``CONSOLE``), audited;
        None when it may go on (or names an unknown cluster or run: the service says so)."""
        what = asked(command)
        if what is None:
            return None
        name = what.cluster
        if name is None and what.run_id is not None:
            loaded = await self._runs.load(what.run_id)
            name = loaded[0].cluster if loaded is not None else None
        if name is None and what.alert_id is not None and self._alerts is not None:
            name = await self._alerts.cluster_of(what.alert_id)
        cluster = self._clusters.get(name) if name else None
        if cluster is None:
            return None
        refused = await self._judge(cluster, actor, what, place)
        if refused is None:
            return None
        audit_log.info("refused %s by %s on %s from %s: %s", what.verb, actor.id, cluster.name, place_name(place),
                       refused.message,
                       extra={"action": "refused", "actor": actor.id, "verb": what.verb, "cluster": cluster.name,
                              "channel": place, "code": refused.code.value, "detail": refused.message})
        return Reply.error(refused.message)

    async def _judge(self, cluster: ManagedCluster, actor: Actor, what: Asked, place: str | None) -> Refusal | None:
        def judge(who: Actor) -> Refusal | None:
            return authorize_request(cluster.name, cluster.access, cluster.policy, who, what.verb, place,
                                     need=what.need)

        refused = judge(actor)
        if refused is None or refused.code is RefusalCode.WRONG_CHANNEL or self.groups is None:
            return refused
        named = (*cluster.access.groups(), *cluster.policy.approver_groups)
        if not named or place == CONSOLE:
            return refused
        member_of = await self.groups.groups_of(actor.id, tuple(dict.fromkeys(named)))
        return judge(actor.model_copy(update={"groups": tuple(dict.fromkeys((*actor.groups, *member_of)))}))

    async def may_view(self, cluster_name: str, actor: Actor, place: str | None) -> bool:
        """For listings over every cluster (``/kafka runs``): is a run of ``cluster_name`` shown to ``actor``
        asking in ``place`` (a channel id, ``CONSOLE``, None for no channel), as ``runs <cluster>`` would be judged?"""
        cluster = self._clusters.get(cluster_name)
        if cluster is None:
            return True
        if authorize_channel(cluster.name, cluster.access, place) is not None:
            return False
        if may_view(cluster.access, cluster.policy, actor):
            return True
        named = (*cluster.access.groups(), *cluster.policy.approver_groups)
        if self.groups is None or not named:
            return False
        member_of = await self.groups.groups_of(actor.id, tuple(dict.fromkeys(named)))
        return may_view(cluster.access, cluster.policy, actor.model_copy(update={"groups": member_of}))
