"""The scale runbook: a broker-only KafkaNodePool grown or shrunk, replicas moved throttled.

Up: patch the pool's replicas (approved), wait for the new brokers registered and Ready, then move
their fair share onto them (the planner's fill, in batches), cleanup, preferred leader election.
The fill is planned before the new brokers exist (a run's steps are fixed when it is created), so
it is planned against the ids Strimzi will give them (``runbooks.rules.node_pools``: its
next-node-ids annotation, else the lowest free ids cluster-wide), as empty brokers; the run checks
that Strimzi created exactly those ids before moving anything. Where brokers have racks the new
brokers' racks cannot be known in advance: refused.

Down: choose the leaving ids (``--remove-ids`` first, then the pool's highest, Strimzi's rule),
drain them (batches), cleanup, then patch the pool's replicas with ``strimzi.io/remove-node-ids``
(approved) and wait until their pods are gone, the pool's status no longer lists them and the Kafka
resource has no ``ScaleDownPreventionCheck`` warning (Strimzi reverts a scale-down of brokers that
still hold replicas).

Refused: an unknown pool; a pool with the controller role (controller-only or dual-role: the
controller quorum is static); the same replicas as now; fewer brokers than the largest replication
factor; --remove-ids with a scale-up, naming nodes outside the pool, or more than the scale removes;
a throttle of 0 or not a rate.
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
from runbooks.catalogue.replace_broker import elect_step
from runbooks.catalogue.replica_steps import (
    DEFAULT_THROTTLE,
    cleanup_steps,
    parse_rate,
    phase_steps,
    preflight_step,
    targets_after,
)
from runbooks.catalogue.runbook import Runbook
from runbooks.engine.models import PlanRefused, StepArgs, StepSpec
from runbooks.rules.node_pools import NodePool, id_list, predicted_new_ids, removed_ids
from runbooks.rules.reassignment import PartitionMove, PartitionPlacement, ReassignmentBroker, ReassignmentRequest, ids
from runbooks.rules.reassignment_plan import plan_reassignment

RUNBOOK = "scale"


class ScaleParams(BaseModel):
    model_config = ConfigDict(frozen=True)

    pool: str
    replicas: int
    remove_ids: tuple[int, ...] | None = None
    throttle: str = DEFAULT_THROTTLE
    engine: Engine = DEFAULT_ENGINE


class ScaleInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    pools: tuple[NodePool, ...]
    brokers: tuple[ReassignmentBroker, ...]
    partitions: tuple[PartitionPlacement, ...]
    cruise_control: bool = False  # the Kafka resource has spec.cruiseControl


class PatchNodePoolArgs(StepArgs):
    """Set the pool's spec.replicas (only while it is still ``from_replicas``), and for a scale-down
    ``strimzi.io/remove-node-ids`` to the leaving ids."""

    kind: Literal["patch-node-pool"] = "patch-node-pool"
    pool: str
    replicas: int
    from_replicas: int
    remove_ids: tuple[int, ...] = ()


class AwaitPoolNodesArgs(StepArgs):
    """Until the pool's nodes are what the scale meant: ``added`` registered and Ready, ``removed``
    gone (pods, status.nodeIds), and no ScaleDownPreventionCheck revert."""

    kind: Literal["await-pool-nodes"] = "await-pool-nodes"
    pool: str
    replicas: int
    added: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()
    before: tuple[int, ...] = ()  # the pool's nodes when planned


def _pool(params: ScaleParams, world: ScaleInput) -> NodePool:
    pool = next((p for p in world.pools if p.name == params.pool), None)
    listed = ", ".join(f"{p.name} ({p.role_text})" for p in world.pools) or "none"
    if pool is None:
        raise PlanRefused(f"no node pool {params.pool} in this cluster; its pools are {listed}")
    if not pool.brokers_only:
        kind = "controller-only" if "broker" not in pool.roles else "dual-role (broker+controller)"
        raise PlanRefused(f"pool {pool.name} is {kind}: the controller quorum is static, so only broker-only pools "
                          f"can be scaled. Pools: {listed}")
    return pool


def _check_size(params: ScaleParams, world: ScaleInput, pool: NodePool) -> None:
    current = len(pool.node_ids)
    if params.replicas == current:
        raise PlanRefused(f"pool {pool.name} already has {current} nodes ({ids(pool.node_ids)}): nothing to change")
    others = [b.id for b in world.brokers if b.id not in pool.node_ids]
    after = len(others) + params.replicas
    widest = max(world.partitions, key=lambda p: (len(p.replicas), p.name), default=None)
    if widest is not None and after < len(widest.replicas):
        raise PlanRefused(f"{params.replicas} nodes in pool {pool.name} leave {after} brokers in the cluster, fewer "
                          f"than the largest replication factor ({len(widest.replicas)}, topic {widest.topic}): "
                          f"give at least {len(widest.replicas) - len(others)}")
    if params.remove_ids is None:
        return
    if params.replicas > current:
        raise PlanRefused("--remove-ids is for a scale-down: leave it out to add nodes")
    foreign = sorted(set(params.remove_ids) - set(pool.node_ids))
    if foreign:
        raise PlanRefused(f"--remove-ids {ids(foreign)}: not nodes of pool {pool.name} (its nodes are "
                          f"{ids(pool.node_ids)})")
    if len(params.remove_ids) > current - params.replicas:
        raise PlanRefused(f"--remove-ids names {len(params.remove_ids)} nodes, but {current} → {params.replicas} "
                          f"removes {current - params.replicas}")


def _scale_up(params: ScaleParams, world: ScaleInput, pool: NodePool, rate: int) -> list[StepSpec]:
    current = len(pool.node_ids)
    try:
        new = predicted_new_ids(world.pools, pool, params.replicas - current, in_use=[b.id for b in world.brokers])
    except ValueError as exc:
        raise PlanRefused(f"the new node ids cannot be predicted ({exc}): fix the pool's strimzi.io/next-node-ids "
                          "annotation") from None
    cruise = params.engine == "cruise-control"
    if not cruise and any(b.rack is not None for b in world.brokers):
        raise PlanRefused("the brokers have racks, and a new broker's rack is only known once it runs, so the fill "
                          "cannot be planned in advance: scale the pool, then rebalance")
    steps = [
        preflight_step(),
        StepSpec(id="scale-pool", title=f"Scale pool {pool.name}: {current} → {params.replicas} nodes",
                 args=PatchNodePoolArgs(pool=pool.name, replicas=params.replicas, from_replicas=current),
                 compensation=f"Patch pool {pool.name} back to {current} replicas: until the fill the new brokers "
                 "hold no replica, so nothing is lost.",
                 summary=f"Strimzi creates brokers {ids(new)} (Strimzi's next free ids, checked before anything "
                 "moves). At risk: nothing yet; the new pods need their PVCs and resources."),
        StepSpec(id="await-brokers", title=f"Wait for brokers {ids(new)}: Ready and registered",
                 args=AwaitPoolNodesArgs(pool=pool.name, replicas=params.replicas, added=tuple(new),
                                          before=pool.node_ids),
                 needs_approval=False, timeout_s=1800.0, compensation="None needed: it only waits."),
    ]
    if cruise:
        steps += rebalance_steps("fill", "add-brokers", tuple(new), what=f"Fill brokers {ids(new)}",
                                 risk="while they copy, the moving partitions lean on their current replicas.",
                                 compensation="Move replicas off these brokers again (a Cruise Control "
                                 "remove-brokers, or a scale-down of the same nodes).")
        return [*steps, stop_rebalance_step(("fill",))]
    brokers = (*world.brokers, *(ReassignmentBroker(id=i) for i in new))
    fill = plan_reassignment(ReassignmentRequest(brokers=brokers, partitions=world.partitions, fill=frozenset(new)))
    steps += phase_steps(fill.moves, prefix="fill", what=f"Fill brokers {ids(new)}", rate=rate, plan=fill,
                         risk="while they copy, the moving partitions lean on their current replicas.",
                         compensation="Move these partitions back to their replicas before the fill (plan it with "
                         "a scale-down of the same nodes).")
    if fill.moves:
        steps += cleanup_steps(targets_after(fill.moves), fill.moves)
        steps.append(elect_step())
    return steps


def _scale_down(params: ScaleParams, world: ScaleInput, pool: NodePool, rate: int) -> list[StepSpec]:
    current = len(pool.node_ids)
    leaving = removed_ids(pool, current - params.replicas, params.remove_ids or ())
    alive = {b.id for b in world.brokers if b.alive}
    holding = sorted({b for p in world.partitions for b in p.replicas} & set(leaving))
    moves: tuple[PartitionMove, ...] = ()
    steps = [preflight_step()]
    if holding:
        dead = sorted(set(holding) - alive)
        if dead:
            raise PlanRefused(f"broker(s) {ids(dead)} are down and hold replicas: bring them back first")
    if holding and params.engine == "cruise-control":
        steps += rebalance_steps("drain", "remove-brokers", tuple(leaving), what=f"Drain brokers {ids(leaving)}",
                                 risk="while they copy, the moving partitions lean on their current replicas.",
                                 compensation="Move replicas back onto the leaving brokers (a Cruise Control "
                                 "add-brokers), or keep them where they are: nothing is lost.")
        steps.append(stop_rebalance_step(("drain",)))
    elif holding:
        drain = plan_reassignment(ReassignmentRequest(brokers=world.brokers, partitions=world.partitions,
                                                      drain=frozenset(holding)))
        moves = drain.moves
        steps += phase_steps(moves, prefix="drain", what=f"Drain brokers {ids(leaving)}", rate=rate, plan=drain,
                             risk="while they copy, the moving partitions lean on their current replicas.",
                             compensation="Move these partitions back to the leaving brokers (a scale-up does not; "
                             "plan it by hand or keep them where they are: nothing is lost).")
        steps += cleanup_steps(targets_after(moves), moves)
    steps += [
        StepSpec(id="scale-pool", title=f"Scale pool {pool.name}: {current} → {params.replicas} nodes "
                 f"(removes {ids(leaving)})",
                 args=PatchNodePoolArgs(pool=pool.name, replicas=params.replicas, from_replicas=current,
                                        remove_ids=tuple(leaving)),
                 compensation=f"Scale pool {pool.name} back to {current}: Strimzi adds empty brokers; their "
                 "replicas do not come back by themselves.",
                 summary=f"Strimzi removes brokers {ids(leaving)} (strimzi.io/remove-node-ids {id_list(leaving)}) and "
                 "their pods; they hold no replica after the drain, so no data goes with them. At risk: "
                 f"the cluster's capacity: {len(world.brokers) - len(leaving)} brokers remain."),
        StepSpec(id="await-scale-down", title=f"Wait until brokers {ids(leaving)} are gone and Strimzi kept the "
                 "scale-down",
                 args=AwaitPoolNodesArgs(pool=pool.name, replicas=params.replicas, removed=tuple(leaving)),
                 needs_approval=False, timeout_s=1800.0, compensation="None needed: it only waits."),
    ]
    if moves:
        steps.append(elect_step())
    return steps


def plan(params: ScaleParams, world: ScaleInput) -> list[StepSpec]:
    if params.engine == "cruise-control" and not world.cruise_control:
        raise PlanRefused(NO_CRUISE_CONTROL)
    pool = _pool(params, world)
    rate = parse_rate(params.throttle)
    _check_size(params, world, pool)
    if params.replicas > len(pool.node_ids):
        return _scale_up(params, world, pool, rate)
    return _scale_down(params, world, pool, rate)


SCALE = Runbook(
    name=RUNBOOK,
    verb="scale",
    summary="Grow or shrink a broker-only node pool, moving replicas onto or off its brokers, throttled.",
    description=f"Up: patch the KafkaNodePool's replicas, wait for the new brokers, then move their fair share "
    f"to them at --throttle (default {DEFAULT_THROTTLE}). Down: drain the leaving brokers first (--remove-ids, "
    "else the pool's highest ids), then patch the pool and check that Strimzi did not revert the scale-down. "
    "Refused: controller and dual-role pools (static quorum), fewer brokers than the largest replication factor, "
    "an unknown pool or node, the same size, a throttle of 0 or not a rate. --engine cruise-control (where the Kafka "
    "resource has spec.cruiseControl) has Cruise Control move the replicas through a KafkaRebalance (add-brokers, "
    "remove-brokers) approved from its proposal. The default engine is bot: "
    f"{WHY_BOT_DEFAULT}. --dry-run shows the plan.",
    params=ScaleParams,
    world=ScaleInput,
    plan=plan,
    title=lambda params: f"Scale pool {params.pool} to {params.replicas}",
    refusal=lambda cluster, params: f"Cannot plan scaling pool {params.pool} of {cluster} to {params.replicas}",
    stored=lambda params: params.model_dump(mode="json"),
)
