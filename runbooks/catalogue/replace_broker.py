"""The replace-broker runbook: a broker's disk replaced through Strimzi, its data moved off first and
back after, throttled.

A live broker: pre-flight; the drain (the planner's minimal moves off it) in batches; after the
drain, an approval to replace it (``strimzi.io/delete-pod-and-pvc``: Strimzi deletes the pod and its
PVC, the broker comes back empty with the same id); then every moved partition gets back exactly
the replica list it had before (same brokers, same order, so the same preferred leader), in batches;
cleanup (cancel any move in flight, clear the throttles); preferred leader election; verify.

A broker that is already dead (its disk lost): nothing to drain; replace it, then let it
re-replicate its partitions from their leaders under a follower throttle, done when it is back in
every ISR. ``--keep-data``: the restart runbook's ``restart-broker`` step only (new pod, same disk,
the restart's health gates).

Refused: an unknown broker; a node that is also a KRaft controller (Strimzi's quorum is static:
wiping a voter's disk can lose committed metadata); the last live broker of a rack; too few brokers
left for a partition's replication factor (the planner's refusal); a throttle that is 0 or not a rate.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from runbooks.catalogue.rebalance_steps import (
    DEFAULT_ENGINE,
    NO_CRUISE_CONTROL,
    WHY_BOT_DEFAULT,
    Engine,
    rebalance_steps,
    stop_rebalance_step,
)
from runbooks.catalogue.replica_steps import (
    DEFAULT_THROTTLE,
    CatchUpArgs,
    PartitionTarget,
    VerifyReplicasArgs,
    cleanup_steps,
    clear_throttles_step,
    parse_rate,
    phase_steps,
    preflight_step,
    targets_after,
)
from runbooks.catalogue.restart import ElectLeadersArgs, PreflightArgs, RestartParams, plan_restart
from runbooks.catalogue.runbook import Runbook
from runbooks.engine.models import PlanRefused, StepArgs, StepSpec
from runbooks.rules.health import ClusterSnapshot
from runbooks.rules.reassignment import PartitionMove, PartitionPlacement, ReassignmentBroker, ReassignmentRequest, ids
from runbooks.rules.reassignment_batches import human_bytes
from runbooks.rules.reassignment_plan import plan_reassignment

RUNBOOK = "replace-broker"
REPLACE_TIMEOUT_S = 1800.0  # a new PVC to provision, the broker to format and register


class ReplaceBrokerParams(BaseModel):
    model_config = ConfigDict(frozen=True)

    broker: int
    throttle: str = DEFAULT_THROTTLE  # as typed: the plan parses it and refuses a bad one
    keep_data: bool = False
    engine: Engine = DEFAULT_ENGINE


class ReplaceBrokerInput(BaseModel):
    """The cluster as the planner needs it: brokers (rack, alive), every partition's replicas and size,
    the broker pods, the node ids with the controller role, and the health snapshot (for --keep-data)."""

    model_config = ConfigDict(frozen=True)

    brokers: tuple[ReassignmentBroker, ...]
    partitions: tuple[PartitionPlacement, ...]
    pods: dict[int, str]
    controllers: tuple[int, ...] = ()
    snapshot: ClusterSnapshot
    cruise_control: bool = False  # the Kafka resource has spec.cruiseControl


class ReplacePodAndPvcArgs(StepArgs):
    """Annotate the broker's pod ``strimzi.io/delete-pod-and-pvc=true``; done when a new pod is Ready and
    the broker registered again. ``expect_empty``: the gate refuses while it still holds a replica."""

    kind: Literal["replace-pod-and-pvc"] = "replace-pod-and-pvc"
    broker: int
    pod: str
    expect_empty: bool = True


def _move_back(m: PartitionMove) -> PartitionMove:
    leader = m.leader if m.leader in m.new else m.new[0]
    return PartitionMove(topic=m.topic, partition=m.partition, old=m.new, new=m.old, leader=leader,
                         size_bytes=m.size_bytes)


def _refuse_unreplaceable(params: ReplaceBrokerParams, world: ReplaceBrokerInput) -> None:
    broker = params.broker
    if broker in world.controllers:
        raise PlanRefused(f"node {broker} is also a KRaft controller: the controller quorum is static, and wiping a "
                          "voter's disk can lose committed metadata. Use --keep-data (a new pod on the same disk), or "
                          "replace a broker-only node")
    by_id = {b.id: b for b in world.brokers}
    me = by_id.get(broker)
    if me is not None and me.rack is not None and me.alive:
        peers = [b.id for b in world.brokers if b.rack == me.rack and b.alive and b.id != broker]
        if not peers:
            racks = sorted({b.rack for b in world.brokers if b.rack is not None})
            raise PlanRefused(f"broker {broker} is the last live broker of rack {me.rack} (racks: {', '.join(racks)}): "
                              "draining it would leave that rack without replicas. Add a broker to rack "
                              f"{me.rack} first, or use --keep-data")


def _replace_step(broker: int, pod: str, *, expect_empty: bool, risk: str) -> StepSpec:
    return StepSpec(
        id="replace", title=f"Replace broker {broker}: new pod and empty disk through Strimzi",
        args=ReplacePodAndPvcArgs(broker=broker, pod=pod, expect_empty=expect_empty), timeout_s=REPLACE_TIMEOUT_S,
        compensation="None: a deleted disk cannot be restored. The broker comes back empty with the same id; "
        "abort after this step leaves it empty and the cluster's data on the other brokers.",
        summary=f"Strimzi deletes pod {pod} and its PVC (strimzi.io/delete-pod-and-pvc); broker {broker} comes back "
        f"with an empty disk and the same id. At risk: {risk}",
    )


def _dead_plan(params: ReplaceBrokerParams, world: ReplaceBrokerInput, rate: int) -> list[StepSpec]:
    broker = params.broker
    alive = {b.id for b in world.brokers if b.alive}
    held = [p for p in world.partitions if broker in p.replicas]
    lost = [p.name for p in held if not (set(p.replicas) - {broker}) & alive]
    if lost:
        raise PlanRefused(f"broker {broker} is down and holds the only replica of {', '.join(lost[:5])}"
                          f"{' and more' if len(lost) > 5 else ''}: replacing its disk would lose that data. Bring "
                          "the broker back with --keep-data instead")
    targets = tuple(PartitionTarget(topic=p.topic, partition=p.partition, replicas=p.replicas) for p in held)
    total = sum(p.size_bytes for p in held)
    return [
        _replace_step(broker, world.pods[broker], expect_empty=False,
                      risk=f"broker {broker} is already down; its {len(held)} replicas are lost with its disk and "
                      "are copied again from their leaders next. Every other broker must stay up meanwhile."),
        StepSpec(id="catch-up", title=f"Broker {broker} re-replicates {len(held)} partitions "
                 f"({human_bytes(total)}) under a follower throttle",
                 args=CatchUpArgs(broker=broker, partitions=targets, throttle_bytes_per_s=rate), needs_approval=False,
                 timeout_s=max(3600.0, 4 * total / rate),
                 compensation="Clearing the throttle (the next step) lets it copy at full speed.",
                 summary=f"Broker {broker} copies {human_bytes(total)} at up to {human_bytes(rate)}/s."),
        clear_throttles_step([broker], sorted({p.topic for p in held})),
        elect_step(),
        verify_step(broker, targets),
    ]


def elect_step() -> StepSpec:
    return StepSpec(id="elect-leaders", title="Preferred leader election", args=ElectLeadersArgs(), skippable=True,
                    timeout_s=120.0, compensation="None needed: leadership moves back by itself on the next election.",
                    summary="Move leadership back to the preferred replicas, so load is even again. At risk: clients "
                    "of the partitions whose leader moves retry their requests once.")


def verify_step(broker: int, targets: tuple[PartitionTarget, ...]) -> StepSpec:
    return StepSpec(id="verify", title=f"Verify: 0 URP, every ISR complete, broker {broker} holds its replicas",
                    args=VerifyReplicasArgs(partitions=targets, broker=broker), needs_approval=False, timeout_s=600.0,
                    compensation="None needed: it only reads.")


def _cruise_control_plan(params: ReplaceBrokerParams, world: ReplaceBrokerInput) -> list[StepSpec]:
    """Cruise Control drains the broker (remove-brokers) and, after the replacement, moves replicas onto
    it again (add-brokers): which replicas come back is Cruise Control's choice, not the old lists."""
    broker = params.broker
    others = [b.id for b in world.brokers if b.alive and b.id != broker]
    widest = max(world.partitions, key=lambda p: (len(p.replicas), p.name), default=None)
    if widest is not None and len(others) < len(widest.replicas):
        raise PlanRefused(f"draining broker {broker} leaves {len(others)} live brokers, fewer than the largest "
                          f"replication factor ({len(widest.replicas)}, topic {widest.topic})")
    steps = [preflight_step()]
    steps += rebalance_steps("drain", "remove-brokers", (broker,), what=f"Drain broker {broker}",
                             risk=f"while they copy, the moving partitions lean on their current replicas; broker "
                             f"{broker}'s replicas stay in sync until each move completes.",
                             compensation=f"Move replicas back onto broker {broker} (the run's add-brokers "
                             "rebalance does, by Cruise Control's choice).")
    steps.append(_replace_step(broker, world.pods[broker], expect_empty=True,
                               risk=f"nothing is lost if broker {broker} is empty (the step refuses to start "
                               "otherwise); until the move back the cluster runs one broker short."))
    steps += rebalance_steps("back", "add-brokers", (broker,), what=f"Move replicas back to broker {broker}",
                             risk=f"broker {broker} is new and empty; Cruise Control chooses which replicas it "
                             "receives (not necessarily the ones it had).",
                             compensation="Drain the broker again (a new replace-broker run plans it).")
    steps.append(stop_rebalance_step(("drain", "back")))
    return steps


