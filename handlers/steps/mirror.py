"""The executors of the MirrorMaker 2 runbook (``runbooks.catalogue.mirror``).

The run's own cluster (``ctx.cluster``) is the target: the KafkaMirrorMaker2 is created in its
namespace through ``MirrorMakers``; the source is read (and its canary topic written) through
``ctx.other(args.source)``. ``await-mirror`` judges ``status.connectors``, not Strimzi's Ready alone:
Ready stays True next to a FAILED task (Strimzi issue #5715).
"""

from __future__ import annotations

from typing import Any

from handlers.mirror_ports import CanaryFigures, ConnectorStatus, MirrorCanary, MirrorMakers, MirrorMakerStatus
from handlers.mirror_secrets import secrets_in
from handlers.ports import ClusterRef
from handlers.steps.base import DoneResult, GateResult, StepContext, StepError, tolerant
from runbooks.catalogue.mirror import RUN_LABEL
from runbooks.catalogue.mirror_security import refuse_missing
from runbooks.catalogue.mirror_step_args import (
    AwaitMirrorArgs,
    CreateMirrorArgs,
    MirrorCanaryArgs,
    MirrorPreflightArgs,
    VerifyCheckpointsArgs,
)
from runbooks.engine.models import PlanRefused, Step
from runbooks.rules.health import assess

FATAL_REASONS = frozenset({"InvalidResourceException", "UnsupportedKafkaVersionException"})
TRACE_LINES = 6  # of a FAILED task's Java trace on the card: the exception and where it was thrown


def mirror_makers(ctx: StepContext) -> MirrorMakers:
    if ctx.mirror_makers is None:
        raise StepError("this bot was started without access to KafkaMirrorMaker2 resources", permanent=True)
    return ctx.mirror_makers


def canary_port(ctx: StepContext) -> MirrorCanary:
    if ctx.canary is None:
        raise StepError("this bot was started without the mirror canary's Kafka clients", permanent=True)
    return ctx.canary


def short_trace(trace: str) -> str:
    return "\n".join(trace.strip().splitlines()[:TRACE_LINES])


def connectors_text(connectors: tuple[ConnectorStatus, ...]) -> str:
    if not connectors:
        return "no connector reported yet"
    return "; ".join(f"{c.name} {c.state or '?'} (tasks: " + (", ".join(f"{t.id} {t.state}" for t in c.tasks)
                                                                or "none yet") + ")" for c in connectors)


def failure_of(mirror: MirrorMakerStatus) -> str | None:
    """A FAILED connector or task, with its trace's first lines; None when none failed."""
    for connector in mirror.connectors:
        if connector.state == "FAILED":
            return f"connector {connector.name} FAILED: {short_trace(connector.trace) or 'no trace'}"
        for task in connector.failed_tasks:
            return f"task {task.id} of {connector.name} FAILED: {short_trace(task.trace) or 'no trace'}"
    return None


def figures_text(figures: CanaryFigures) -> str:
    def ms(value: float | None) -> str:
        return "n/a" if value is None else f"{value:,.0f} ms"

    return (f"{figures.received}/{figures.sent} canary records arrived, {figures.missing} missing, "
            f"{figures.duplicates} duplicated; latency p50 {ms(figures.p50_ms)}, p99 {ms(figures.p99_ms)}, "
            f"max {ms(figures.max_ms)}; first record after {ms(figures.first_ms)}")


async def _healthy(ctx: StepContext, ref: ClusterRef, role: str) -> list[str]:
    status = await ctx.gateway.kafka_status(ref)
    if not status.ready:
        return [f"the {role} {ref.name} is not Ready ({status.reason or 'no reason given'})"]
    report = assess(await ctx.admin.snapshot(ref, await ctx.bootstrap(ref)))
    return [f"the {role} {ref.name}: {p}" for p in report.problems]


