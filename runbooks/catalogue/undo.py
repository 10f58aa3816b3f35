"""Undoing a paused run's change (pure): what the run changed, by its own record; whether the
cluster's trouble is that change alone; and the plan that puts the previous values back.

**What the run changed.** Every ``patch-kafka`` step records, just before its patch, the values it
replaces (``observed["previous"]``), each broker pod's uid and restart count, and the generation
(``handlers.steps.cluster``). The applied steps' edits, with those values, are the run's change:

- config runs: every key goes back to its previous value (removed where it was not set);
- upgrades: ``spec.kafka.version`` goes back; ``metadataVersion`` stays where the run pinned it
  (that pin is what lets the old binaries run again), and so do the protocol pins of ZooKeeper
  clusters. Once the run has raised the metadata version or the protocol there is no undo: Kafka
  cannot go below it, and a downgrade is a manual procedure.

**Which brokers it touched**: those whose pod is not the one the first patch saw (the operator
restarted it) and, when the change had keys Kafka applies live, those whose container restarted
since (it crashed in place). A broker that crashed in place under a change that only reaches
brokers by restarting them is not the change's doing.

**The gate** (``undo_problems``). An undo may start on a cluster that is not Ready, because the
trouble may be the run's own change. It refuses, saying which, when anything else is wrong: a
broker down that the change did not touch, the Kafka resource NotReady from before the change or
naming a pod the change did not touch, a partition missing a replica other than on the touched
brokers, no quorum leader, a reassignment in flight, reconciliation paused, Kafka not answering,
or the run's keys changed since by someone else (the undo never overwrites their change).

**The plan**: one approved patch putting the previous values back (the generation it was planned
at as its precondition), one step per touched broker in the operator's order (the broken ones
first: Strimzi's roller restarts unready pods first), the operator's end, then the same
verification as any config change or upgrade.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from runbooks.catalogue.step_args import (
    AwaitOperatorArgs,
    KafkaPatchArgs,
    PatchKafkaArgs,
    RollExpectation,
    VerifyConfigArgs,
    VerifyUpgradeArgs,
    edit,
    follow_steps,
)
from runbooks.engine.models import PlanRefused, Run, RunState, StepSpec
from runbooks.rules.health import ClusterSnapshot, degraded_besides, reassigning, restart_order
from runbooks.rules.rolls import BrokerPodState

RUNBOOK = "undo"
SUPERSEDED = "Superseded by undo run"  # how a paused run's outcome starts once an undo replaced it
UNDOABLE = ("config", "upgrade")
# Steps after which the cluster cannot go back (the upgrade runbook's ids).
_ONE_WAY = {"raise-metadata": "raised the metadata version", "raise-protocol": "raised inter.broker.protocol.version",
            "raise-format": "raised log.message.format.version"}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


def show(value: Any) -> str:
    if value is None:
        return "(not set)"
    return str(value).lower() if isinstance(value, bool) else str(value)


class SpecValue(_Frozen):
    path: tuple[str, ...]  # under spec.kafka
    value: Any = None  # None: absent

    @property
    def name(self) -> str:
        return ".".join(self.path[1:]) if self.path[0] == "config" and len(self.path) > 1 else ".".join(self.path)


class Footprint(_Frozen):
    """What a run changed, from its own record."""

    run_id: str
    runbook: str
    restore: tuple[SpecValue, ...]  # the values before the run
    wrote: tuple[SpecValue, ...]  # the run's values, which must still be there to be undone
    uids: dict[str, str]  # broker -> pod uid before the run's first patch
    restarts: dict[str, int]  # broker -> container restarts before it
    generation: int  # the Kafka resource's generation before it
    live: bool = False  # some of its keys were applied to running brokers (no restart)

    def diff(self) -> str:
        return "; ".join(f"{w.name}: {show(w.value)} -> {show(r.value)}" for w, r in zip(self.wrote, self.restore,
                                                                                            strict=True))


class RevertKafkaArgs(KafkaPatchArgs):
    """The undo's patch: ``patch-kafka``'s fields, the run it undoes and that run's footprint, which
    its gate judges the cluster against again when it starts (``handlers.steps.undo``)."""

    kind: Literal["revert-kafka"] = "revert-kafka"
    of: str
    footprint: Footprint


class UndoInput(_Frozen):
    """The cluster now, read through the ports."""

    ready: bool
    reason: str = ""
    message: str = ""
    generation: int
    observed_generation: int
    paused: bool = False  # strimzi.io/pause-reconciliation
    spec: dict[str, Any] = {}
    kafka_version: str | None = None
    metadata_version: str | None = None
    pods: tuple[BrokerPodState, ...] = ()
    snapshot: ClusterSnapshot | None = None
    snapshot_error: str = ""


def footprint(run: Run) -> Footprint:
    """The run's change, or PlanRefused saying why there is nothing (or nothing safe) to undo."""
    if run.runbook == RUNBOOK:
        raise PlanRefused(f"run {run.id} is itself an undo; undoing it would make the change that broke the cluster "
                          "again. If that is what you want, make it with its own command")
    if run.runbook not in UNDOABLE:
        raise PlanRefused(f"run {run.id} is a {run.runbook} run, which changes no setting that could be put back")
    applied = [(s, s.spec.args) for s in run.steps if isinstance(s.spec.args, PatchKafkaArgs) and s.applied]
    for step, _ in applied:
        if step.id in _ONE_WAY:
            raise PlanRefused(f"run {run.id} already {_ONE_WAY[step.id]}, and Kafka cannot go back below it: a "
                              "downgrade is a manual procedure")
    before: dict[tuple[str, ...], Any] = {}
    after: dict[tuple[str, ...], Any] = {}
    for step, args in applied:
        previous = step.observed.get("previous")
        if not isinstance(previous, list):
            raise PlanRefused(f"step {step.id} of run {run.id} did not record the values it replaced (it ran on an "
                              "older version of the bot): put them back with `/kafka config` or `/kafka upgrade`")
        for old, new in zip(previous, args.edits, strict=False):
            path = new.path
            if run.runbook == "upgrade" and path != ("version",):
                continue  # metadataVersion and protocol pins stay: they are what makes going back possible
            before.setdefault(path, old.get("value"))
            after[path] = new.value
    changed = [p for p in before if show(before[p]) != show(after[p])]
    if not changed:
        raise PlanRefused(f"run {run.id} has not changed anything that can be put back yet (no patch of it was "
                          "applied): abort it instead")
    first = applied[0][0].observed
    return Footprint(
        run_id=run.id, runbook=run.runbook, restore=tuple(SpecValue(path=p, value=before[p]) for p in changed),
        wrote=tuple(SpecValue(path=p, value=after[p]) for p in changed),
        uids={str(k): str(v) for k, v in (first.get("uids") or {}).items()},
        restarts={str(k): int(v) for k, v in (first.get("restarts") or {}).items()},
        generation=int(first.get("generation_before") or 0),
        live=any(isinstance(s.spec.args, VerifyConfigArgs) and bool(s.spec.args.dynamic) for s in run.steps))