def plan(params: ReplaceBrokerParams, world: ReplaceBrokerInput) -> list[StepSpec]:
    broker = params.broker
    cruise = params.engine == "cruise-control"
    if cruise and not world.cruise_control:
        raise PlanRefused(NO_CRUISE_CONTROL)
    if cruise and params.keep_data:
        raise PlanRefused("--keep-data moves no replica, so there is nothing for --engine cruise-control to do: "
                          "leave out --engine")
    known = sorted(set(world.pods) | {b.id for b in world.brokers})
    if broker not in known or broker not in world.pods:
        raise PlanRefused(f"no broker {broker} in this cluster; its brokers are {ids(known)}")
    if params.keep_data:
        restart = [s for s in plan_restart(RestartParams(brokers=(broker,)), world.snapshot, world.pods)
                   if not isinstance(s.args, PreflightArgs)]
        return [restart[0].model_copy(update={"compensation": "None needed: the pod restarts on the same disk."}),
                elect_step()]
    rate = parse_rate(params.throttle)
    _refuse_unreplaceable(params, world)
    me = next((b for b in world.brokers if b.id == broker), None)
    if (me is None or not me.alive) and cruise:
        raise PlanRefused(f"broker {broker} is down, so there is nothing to drain: it is replaced and re-replicates "
                          "from the leaders, which --engine cruise-control does not do. Leave out --engine")
    if me is None or not me.alive:
        return _dead_plan(params, world, rate)
    if cruise:
        return _cruise_control_plan(params, world)
    drain = plan_reassignment(ReassignmentRequest(brokers=world.brokers, partitions=world.partitions,
                                                  drain=frozenset({broker})))
    back = [_move_back(m) for m in drain.moves]
    originals = tuple(PartitionTarget(topic=p.topic, partition=p.partition, replicas=p.replicas)
                      for p in world.partitions if broker in p.replicas)
    steps = [preflight_step()]
    steps += phase_steps(drain.moves, prefix="drain", what=f"Drain broker {broker}", rate=rate, plan=drain,
                         risk=f"while they copy, the moving partitions lean on their current replicas; broker "
                         f"{broker}'s replicas stay in sync until each move completes.",
                         compensation="Move these partitions back to their replicas before the drain (the run's "
                         "move-back batches do exactly that).")
    steps.append(_replace_step(broker, world.pods[broker], expect_empty=True,
                               risk=f"nothing is lost if broker {broker} is empty (the step refuses to start "
                               "otherwise); until the move back the cluster runs one broker short."))
    steps += phase_steps(back, prefix="back", what=f"Move back to broker {broker}", rate=rate, plan=None,
                         risk=f"broker {broker} is new and empty and receives every replica it had; its ISR "
                         "joins as each copy completes.",
                         compensation="Drain the broker again (a new replace-broker run plans it).")
    if drain.moves:
        steps += cleanup_steps(targets_after([*drain.moves, *back]), [*drain.moves, *back])
    steps += [elect_step(), verify_step(broker, originals)]
    return steps


