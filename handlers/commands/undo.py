"""``/kafka undo <cluster> <run-id>`` and the card's Undo button: a new run that puts back what a
paused run changed.

The undo is a run like any other: planned from the cluster as it is now (``runbooks.catalogue.undo``, whose
gate allows a cluster the paused run's own change broke, and nothing else), its patch approved by
an approver (four-eyes: not the person who asked for it), followed broker by broker and verified.
It supersedes the paused run: in one atomic write (``RunRepository.supersede``) the paused run
ends, aborted with an outcome naming the undo, and its cluster lock passes to the undo, so no
other run can take the cluster in between. Asking for it takes the right to abort the paused run
(its requester or an approver).
"""

from __future__ import annotations

from collections.abc import Mapping

from handlers.clusters import ManagedCluster
from handlers.ports import Clock, ClusterGateway, ClusterHeld, Ids, KafkaAdmin, RunRepository, VersionConflict
from handlers.replies import Reply
from handlers.runs.run_text import run_card
from handlers.steps.undo import read_undo_world
from runbooks.catalogue.undo import RUNBOOK, SUPERSEDED, Footprint, footprint, plan_undo
from runbooks.engine.approvals import authorize_abort
from runbooks.engine.decide import decide
from runbooks.engine.events import Abort, Notify, Start
from runbooks.engine.models import Actor, AuditEntry, PlanRefused, Run, RunState, Step, StepSpec, plan_hash

_CAS_ATTEMPTS = 5


class UndoRequests:
    def __init__(self, *, clusters: Mapping[str, ManagedCluster], runs: RunRepository, gateway: ClusterGateway,
                 admin: KafkaAdmin, clock: Clock, ids: Ids) -> None:
        self._clusters = clusters
        self._runs = runs
        self._gateway = gateway
        self._admin = admin
        self._clock = clock
        self._ids = ids

    async def undo(self, run_id: str, actor: Actor, *, cluster: str | None = None,
                   channel: str | None = None) -> Reply:
        """Plan and create the undo of paused run ``run_id`` (on ``cluster``, when the user named one)."""
        for _ in range(_CAS_ATTEMPTS):
            loaded = await self._runs.load(run_id)
            if loaded is None:
                return Reply.error(f"No run {run_id}. `/kafka runs` lists the recent ones.")
            run, version = loaded
            refusal = self._refusal(run, actor, cluster)
            if refusal is not None:
                return Reply.error(refusal)
            try:
                change = footprint(run)
            except PlanRefused as exc:
                return Reply.error(f"Nothing to undo for run {run_id}: {exc}.")
            managed = self._clusters[run.cluster]
            world = await read_undo_world(self._gateway, self._admin, managed.ref)
            try:
                steps = plan_undo(change, world)
            except PlanRefused as exc:
                return Reply.error(f"Cannot undo run {run_id} on {run.cluster}: {exc}. `/kafka status {run.cluster}` "
                                   "shows the cluster.")
            reply = await self._supersede(run, version, change, steps, managed, actor, channel)
            if reply is not None:
                return reply
        return Reply.error(f"Run {run_id} is changing too fast to undo right now; try again.")

    def _refusal(self, run: Run, actor: Actor, cluster: str | None) -> str | None:
        if cluster is not None and run.cluster != cluster:
            return (f"Run {run.id} is on cluster {run.cluster}, not {cluster}: nothing was done "
                    f"(`/kafka undo {run.cluster} {run.id}` if that is the one you mean).")
        if run.cluster not in self._clusters:
            return f"Run {run.id} is on cluster {run.cluster}, which this bot no longer manages."
        if run.state.terminal:
            return (f"Run {run.id} is already {run.state.value}: only a paused run can be undone. The cluster may have "
                    "moved on since; make the change you want with its own command.")
        if run.state is not RunState.PAUSED:
            return (f"Run {run.id} is {run.state.value.replace('_', ' ')}, not paused: undo is for a run that paused. "
                    f"Let it pause or finish, or `/kafka abort {run.id}`.")
        refusal = authorize_abort(run, actor)
        if refusal is not None:
            return f"Only the requester or an approver of {run.cluster} may undo run {run.id} (it ends that run)."
        return None

    async def _supersede(self, paused: Run, version: int, change: Footprint, steps: list[StepSpec],
                         cluster: ManagedCluster, actor: Actor, channel: str | None) -> Reply | None:
        """Create the undo and end the paused run in one write; None when the paused run moved meanwhile."""
        now = self._clock.now()
        undo = Run(
            id=self._ids.run_id(), runbook=RUNBOOK, cluster=paused.cluster,
            params={"of": paused.id, "change": change.diff()}, requested_by=actor.id,
            channel=paused.channel or channel, created_at=now, updated_at=now,
            steps=tuple(Step(spec=s) for s in steps), plan_hash=plan_hash(steps), policy=cluster.policy)
        requested = AuditEntry(at=now, run_id=undo.id, actor=actor.id, action="requested", from_state=RunState.PLANNED,
                               to_state=RunState.PLANNED, detail=f"undo of run {paused.id}: {change.diff()}")
        started = decide(undo, Start(), now, self._ids)
        ended = decide(paused, Abort(actor=actor, reason=f"{SUPERSEDED} {undo.id}, which puts back "
                                                         f"{change.diff()}."), now, self._ids)
        if ended.refusal is not None:
            return Reply.error(ended.refusal.message)
        try:
            token = await self._runs.supersede(
                started.run, [requested, *started.audit],
                notes=[Notify(event="run_created", text=RUNBOOK), *_notes(started.effects)],
                old=ended.run, old_version=version, old_audit=ended.audit, old_notes=_notes(ended.effects))
        except VersionConflict:
            return None  # the paused run moved (a Retry, an abort): judge the request against its new state
        except ClusterHeld as held:
            return Reply.error(f"{paused.cluster} is held by run {held.holder}, not by run {paused.id}, so the undo "
                               "cannot take it over: nothing was done.")
        created = started.run.model_copy(update={"fencing_token": token})
        return Reply(text=run_card(created, now), run=created)


def _notes(effects: tuple[object, ...]) -> list[Notify]:
    return [e for e in effects if isinstance(e, Notify)]
