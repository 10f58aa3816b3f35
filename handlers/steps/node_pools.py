"""The executors that change a cluster's nodes through Strimzi: a broker's pod and disk replaced
(``strimzi.io/delete-pod-and-pvc``), a KafkaNodePool's replicas patched, and the wait until its
nodes are what the scale meant (new brokers Ready and registered, or the leaving ones gone without
Strimzi reverting the scale-down)."""

from __future__ import annotations

from typing import Any

from handlers.ports import BrokerPod
from handlers.steps.base import DoneResult, GateResult, StepContext, StepError
from handlers.steps.replicas import alive, layout
from runbooks.catalogue.replace_broker import ReplacePodAndPvcArgs
from runbooks.catalogue.scale import AwaitPoolNodesArgs, PatchNodePoolArgs
from runbooks.engine.models import Step
from runbooks.rules.node_pools import REMOVE_NODE_IDS, SCALE_DOWN_WARNING, NodePool, id_list
from runbooks.rules.reassignment import ids, named


async def _pod(ctx: StepContext, broker: int) -> BrokerPod | None:
    return next((p for p in await ctx.gateway.broker_pods(ctx.cluster) if p.node_id == broker), None)


async def _pool(ctx: StepContext, name: str) -> NodePool:
    pool = next((p for p in await ctx.gateway.node_pools(ctx.cluster) if p.name == name), None)
    if pool is None:
        raise StepError(f"KafkaNodePool {name} is gone")
    return pool


class ReplacePodAndPvcStep:
    async def gate(self, ctx: StepContext, step: Step, args: ReplacePodAndPvcArgs) -> GateResult:
        now = await layout(ctx)
        held = [f"{p.topic}-{p.partition}" for p in now.partitions if args.broker in p.replicas]
        if args.expect_empty and held:
            return GateResult(ok=False, reason=f"broker {args.broker} still holds {len(held)} replicas "
                              f"({named(held, 'partitions')}): wiping its disk now would lose them")
        live = alive(now)
        only_here = [f"{p.topic}-{p.partition}" for p in now.partitions
                     if args.broker in p.replicas and not (set(p.replicas) - {args.broker}) & live]
        if only_here:
            return GateResult(ok=False, reason=f"broker {args.broker} holds the only live replica of "
                              f"{named(only_here, 'partitions')}: wiping its disk would lose them")
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: ReplacePodAndPvcArgs) -> dict[str, Any]:
        pod = await _pod(ctx, args.broker)
        if pod is None:
            raise StepError(f"no pod found for broker {args.broker}")
        return {"pod": pod.name, "uid_before": pod.uid}

    async def act(self, ctx: StepContext, step: Step, args: ReplacePodAndPvcArgs) -> str:
        pod, uid = str(step.observed["pod"]), str(step.observed["uid_before"])
        if await ctx.gateway.request_pod_and_pvc_replacement(ctx.cluster, pod, uid):
            return f"asked Strimzi to delete {pod} and its PVC"
        return f"{pod} was already replaced"

    async def done(self, ctx: StepContext, step: Step, args: ReplacePodAndPvcArgs) -> DoneResult:
        pod = await _pod(ctx, args.broker)
        if pod is None or pod.uid == step.observed.get("uid_before"):
            return DoneResult(done=False, detail=f"broker {args.broker}: waiting for Strimzi to replace the pod")
        if not pod.ready:
            return DoneResult(done=False, detail=f"broker {args.broker}: new pod {pod.name} not Ready yet")
        if args.broker not in alive(await layout(ctx)):
            return DoneResult(done=False, detail=f"broker {args.broker}: Ready, not registered with the cluster yet")
        return DoneResult(done=True, detail=f"broker {args.broker} back on a new pod and an empty disk, registered")