REPLACE_BROKER = Runbook(
    name=RUNBOOK,
    verb="replace-broker",
    summary="Replace a broker's disk through Strimzi: drain it, replace it, move its data back, throttled.",
    description=f"Moves the broker's replicas to the others (the fewest moves, rack-aware) at --throttle "
    f"(default {DEFAULT_THROTTLE}: leaves producers most of a 1 Gbit/s link), asks again after the drain, has "
    "Strimzi delete the pod and its PVC (strimzi.io/delete-pod-and-pvc), waits for it back, restores every "
    "moved partition's exact replica list, clears the throttles, elects preferred leaders and verifies. A dead "
    "broker is replaced then re-replicates under a follower throttle. --keep-data: a new pod on the same disk "
    "(the restart's gates). Refused: an unknown broker, a KRaft controller node, the last broker of a rack, too "
    "few brokers for the replication factor, a throttle of 0 or not a rate. --engine cruise-control (where the Kafka "
    "resource has spec.cruiseControl): Cruise Control drains it (a KafkaRebalance remove-brokers) and moves replicas "
    "back after (add-brokers, its choice of replicas), each approved from its proposal. The default engine is "
    f"bot: {WHY_BOT_DEFAULT}. --dry-run shows the plan.",
    params=ReplaceBrokerParams,
    world=ReplaceBrokerInput,
    plan=plan,
    title=lambda params: f"Replace broker {params.broker}" + (" (keep data)" if params.keep_data else ""),
    refusal=lambda cluster, params: f"Cannot plan a replacement of broker {params.broker} of {cluster}",
    stored=lambda params: params.model_dump(mode="json"),
)
