"""The undo's own step, ``revert-kafka``: put back what a paused run changed (``runbooks.catalogue.undo``), on a
cluster that may not be Ready.

Its gate is the undo's gate, checked again when the step starts (an approval can take a while):
the cluster may be NotReady and brokers may be down as long as that is the paused run's own change
and nothing else is wrong, and the Kafka resource must still be at the generation the undo was
planned at. Observing, patching and the done-check are ``patch-kafka``'s: the patch carries the
run's values as its precondition, so a change made since by someone else is refused, never
overwritten. The operator's roll back is followed by the undo's ``follow-roll`` steps.
"""

from __future__ import annotations

from typing import Any

from handlers.ports import ClusterGateway, ClusterRef, KafkaAdmin
from handlers.steps.base import DoneResult, GateResult, StepContext
from handlers.steps.cluster import PatchKafkaStep, describe, edits_of, unmet
from handlers.steps.pod_health import pod_states
from runbooks.catalogue.undo import RevertKafkaArgs, UndoInput, harm_lines, undo_problems
from runbooks.engine.models import Step


async def read_undo_world(gateway: ClusterGateway, admin: KafkaAdmin, cluster: ClusterRef) -> UndoInput:
    """The cluster as the undo's gate judges it; Kafka not answering is part of the answer."""
    status = await gateway.kafka_status(cluster)
    pods = await gateway.broker_pods(cluster)
    bootstrap = cluster.bootstrap_servers or status.bootstrap_servers
    snapshot, error = None, status.bootstrap_problem or "the Kafka resource reports no listener address"
    if bootstrap:
        try:
            snapshot, error = await admin.snapshot(cluster, bootstrap), ""
        except Exception as exc:  # a refusal must say why, whatever the adapter raised
            error = f"{type(exc).__name__}: {exc}"
    return UndoInput(
        ready=status.ready, reason=status.reason, message=status.message, generation=status.generation,
        observed_generation=status.observed_generation, paused=status.paused, spec=status.spec,
        kafka_version=status.kafka_version, metadata_version=status.metadata_version, pods=pod_states(pods),
        snapshot=snapshot, snapshot_error=error)


class RevertKafkaStep:
    """``patch-kafka``'s observe, act and done (its arguments are a patch's too), with the undo's gate."""

    def __init__(self) -> None:
        self._patch = PatchKafkaStep()

    async def gate(self, ctx: StepContext, step: Step, args: RevertKafkaArgs) -> GateResult:
        world = await read_undo_world(ctx.gateway, ctx.admin, ctx.cluster)
        status = await ctx.gateway.kafka_status(ctx.cluster)
        edits = edits_of(args.edits)
        if not unmet(status, edits):
            return GateResult(ok=True, reason=f"already put back: {describe(edits)}")
        fp = args.footprint
        problems = undo_problems(fp, world)
        planned = args.expect_generation
        if planned is not None and world.generation != planned:
            problems.append(f"the Kafka resource changed since the undo was planned (generation {planned} -> "
                            f"{world.generation}): ask for the undo again")
        findings = tuple(harm_lines(fp, world))
        if problems:
            return GateResult(ok=False, findings=findings, reason="; ".join(problems))
        return GateResult(ok=True, findings=findings,
                          reason=f"nothing is wrong but run {fp.run_id}'s change; will set {describe(edits)}")

    async def observe(self, ctx: StepContext, step: Step, args: RevertKafkaArgs) -> dict[str, Any]:
        return await self._patch.observe(ctx, step, args)

    async def act(self, ctx: StepContext, step: Step, args: RevertKafkaArgs) -> str:
        return await self._patch.act(ctx, step, args)

    async def done(self, ctx: StepContext, step: Step, args: RevertKafkaArgs) -> DoneResult:
        return await self._patch.done(ctx, step, args)
