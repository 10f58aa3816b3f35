"""Following one broker through a roll the operator performs by itself (``runbooks.rules.rolls``).

The gate runs before the operator reaches the broker (normally: the previous broker's step just
finished). It refuses to go on when the cluster is sick *beyond* this broker: another broker down,
a partition missing a replica other than this broker, no quorum leader; and, while this broker
is still untouched, when restarting it would take a partition below min ISR (Strimzi's canRoll,
which the operator applies too). Problems that are only this broker being restarted (its
replicas out of the ISR, its pod not Ready) are the roll itself, so they never pause the run.

``done`` waits for: a new pod (uid other than the plan's) showing what the roll was for, Ready,
back in the ISR of every partition it hosts, and 0 URP. It stops waiting at the first sign of harm
(``runbooks.rules.harm``), each a hard failure that pauses the run at once, so that no later step of the
run happens on a sick cluster and the undo is offered while the damage is one broker: any broker
pod crash-looping (this broker's new pod included), the Kafka resource NotReady with a fatal
reason for the latest generation, or this broker's new pod not Ready within the allowance its
siblings' own start-up times give. The step's deadline remains the last resort.

``tolerate`` (an undo's steps): brokers already down because of the change being undone, whose
own step comes later; their state is not this step's business. ``down_at_plan`` (an undo's step
for a broken broker): its old pod being stuck is what the undo repairs; only its new pod counts.
"""

from __future__ import annotations

from typing import Any

from handlers.ports import BrokerPod
from handlers.steps.base import DoneResult, GateResult, StepContext, tolerant
from handlers.steps.pod_health import down_text, late_pods, operator_verdict, stuck_pods
from runbooks.catalogue.step_args import FollowRollArgs
from runbooks.engine.models import Step
from runbooks.rules.gates import broker_restart_risk
from runbooks.rules.health import (
    Liveness,
    broker_liveness,
    degraded_besides,
    out_of_isr,
    under_replicated,
)
from runbooks.rules.versions import VersionError, line_key

_LINE_KEYS = ("inter.broker.protocol.version", "log.message.format.version")


def same_value(key: str, have: str | None, want: str) -> bool:
    if have is None:
        return False
    if key in _LINE_KEYS:
        try:
            return line_key(have) == line_key(want)
        except VersionError:
            return False
    return have.lower() == want.lower()


def _shown(args: FollowRollArgs) -> str:
    if args.expect.kafka_version is not None:
        return f", Kafka {args.expect.kafka_version}"
    return "".join(f", {k}={v}" for k, v in args.expect.config.items())