class MirrorPreflightStep:
    async def gate(self, ctx: StepContext, step: Step, args: MirrorPreflightArgs) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: MirrorPreflightArgs) -> dict[str, Any]:
        return {"cluster": ctx.cluster.name}  # never empty: the engine observes until it holds something

    async def act(self, ctx: StepContext, step: Step, args: MirrorPreflightArgs) -> str:
        return "checked both clusters"

    async def done(self, ctx: StepContext, step: Step, args: MirrorPreflightArgs) -> DoneResult:
        problems = await _healthy(ctx, ctx.other(args.source), "source") + await _healthy(ctx, ctx.cluster, "target")
        if await mirror_makers(ctx).get_mirror_maker(ctx.cluster, args.name) is not None:
            problems.append(f"a KafkaMirrorMaker2 {args.name} exists already in {ctx.cluster.namespace}")
        if args.secrets:  # still there since the plan looked (nothing is created before this step passes)
            found = await secrets_in(ctx.gateway, ctx.cluster, args.secrets)
            try:
                refuse_missing(list(args.secrets), found, ctx.cluster.name, ctx.cluster.namespace,
                               flags=dict(args.kubectl))
            except PlanRefused as exc:
                problems.append(str(exc))
        if problems:
            return DoneResult(done=False, failure="; ".join(problems))
        return DoneResult(done=True, detail=f"{args.source} and {ctx.cluster.name} Ready and healthy")


class CreateMirrorStep:
    async def gate(self, ctx: StepContext, step: Step, args: CreateMirrorArgs) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: CreateMirrorArgs) -> dict[str, Any]:
        return {"namespace": ctx.cluster.namespace, "name": args.name}

    async def act(self, ctx: StepContext, step: Step, args: CreateMirrorArgs) -> str:
        source = ctx.other(args.source)
        bootstrap = await ctx.bootstrap(source)
        created = await canary_port(ctx).create_topic(source, bootstrap, args.canary_topic)
        if args.canary_group:
            await canary_port(ctx).commit_offsets(source, bootstrap, args.canary_group, {(args.canary_topic, 0): 0})
        await mirror_makers(ctx).create_mirror_maker(ctx.cluster, args.name, args.spec,
                                                     labels={RUN_LABEL: ctx.run_id})
        topic = f"created topic {args.canary_topic} on {args.source}" if created else \
            f"topic {args.canary_topic} on {args.source} was there already"
        return f"{topic}; created KafkaMirrorMaker2 {ctx.cluster.namespace}/{args.name} on {ctx.cluster.name}"

    async def done(self, ctx: StepContext, step: Step, args: CreateMirrorArgs) -> DoneResult:
        found = await mirror_makers(ctx).get_mirror_maker(ctx.cluster, args.name)
        if found is None:
            return DoneResult(done=False, detail="not created yet")
        if found.spec != args.spec:
            return DoneResult(done=False, failure=f"KafkaMirrorMaker2 {args.name} exists with another spec than the "
                              "approved one: someone else made or changed it")
        return DoneResult(done=True)


class AwaitMirrorStep:
    async def gate(self, ctx: StepContext, step: Step, args: AwaitMirrorArgs) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: AwaitMirrorArgs) -> dict[str, Any]:
        return {"cluster": ctx.cluster.name}  # never empty: the engine observes until it holds something

    async def act(self, ctx: StepContext, step: Step, args: AwaitMirrorArgs) -> str:
        return "waiting for the operator and Connect"

    async def done(self, ctx: StepContext, step: Step, args: AwaitMirrorArgs) -> DoneResult:
        return await tolerant(self._done(ctx, args), "KafkaMirrorMaker2 status")

    async def _done(self, ctx: StepContext, args: AwaitMirrorArgs) -> DoneResult:
        found = await mirror_makers(ctx).get_mirror_maker(ctx.cluster, args.name)
        if found is None:
            raise StepError(f"KafkaMirrorMaker2 {ctx.cluster.namespace}/{args.name} is gone: someone deleted it")
        failed = failure_of(found)
        if failed is not None:
            return DoneResult(done=False, failure=failed)
        if found.reason in FATAL_REASONS:  # the operator will not get past these by itself: no use waiting
            return DoneResult(done=False, failure=f"NotReady: {found.reason}: {found.message}"[:500])
        if found.reason:
            return DoneResult(done=False, detail=f"NotReady: {found.reason}: {found.message}"[:300])
        missing = [n for n in args.connectors if found.connector(n) is None]
        running = found.settled and not missing and all(c.running for c in found.connectors
                                                        if c.name in args.connectors)
        text = connectors_text(found.connectors)
        if not running:
            return DoneResult(done=False, detail=f"{'Ready' if found.ready else 'not Ready yet'}; {text}")
        return DoneResult(done=True, detail=f"Ready; {text}")


