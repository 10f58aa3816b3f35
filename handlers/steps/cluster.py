"""Executors that act on the Kafka resource as a whole: the pre-flight check, a spec.kafka patch,
and waiting for the operator to finish a reconciliation.

A patch is the one place these runbooks write. It is a desired state (the values under
spec.kafka) with preconditions (what the plan saw: the other values, the generation, the pod uids),
applied in one atomic JSON patch, so a patch made twice is a no-op and a patch over somebody
else's change is refused rather than merged blindly. "Done" is read from the Kafka status: the
operator has reconciled the new generation and says Ready. While it has not, the step watches for
the first sign of harm (``handlers.steps.pod_health``) and pauses the run at once instead of waiting out
its timeout.

Before a patch, its step records what it is about to replace (``observed["previous"]``: each
edited path's value, None where it was absent), every broker pod's uid and restart count, and the
generation: the run's own record of what it changed, from which ``runbooks.catalogue.undo`` plans the undo.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from handlers.ports import KafkaResourceStatus, KafkaSpecEdit, PatchRejected
from handlers.steps.base import DoneResult, GateResult, StepContext, StepError, tolerant
from handlers.steps.pod_health import harm_after_change
from runbooks.catalogue.step_args import AwaitOperatorArgs, ClusterCheckArgs, KafkaPatchArgs, SpecEdit
from runbooks.engine.models import Step
from runbooks.rules.health import assess


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def edits_of(edits: Iterable[SpecEdit]) -> list[KafkaSpecEdit]:
    return [KafkaSpecEdit(path=e.path, value=e.value) for e in edits]


def unmet(status: KafkaResourceStatus, edits: Iterable[KafkaSpecEdit]) -> list[KafkaSpecEdit]:
    """The edits the resource does not show yet (values compared as text: YAML may type them)."""
    missing = []
    for e in edits:
        have = status.spec_value(e.path)
        if (have is None) != (e.value is None) or (have is not None and _show(have) != _show(e.value)):
            missing.append(e)
    return missing


def describe(edits: Iterable[KafkaSpecEdit]) -> str:
    return ", ".join(f"{'.'.join(e.path)}={'(removed)' if e.value is None else _show(e.value)}" for e in edits)


def operator_progress(status: KafkaResourceStatus) -> str:
    if status.observed_generation < status.generation:
        return f"the operator is reconciling (observed generation {status.observed_generation} of {status.generation})"
    if not status.ready:
        return f"the operator reports NotReady: {status.reason}: {status.message}".rstrip(": ")
    return "the operator has reconciled the latest generation"


async def health_problems(ctx: StepContext, brokers: Iterable[int]) -> tuple[list[str], tuple[str, ...]]:
    snapshot = await ctx.admin.snapshot(ctx.cluster, await ctx.bootstrap())
    report = assess(snapshot, expected_brokers=brokers)
    return list(report.problems), report.warnings


class ClusterCheckStep:
    """Pre-flight of the upgrade and config runbooks: Ready and reconciled, every expected broker
    live, the whole health model clean, and (when given) every broker on the expected version."""

    async def gate(self, ctx: StepContext, step: Step, args: ClusterCheckArgs) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: ClusterCheckArgs) -> dict[str, Any]:
        return {"checked": True}

    async def act(self, ctx: StepContext, step: Step, args: ClusterCheckArgs) -> str:
        status = await ctx.gateway.kafka_status(ctx.cluster)
        pods = await ctx.gateway.broker_pods(ctx.cluster)
        problems = []
        if not status.settled:
            problems.append(operator_progress(status))
        version = args.kafka_version
        if version is not None:
            others = sorted({f"{p.node_id}: {p.kafka_version}" for p in pods if p.kafka_version != version})
            if status.kafka_version != version or others:
                problems.append(f"expected every broker on {version}; status says {status.kafka_version}"
                                + (f", pods {', '.join(others)}" if others else ""))
        expected = list(args.brokers) or [p.node_id for p in pods]
        found, warnings = await health_problems(ctx, expected)
        problems += found
        if problems:
            raise StepError("pre-flight found: " + "; ".join(problems))
        text = f"Ready, {len(pods)} brokers" + (f" on {version}" if version else "") + ", healthy"
        return text + ("; note: " + "; ".join(warnings) if warnings else "")

    async def done(self, ctx: StepContext, step: Step, args: ClusterCheckArgs) -> DoneResult:
        return DoneResult(done=step.applied, detail=step.detail)


class PatchKafkaStep:
    """Patch spec.kafka (args: edits, expect, expect_generation, expect_pods) and, with
    ``wait: settled``, wait for the operator to reconcile it (``status``: values the Kafka status must
    show; ``no_roll``: report whether any broker was restarted, which it should not have been)."""

    async def gate(self, ctx: StepContext, step: Step, args: KafkaPatchArgs) -> GateResult:
        status = await ctx.gateway.kafka_status(ctx.cluster)
        edits = edits_of(args.edits)
        if not unmet(status, edits):
            return GateResult(ok=True, reason=f"already applied: {describe(edits)}")
        problems = []
        if not status.settled:
            problems.append(operator_progress(status))
        changed = unmet(status, edits_of(args.expect))
        if changed:
            problems.append("the Kafka resource changed since the plan: it no longer has " + describe(changed))
        expected_generation = args.expect_generation
        if expected_generation is not None and status.generation != expected_generation:
            problems.append(f"the Kafka resource changed since the plan (generation {expected_generation} -> "
                            f"{status.generation}): make the plan again")
        pods = await ctx.gateway.broker_pods(ctx.cluster)
        planned = args.expect_pods or {}
        current = {str(p.node_id): p.uid for p in pods}
        moved = sorted(b for b, uid in planned.items() if current.get(b) != uid)
        if moved:
            problems.append(f"brokers {', '.join(moved)} were restarted or replaced since the plan was shown")
        found, warnings = await health_problems(ctx, [p.node_id for p in pods])
        problems += found
        if problems:
            return GateResult(ok=False, findings=warnings, reason="; ".join(problems))
        return GateResult(ok=True, findings=warnings, reason=f"Ready and healthy; will set {describe(edits)}")

    async def observe(self, ctx: StepContext, step: Step, args: KafkaPatchArgs) -> dict[str, Any]:
        status = await ctx.gateway.kafka_status(ctx.cluster)
        pods = await ctx.gateway.broker_pods(ctx.cluster)
        previous = [{"path": list(e.path), "value": status.spec_value(e.path)}
                    for e in edits_of(args.edits)]
        return {"generation_before": status.generation, "uids": {str(p.node_id): p.uid for p in pods},
                "restarts": {str(p.node_id): p.restart_count for p in pods}, "previous": previous}

    async def act(self, ctx: StepContext, step: Step, args: KafkaPatchArgs) -> str:
        edits = edits_of(args.edits)
        status = await ctx.gateway.kafka_status(ctx.cluster)
        if not unmet(status, edits):
            return f"already applied: {describe(edits)} (generation {status.generation})"
        try:
            generation = await ctx.gateway.patch_kafka_spec(
                ctx.cluster, edits, expect=edits_of(args.expect),
                expected_generation=args.expect_generation)
        except PatchRejected as exc:
            raise StepError(f"the patch was refused, nothing was changed: {exc}") from None
        return f"patched spec.kafka: {describe(edits)} (generation {generation})"

    async def done(self, ctx: StepContext, step: Step, args: KafkaPatchArgs) -> DoneResult:
        return await tolerant(self._check(ctx, step, args), "patch")

    async def _check(self, ctx: StepContext, step: Step, args: KafkaPatchArgs) -> DoneResult:
        status = await ctx.gateway.kafka_status(ctx.cluster)
        edits = edits_of(args.edits)
        if unmet(status, edits):
            return DoneResult(done=False, detail="waiting for the patch to show in the Kafka resource")
        if args.wait == "none":
            return DoneResult(done=True, detail=f"spec.kafka now has {describe(edits)}")
        if not status.settled:
            planned: dict[str, str] = step.observed.get("uids") or {}
            pods = await ctx.gateway.broker_pods(ctx.cluster)
            harm = await harm_after_change(ctx, step, restarted=[
                p for p in pods if planned.get(str(p.node_id), p.uid) != p.uid])
            if harm is not None:
                return DoneResult(done=False, failure=harm)
            return DoneResult(done=False, detail=operator_progress(status))
        wanted = args.status.metadata_version if args.status is not None else None
        if wanted is not None and status.metadata_version != wanted:
            return DoneResult(done=False, detail=f"status.kafkaMetadataVersion is {status.metadata_version}, "
                                                 f"waiting for {wanted}")
        detail = f"the operator applied {describe(edits)}, Ready"
        if args.no_roll:
            before: dict[str, str] = step.observed.get("uids") or {}
            pods = await ctx.gateway.broker_pods(ctx.cluster)
            restarted = sorted(str(p.node_id) for p in pods if before.get(str(p.node_id), p.uid) != p.uid)
            detail += (f"; note: the operator restarted brokers {', '.join(restarted)}" if restarted
                       else "; applied without a restart")
        return DoneResult(done=True, detail=detail)


class AwaitOperatorStep:
    """Wait until the operator has reconciled (args: kafka_version the status must show, and
    optionally the generation it must have observed) and reports Ready."""

    async def gate(self, ctx: StepContext, step: Step, args: AwaitOperatorArgs) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: AwaitOperatorArgs) -> dict[str, Any]:
        return {"waiting": True}

    async def act(self, ctx: StepContext, step: Step, args: AwaitOperatorArgs) -> str:
        return "waiting for the operator's status"

    async def done(self, ctx: StepContext, step: Step, args: AwaitOperatorArgs) -> DoneResult:
        return await tolerant(self._check(ctx, step, args), "operator")

    async def _check(self, ctx: StepContext, step: Step, args: AwaitOperatorArgs) -> DoneResult:
        status = await ctx.gateway.kafka_status(ctx.cluster)
        generation = args.generation
        if generation is not None and status.observed_generation < generation:
            harm = await harm_after_change(ctx, step)
            if harm is not None:
                return DoneResult(done=False, failure=harm)
            return DoneResult(done=False, detail=f"the operator is reconciling (observed generation "
                                                 f"{status.observed_generation} of {generation})")
        if not status.settled:
            harm = await harm_after_change(ctx, step)
            if harm is not None:
                return DoneResult(done=False, failure=harm)
            return DoneResult(done=False, detail=operator_progress(status))
        version = args.kafka_version
        if version is not None and status.kafka_version != version:
            return DoneResult(done=False, detail=f"status.kafkaVersion is {status.kafka_version}, "
                                                 f"waiting for {version}")
        return DoneResult(done=True, detail=f"Ready at generation {status.observed_generation}"
                                            + (f", status.kafkaVersion {version}" if version else ""))
