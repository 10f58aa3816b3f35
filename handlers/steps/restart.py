"""The rolling-restart runbook's executors: the pre-flight, one broker's restart through Strimzi's
manual rolling update annotation, and the preferred leader election."""

from __future__ import annotations

from typing import Any

from handlers.steps.base import DoneResult, GateResult, StepContext, StepError
from runbooks.catalogue.restart import ElectLeadersArgs, PreflightArgs, RestartBrokerArgs
from runbooks.engine.models import Step
from runbooks.rules.gates import restart_gate
from runbooks.rules.health import out_of_isr, preflight, under_replicated

TOPIC_OPERATOR_WARNING = (
    "warning: the Kafka resource deploys the Topic Operator without Cruise Control, and Strimzi's Topic Operator "
    "deletes the throttled-replica lists of topics that have a KafkaTopic (strimzi#9972): a move of such a topic "
    "copies unthrottled until this run notices (every poll) and sets the lists again; the card says when it does")


class PreflightStep:
    async def gate(self, ctx: StepContext, step: Step, args: PreflightArgs) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: PreflightArgs) -> dict[str, Any]:
        return {"checked": True}

    async def act(self, ctx: StepContext, step: Step, args: PreflightArgs) -> str:
        status = await ctx.gateway.kafka_status(ctx.cluster)
        snapshot = await ctx.admin.snapshot(ctx.cluster, await ctx.bootstrap())
        pods = await ctx.gateway.broker_pods(ctx.cluster)
        report = preflight(snapshot, kafka_ready=status.ready, kafka_reason=status.message or status.reason,
                           expected_brokers=[p.node_id for p in pods])
        if not report.ok:
            raise StepError(f"pre-flight found: {report.summary}")
        if args.throttled_moves and status.topic_operator and not status.cruise_control:
            return f"{report.summary}; {TOPIC_OPERATOR_WARNING}"
        return report.summary

    async def done(self, ctx: StepContext, step: Step, args: PreflightArgs) -> DoneResult:
        return DoneResult(done=step.applied, detail=step.detail)


class RestartBrokerStep:
    """Restart one broker through Strimzi's manual rolling update annotation."""

    async def gate(self, ctx: StepContext, step: Step, args: RestartBrokerArgs) -> GateResult:
        snapshot = await ctx.admin.snapshot(ctx.cluster, await ctx.bootstrap())
        pods = {p.node_id: p.ready for p in await ctx.gateway.broker_pods(ctx.cluster)}
        verdict = restart_gate(snapshot, args.broker, pods)
        return GateResult(ok=verdict.ok, findings=verdict.findings, reason=verdict.reason)

    async def observe(self, ctx: StepContext, step: Step, args: RestartBrokerArgs) -> dict[str, Any]:
        broker = args.broker
        pod = next((p for p in await ctx.gateway.broker_pods(ctx.cluster) if p.node_id == broker), None)
        if pod is None:
            raise StepError(f"no pod found for broker {broker}")
        return {"pod": pod.name, "uid_before": pod.uid}

    async def act(self, ctx: StepContext, step: Step, args: RestartBrokerArgs) -> str:
        pod, uid = str(step.observed["pod"]), str(step.observed["uid_before"])
        if await ctx.gateway.request_pod_roll(ctx.cluster, pod, uid):
            return f"asked Strimzi to roll {pod}"
        return f"{pod} was already replaced"

    async def done(self, ctx: StepContext, step: Step, args: RestartBrokerArgs) -> DoneResult:
        broker = args.broker
        uid_before = step.observed.get("uid_before")
        pod = next((p for p in await ctx.gateway.broker_pods(ctx.cluster) if p.node_id == broker), None)
        if pod is None or pod.uid == uid_before:
            return DoneResult(done=False, detail=f"broker {broker}: waiting for Strimzi to restart the pod")
        if not pod.ready:
            return DoneResult(done=False, detail=f"broker {broker}: new pod started, not Ready yet")
        snapshot = await ctx.admin.snapshot(ctx.cluster, await ctx.bootstrap())
        missing = out_of_isr(snapshot, broker)
        if missing:
            left = len(missing)
            return DoneResult(done=False, detail=f"broker {broker}: Ready, rejoining ISR ({left} partitions left)")
        urp = under_replicated(snapshot)
        if urp:
            return DoneResult(done=False, detail=f"broker {broker}: back in ISR, waiting for {len(urp)} URP to clear")
        return DoneResult(done=True, detail=f"broker {broker} restarted, back in ISR, 0 URP")


class ElectLeadersStep:
    async def gate(self, ctx: StepContext, step: Step, args: ElectLeadersArgs) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: ElectLeadersArgs) -> dict[str, Any]:
        return {"checked": True}

    async def act(self, ctx: StepContext, step: Step, args: ElectLeadersArgs) -> str:
        moved = await ctx.admin.elect_preferred_leaders(ctx.cluster, await ctx.bootstrap())
        return f"{moved} leaders moved back to their preferred replica"

    async def done(self, ctx: StepContext, step: Step, args: ElectLeadersArgs) -> DoneResult:
        return DoneResult(done=step.applied, detail=step.detail)