def undo_offered(run: Run) -> Footprint | None:
    """The change a paused run's card offers to undo, or None."""
    if run.state is not RunState.PAUSED:
        return None
    try:
        return footprint(run)
    except PlanRefused:
        return None


def touched(fp: Footprint, pods: tuple[BrokerPodState, ...]) -> list[BrokerPodState]:
    """The broker pods the change restarted (a new uid) or, applied live, made crash (more restarts)."""
    result = []
    for pod in pods:
        uid = fp.uids.get(str(pod.id))
        if uid is None:
            continue
        if pod.uid != uid or (fp.live and pod.restart_count > fp.restarts.get(str(pod.id), pod.restart_count)):
            result.append(pod)
    return result


def _spec_at(spec: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = spec
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _pod_text(pod: BrokerPodState) -> str:
    return f"broker {pod.id} (pod {pod.pod}: {pod.state or 'not Ready'})"


def undo_problems(fp: Footprint, world: UndoInput) -> list[str]:
    """Everything wrong with the cluster that is not the run's own change; empty: the undo may go."""
    problems = []
    for written in fp.wrote:
        have = _spec_at(world.spec, written.path)
        if show(have) != show(written.value):
            problems.append(f"spec.kafka {written.name} is now {show(have)}, not the {show(written.value)} run "
                            f"{fp.run_id} wrote: someone changed it since, and the undo does not overwrite that")
    if world.paused:
        problems.append("reconciliation of the Kafka resource is paused (strimzi.io/pause-reconciliation), so the "
                        "operator would not apply the undo")
    hit = {p.id for p in touched(fp, world.pods)}
    present = {p.id for p in world.pods}
    problems += [f"{_pod_text(p)} is down too, and run {fp.run_id} did not restart it"
                 for p in world.pods if p.id not in hit and not p.ready]
    problems += [f"broker {b} has no pod (the operator is replacing it): look again in a moment"
                 for b in sorted(int(b) for b in fp.uids) if b not in present]
    if not world.ready:
        why = _why(world)
        foreign = [p.pod for p in world.pods if p.id not in hit and p.pod and p.pod in world.message]
        if foreign:
            problems.append(f"the Kafka resource is NotReady ({why}), naming {', '.join(foreign)}, which run "
                            f"{fp.run_id} did not restart")
        elif world.observed_generation <= fp.generation:
            problems.append(f"the Kafka resource is NotReady ({why}) from generation {world.observed_generation}, "
                            f"before run {fp.run_id}'s change (generation {fp.generation + 1})")
    snapshot = world.snapshot
    if snapshot is None:
        problems.append(f"Kafka did not answer ({world.snapshot_error or 'no address'}), so nothing else can be ruled "
                        "out")
        return problems
    gone = sorted(p.id for p in world.pods if p.id not in hit and p.ready and p.id not in snapshot.live_broker_ids)
    if gone:
        problems.append(f"brokers {', '.join(map(str, gone))} are not live in Kafka (fenced or unregistered) although "
                        f"their pods are Ready, and run {fp.run_id} did not restart them")
    sick = degraded_besides(snapshot, *hit)
    if sick:
        problems.append(f"{len(sick)} partitions are missing a replica on a broker run {fp.run_id} did not restart "
                        f"(e.g. {', '.join(p.name for p in sick[:3])})")
    if snapshot.quorum is not None and snapshot.quorum.leader_id is None:
        problems.append("the KRaft quorum has no leader")
    moving = reassigning(snapshot)
    if moving:
        problems.append(f"partition reassignments are in flight ({len(moving)})")
    return problems


def harm_lines(fp: Footprint, world: UndoInput) -> list[str]:
    """What the change did that the undo allows for, for the approver."""
    lines = [f"{_pod_text(p) if not p.ready else f'broker {p.id} (pod {p.pod}: Ready)'}, restarted by run {fp.run_id}"
             for p in touched(fp, world.pods)]
    if not world.ready:
        lines.append(f"the Kafka resource is NotReady ({_why(world)})")
    return lines


def _why(world: UndoInput) -> str:
    return f"{world.reason}: {world.message}".strip(": ") or "no reason given"


def _order(pods: list[BrokerPodState], snapshot: ClusterSnapshot | None) -> list[BrokerPodState]:
    """The operator's order: broken pods first (by id), then the others as it rolls them."""
    broken = sorted((p for p in pods if not p.ready), key=lambda p: p.id)
    rest = {p.id: p for p in pods if p.ready}
    ids = restart_order(snapshot, sorted(rest)) if snapshot is not None else sorted(rest)
    return broken + [rest[i] for i in ids]


def plan_undo(fp: Footprint, world: UndoInput) -> list[StepSpec]:
    """The undo run's steps, or PlanRefused naming what else is wrong with the cluster."""
    problems = undo_problems(fp, world)
    if problems:
        raise PlanRefused("; ".join(problems))
    brokers = _order(touched(fp, world.pods), world.snapshot)
    order = ", ".join(str(b.id) for b in brokers)
    lines = harm_lines(fp, world)
    allowed = (f" Allowed although the cluster is not healthy, because what is wrong is run {fp.run_id}'s own change: "
               + "; ".join(lines) + "." if lines else "")
    then = (f" Strimzi then restarts the brokers the change restarted, in the order {order}; each is followed below."
            if brokers else " No broker was restarted by the change.")
    steps = [StepSpec(
        id="revert", title=f"Undo run {fp.run_id}: put back {fp.diff()}",
        args=RevertKafkaArgs(of=fp.run_id, edits=tuple(edit(*r.path, value=r.value) for r in fp.restore),
                             expect=tuple(edit(*w.path, value=w.value) for w in fp.wrote),
                             expect_generation=world.generation, wait="none", footprint=fp),
        timeout_s=120.0, summary=f"Puts back spec.kafka as it was before run {fp.run_id}: {fp.diff()}.{then}{allowed}")]
    generation = world.generation + 1
    every = tuple(p.id for p in world.pods)
    if fp.runbook == "config":
        previous = {r.path[1]: show(r.value) for r in fp.restore if r.value is not None and len(r.path) == 2}
        steps += follow_steps("undo", brokers, world.snapshot, what="restarted with the previous config",
                              expect=RollExpectation(config=previous), may_skip_roll=True, settle_generation=generation,
                              in_given_order=True)
        steps.append(StepSpec(
            id="undo-done", title="Operator done: Ready at the new generation",
            args=AwaitOperatorArgs(kafka_version=world.kafka_version, generation=generation), needs_approval=False,
            timeout_s=600.0))
        steps.append(StepSpec(
            id="verify", title="Verify the previous values on every broker (DescribeConfigs)",
            args=VerifyConfigArgs(set=previous, unset=tuple(r.path[1] for r in fp.restore
                                                            if r.value is None and len(r.path) == 2),
                                  uids={str(p.id): p.uid for p in world.pods}, brokers=every),
            needs_approval=False, timeout_s=120.0))
        return steps
    version = show(fp.restore[0].value)
    steps += follow_steps("undo", brokers, world.snapshot, what=f"restarted on Kafka {version}",
                          expect=RollExpectation(kafka_version=version), in_given_order=True)
    steps.append(StepSpec(
        id="undo-done", title=f"Operator done: status.kafkaVersion {version}, Ready",
        args=AwaitOperatorArgs(kafka_version=version, generation=generation), needs_approval=False, timeout_s=600.0))
    steps.append(StepSpec(
        id="verify", title=f"Verify: Kafka {version} on every broker, healthy",
        args=VerifyUpgradeArgs(kafka_version=version, metadata_version=world.metadata_version, brokers=every),
        needs_approval=False, timeout_s=120.0))
    return steps