class FollowRollStep:
    async def _shows_expected(self, ctx: StepContext, step: Step, args: FollowRollArgs, pod: BrokerPod) -> bool:
        version = args.expect.kafka_version
        if version is not None and pod.kafka_version != version:
            return False
        config = args.expect.config
        if config:
            described = await ctx.admin.describe_broker_configs(
                ctx.cluster, await ctx.bootstrap(), [pod.node_id], list(config))
            values = described.get(pod.node_id, {})
            return all(same_value(k, values[k].value if k in values else None, v) for k, v in config.items())
        return True

    async def _rolled(self, ctx: StepContext, step: Step, args: FollowRollArgs, pod: BrokerPod | None) -> bool:
        if pod is None or pod.uid == args.uid or not pod.ready:
            return False
        return await self._shows_expected(ctx, step, args, pod)

    async def gate(self, ctx: StepContext, step: Step, args: FollowRollArgs) -> GateResult:
        broker = args.broker
        snapshot = await ctx.admin.snapshot(ctx.cluster, await ctx.bootstrap())
        pods = {p.node_id: p for p in await ctx.gateway.broker_pods(ctx.cluster)}
        pod = pods.get(broker)
        tolerated = set(args.tolerate)
        problems = [down_text(p) for p in stuck_pods(pods.values(), ignore={broker, *tolerated})]
        # Other brokers Kafka does not count as live although their pod is Ready: sick, not rolling.
        liveness = broker_liveness(snapshot, pods)
        gone = [b for b, state in liveness.items()
                if b != broker and b not in tolerated and state is not Liveness.LIVE and b in pods and pods[b].ready]
        if gone:
            problems.append(f"brokers {', '.join(map(str, gone))} are not live in Kafka (fenced or unregistered)")
        # The operator may be busy with another broker first (its order can differ from the plan's):
        # then what that broker's restart causes is not sickness either.
        busy = [p.node_id for p in pods.values()
                if p.node_id != broker and p.node_id not in tolerated and not p.ready and not p.crashed]
        subject = busy[0] if len(busy) == 1 else broker
        sick = degraded_besides(snapshot, subject, *tolerated)
        if sick:
            problems.append(f"{len(sick)} partitions are missing a replica other than broker {subject} "
                            f"(e.g. {', '.join(p.name for p in sick[:3])})")
        if snapshot.quorum is not None and snapshot.quorum.leader_id is None:
            problems.append("the KRaft quorum has no leader")
        findings: tuple[str, ...] = ()
        in_isr = pod is not None and pod.ready and not out_of_isr(snapshot, broker)
        untouched = in_isr and not busy and not await self._rolled(ctx, step, args, pod)
        if untouched:
            risk = broker_restart_risk(snapshot, broker)
            findings = risk.findings
            problems += risk.problems(broker, when=" now")
        if problems:
            return GateResult(ok=False, findings=findings,
                              reason=f"before the operator restarts broker {broker}: " + "; ".join(problems))
        where = ("not restarted yet" if untouched else f"waits: the operator is restarting broker {subject}"
                 if busy else "already being restarted by the operator")
        return GateResult(ok=True, findings=findings, reason=f"broker {broker} {where}; the rest of the cluster is "
                                                             "healthy")

    async def observe(self, ctx: StepContext, step: Step, args: FollowRollArgs) -> dict[str, Any]:
        return {"following": args.pod}

    async def act(self, ctx: StepContext, step: Step, args: FollowRollArgs) -> str:
        return f"following the operator's restart of {args.pod}"

    async def done(self, ctx: StepContext, step: Step, args: FollowRollArgs) -> DoneResult:
        return await tolerant(self._check(ctx, step, args), "roll")

    async def _check(self, ctx: StepContext, step: Step, args: FollowRollArgs) -> DoneResult:
        broker = args.broker
        tolerated = set(args.tolerate)
        pods = {p.node_id: p for p in await ctx.gateway.broker_pods(ctx.cluster)}
        pod = pods.get(broker)
        harm = await self._harm(ctx, step, args, pods, pod)
        if harm is not None:
            return DoneResult(done=False, failure=harm)
        if not await self._rolled(ctx, step, args, pod):
            return await self._not_rolled(ctx, step, args, pod)
        snapshot = await ctx.admin.snapshot(ctx.cluster, await ctx.bootstrap())
        missing = out_of_isr(snapshot, broker)
        if missing:
            return DoneResult(done=False, detail=f"broker {broker}: new pod Ready, rejoining ISR "
                                                 f"({len(missing)} partitions left)")
        done = f"broker {broker} restarted (new pod{_shown(args)}), back in ISR"
        # The operator may already be restarting the next broker (it does not wait for this run):
        # the URP that broker causes is the next step's business, anything else is this one's.
        next_up = [p.node_id for p in pods.values()
                   if p.node_id != broker and p.node_id not in tolerated and not p.ready and not p.crashed]
        later = [b for b in sorted(tolerated) if b not in pods or not pods[b].ready]
        if len(next_up) == 1 or later:
            sick = degraded_besides(snapshot, *next_up, *later)
            if sick:
                return DoneResult(done=False, detail=f"broker {broker}: back in ISR, waiting for {len(sick)} "
                                                     "partitions to recover")
            if not later:
                return DoneResult(done=True, detail=f"{done}; the operator is already restarting broker {next_up[0]}")
            return DoneResult(done=True, detail=f"{done}; brokers {', '.join(map(str, [*next_up, *later]))} are "
                                                "still to come back")
        urp = under_replicated(snapshot)
        if urp:
            return DoneResult(done=False, detail=f"broker {broker}: back in ISR, waiting for {len(urp)} URP to clear")
        return DoneResult(done=True, detail=f"{done}, 0 URP")

    async def _harm(self, ctx: StepContext, step: Step, args: FollowRollArgs, pods: dict[int, BrokerPod],
                    pod: BrokerPod | None) -> str | None:
        """The first sign of harm (``runbooks.rules.harm``), as the sentence that pauses the run."""
        broker = args.broker
        others = stuck_pods([p for p in pods.values() if p.node_id != broker], ignore=set(args.tolerate))
        if others:
            return (f"{'; '.join(down_text(p) for p in others)} while broker {broker} is being rolled. The run "
                    "stops here so that nothing more happens on a sick cluster (the operator itself will not restart "
                    "a broker that would leave a partition under min ISR); Retry once it is back, or Abort")
        new = pod is not None and pod.uid != args.uid
        if pod is not None and pod.stuck and (new or not args.down_at_plan):
            which = "its new pod, which the operator started for this change," if new else "its pod"
            return f"{down_text(pod)}: {which} cannot run, and waiting will not change that"
        verdict = operator_verdict(await ctx.gateway.kafka_status(ctx.cluster))
        if verdict is not None:
            return verdict
        if new and pod is not None and not pod.ready:
            return late_pods(pods.values(), [pod], now=ctx.clock.now(), since=step.attempt_started_at)
        return None

    async def _not_rolled(self, ctx: StepContext, step: Step, args: FollowRollArgs,
                          pod: BrokerPod | None) -> DoneResult:
        broker = args.broker
        if args.may_skip_roll and pod is not None and pod.uid == args.uid:
            status = await ctx.gateway.kafka_status(ctx.cluster)
            generation = args.settle_generation or status.generation
            if status.ready and status.observed_generation >= max(generation, status.generation):
                return DoneResult(done=True, detail=f"broker {broker}: applied without a restart (the operator "
                                                    f"reconciled generation {status.observed_generation}, pod kept)")
        if pod is None:
            return DoneResult(done=False, detail=f"broker {broker}: the operator is replacing the pod")
        if pod.uid == args.uid:
            if not pod.ready:
                state = "stopping the pod" if pod.terminating else "the pod is not Ready"
                return DoneResult(done=False, detail=f"broker {broker}: {state}")
            return DoneResult(done=False, detail=f"broker {broker}: waiting for the operator to restart it")
        if not pod.ready:
            if pod.crashed:
                why = pod.waiting_reason or "restarting"
                return DoneResult(done=False, detail=f"broker {broker}: the new pod crashed ({why})")
            return DoneResult(done=False, detail=f"broker {broker}: new pod started, not Ready yet")
        return DoneResult(done=False, detail=f"broker {broker}: waiting for the operator to restart it for this change")