class MirrorCanaryStep:
    """The proof that records flow. ``act`` runs the whole round (produce on the source, read on the
    target) and pauses the run when a record is missing; ``done`` is that round having passed: a
    round's latency cannot be read back from the target afterwards, so the act's figures are the record."""

    async def gate(self, ctx: StepContext, step: Step, args: MirrorCanaryArgs) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: MirrorCanaryArgs) -> dict[str, Any]:
        return {"source": args.source, "records": args.records}

    async def act(self, ctx: StepContext, step: Step, args: MirrorCanaryArgs) -> str:
        source = ctx.other(args.source)
        # Each round its own marker: a retried round never counts an earlier round's records as its own.
        marker = f"{ctx.run_id}-{step.attempt}-{ctx.clock.now():%Y%m%d%H%M%S%f}"
        figures = await canary_port(ctx).round_trip(
            source, await ctx.bootstrap(source), args.canary_topic, ctx.cluster, await ctx.bootstrap(),
            args.remote_topic, marker=marker, count=args.records, timeout_s=args.wait_s)
        text = figures_text(figures)
        if figures.missing or figures.duplicates:
            raise StepError(f"the canary did not arrive whole: {text}")
        return text

    async def done(self, ctx: StepContext, step: Step, args: MirrorCanaryArgs) -> DoneResult:
        return DoneResult(done=step.applied)  # detail "": the act's figures stay on the card


class VerifyCheckpointsStep:
    async def gate(self, ctx: StepContext, step: Step, args: VerifyCheckpointsArgs) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: VerifyCheckpointsArgs) -> dict[str, Any]:
        source = ctx.other(args.source)
        ends = await canary_port(ctx).end_offsets(source, await ctx.bootstrap(source), args.canary_topic)
        return {"offsets": {str(p): o for p, o in sorted(ends.items())}}

    async def act(self, ctx: StepContext, step: Step, args: VerifyCheckpointsArgs) -> str:
        source = ctx.other(args.source)
        offsets = {(args.canary_topic, int(p)): int(o) for p, o in dict(step.observed.get("offsets") or {}).items()}
        if not offsets:
            raise StepError(f"the canary topic {args.canary_topic} on {args.source} has no partitions")
        await canary_port(ctx).commit_offsets(source, await ctx.bootstrap(source), args.group, offsets)
        at = ", ".join(f"{t}-{p}: {o}" for (t, p), o in offsets.items())
        return f"committed {args.group} at {at} on {args.source}"

    async def done(self, ctx: StepContext, step: Step, args: VerifyCheckpointsArgs) -> DoneResult:
        return await tolerant(self._done(ctx, step, args), "checkpoints")

    async def _done(self, ctx: StepContext, step: Step, args: VerifyCheckpointsArgs) -> DoneResult:
        wanted = {int(p): int(o) for p, o in dict(step.observed.get("offsets") or {}).items()}
        if not step.applied or not wanted:
            return DoneResult(done=False, detail="no offset committed yet")
        found = await canary_port(ctx).checkpoints(ctx.cluster, await ctx.bootstrap(), args.source_alias, args.group)
        ours = {c.partition: c for c in found if c.topic == args.remote_topic}
        if any(p not in ours or ours[p].upstream != o for p, o in wanted.items()):
            return DoneResult(done=False, detail=f"waiting for the checkpoint of {args.group} in "
                              f"{args.source_alias}.checkpoints.internal on {ctx.cluster.name}")
        shown = ", ".join(f"{args.remote_topic}-{p}: {ours[p].upstream} on {args.source} → {ours[p].downstream} "
                          f"on {ctx.cluster.name}" for p in sorted(wanted))
        return DoneResult(done=True, detail=f"{args.group}'s offsets translated ({shown})")