class PatchNodePoolStep:
    async def gate(self, ctx: StepContext, step: Step, args: PatchNodePoolArgs) -> GateResult:
        if not args.remove_ids:
            return GateResult(ok=True)
        held = sorted({b for p in (await layout(ctx)).partitions for b in p.replicas} & set(args.remove_ids))
        if held:
            return GateResult(ok=False, reason=f"brokers {ids(held)} still hold replicas: Strimzi would revert the "
                              "scale-down (ScaleDownPreventionCheck)")
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: PatchNodePoolArgs) -> dict[str, Any]:
        pool = await _pool(ctx, args.pool)
        return {"replicas_before": pool.replicas, "node_ids_before": list(pool.node_ids)}

    async def act(self, ctx: StepContext, step: Step, args: PatchNodePoolArgs) -> str:
        notes = {REMOVE_NODE_IDS: id_list(args.remove_ids)} if args.remove_ids else None
        await ctx.gateway.patch_node_pool(ctx.cluster, args.pool, replicas=args.replicas,
                                          expected_replicas=args.from_replicas, annotations=notes)
        return f"pool {args.pool}: spec.replicas {args.from_replicas} → {args.replicas}"

    async def done(self, ctx: StepContext, step: Step, args: PatchNodePoolArgs) -> DoneResult:
        pool = await _pool(ctx, args.pool)
        if pool.replicas == args.replicas:
            return DoneResult(done=True, detail=f"pool {args.pool} asks for {args.replicas} nodes")
        return DoneResult(done=False, detail=f"pool {args.pool} asks for {pool.replicas} nodes")


class AwaitPoolNodesStep:
    async def gate(self, ctx: StepContext, step: Step, args: AwaitPoolNodesArgs) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: AwaitPoolNodesArgs) -> dict[str, Any]:
        return {"checked": True}  # an empty observation reads as none yet

    async def act(self, ctx: StepContext, step: Step, args: AwaitPoolNodesArgs) -> str:
        return "waiting for Strimzi"

    async def done(self, ctx: StepContext, step: Step, args: AwaitPoolNodesArgs) -> DoneResult:
        pool = await _pool(ctx, args.pool)
        pods = {p.node_id: p for p in await ctx.gateway.broker_pods(ctx.cluster)}
        if args.added:
            surprise = sorted(set(pool.node_ids) - set(args.added) - set(args.before))
            missing = sorted(set(args.added) - set(pool.node_ids))
            if missing and len(pool.node_ids) >= args.replicas:
                return DoneResult(done=False, failure=f"Strimzi gave the new nodes ids {ids(surprise) or '?'}, not the "
                                  f"predicted {ids(args.added)}: the fill was planned for those ids. Abort (nothing "
                                  "has moved yet) and plan the fill again")
            live = alive(await layout(ctx))
            waiting = [i for i in args.added if i in missing or not (i in pods and pods[i].ready) or i not in live]
            if waiting:
                return DoneResult(done=False, detail=f"waiting for brokers {ids(waiting)}: Ready and registered")
            return DoneResult(done=True, detail=f"brokers {ids(args.added)} Ready and registered")
        staying = sorted(set(args.removed) & (set(pool.node_ids) | set(pods)))
        if staying:
            # Only a warning about this pool, while its leaving nodes are still there, is this scale-down
            # reverted (one left from an earlier attempt is replaced at the operator's next reconciliation).
            status = await ctx.gateway.kafka_status(ctx.cluster)
            reverted = [w for w in status.warnings if SCALE_DOWN_WARNING in w and f"KafkaNodePool {args.pool} " in w]
            if reverted:
                return DoneResult(done=False, failure=f"Strimzi reverted the scale-down: {reverted[0]}")
            return DoneResult(done=False, detail=f"waiting for Strimzi to remove brokers {ids(staying)}")
        if pool.replicas != args.replicas:
            return DoneResult(done=False, failure=f"pool {args.pool} asks for {pool.replicas} nodes again, not "
                              f"{args.replicas}: someone or Strimzi reverted it")
        return DoneResult(done=True, detail=f"brokers {ids(args.removed)} removed; pool {args.pool} has "
                          f"{len(pool.node_ids)} nodes, no scale-down revert")
