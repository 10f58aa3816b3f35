"""The last step of the upgrade and config runbooks: read back from every broker what was asked.

Nothing here acts. ``done`` compares the world with the plan and, until it matches, reports what
does not; the step's deadline pauses the run with that text if it never does. Versions are checked
three ways, because each can lie alone: the Kafka status (the operator's view), each pod's
``strimzi.io/kafka-version`` annotation (what the operator started), and each broker's own
ApiVersions (the highest metadata.version its binaries support, i.e. the release it really runs).
"""

from __future__ import annotations

from typing import Any

from handlers.steps.base import DoneResult, GateResult, StepContext, tolerant
from handlers.steps.cluster import health_problems
from handlers.steps.roll import same_value
from runbooks.catalogue.step_args import VerifyConfigArgs, VerifyUpgradeArgs
from runbooks.engine.models import Step
from runbooks.rules.versions import line_of_level, metadata_level, metadata_name, release_line


class _Check:
    async def gate(self, ctx: StepContext, step: Step, args: object) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: object) -> dict[str, Any]:
        return {"checking": True}

    async def act(self, ctx: StepContext, step: Step, args: object) -> str:
        return "checking every broker"


class VerifyUpgradeStep(_Check):
    async def done(self, ctx: StepContext, step: Step, args: VerifyUpgradeArgs) -> DoneResult:
        return await tolerant(self._check(ctx, args), "verify")

    async def _check(self, ctx: StepContext, args: VerifyUpgradeArgs) -> DoneResult:
        version = args.kafka_version
        metadata = args.metadata_version
        brokers = list(args.brokers)
        status = await ctx.gateway.kafka_status(ctx.cluster)
        wrong: list[str] = []
        if not status.settled:
            wrong.append(f"the Kafka resource is not Ready at its latest generation ({status.reason})")
        if status.kafka_version != version:
            wrong.append(f"status.kafkaVersion is {status.kafka_version}")
        if metadata is not None and status.metadata_version != metadata:
            wrong.append(f"status.kafkaMetadataVersion is {status.metadata_version}")
        pods = {p.node_id: p for p in await ctx.gateway.broker_pods(ctx.cluster)}
        for broker in brokers:
            pod = pods.get(broker)
            if pod is None or not pod.ready or pod.kafka_version != version:
                wrong.append(f"broker {broker}'s pod is "
                             + ("missing" if pod is None else "not Ready" if not pod.ready else
                                f"annotated {pod.kafka_version}"))
        bootstrap = await ctx.bootstrap()
        features = await ctx.admin.broker_features(ctx.cluster, bootstrap, brokers)
        line = release_line(version)
        for broker in brokers:
            seen = features.get(broker)
            top = seen.metadata_max_level if seen is not None else None
            if top is None or line_of_level(top) != line:
                wrong.append(f"broker {broker} advertises metadata.version up to "
                             f"{metadata_name(top) if top is not None else 'nothing'} (not a {line} binary)")
            elif (metadata is not None and seen is not None
                  and seen.finalized_metadata_level != metadata_level(metadata)):
                wrong.append(f"broker {broker} sees metadata.version {seen.finalized_metadata_level} finalized")
        config = args.config
        if config:
            described = await ctx.admin.describe_broker_configs(ctx.cluster, bootstrap, brokers, list(config))
            for broker in brokers:
                values = described.get(broker, {})
                for key, want in config.items():
                    have = values[key].value if key in values else None
                    if not same_value(key, have, want):
                        wrong.append(f"broker {broker} runs {key}={have}")
        problems, _ = await health_problems(ctx, brokers)
        wrong += problems
        if wrong:
            return DoneResult(done=False, detail="not yet: " + "; ".join(wrong))
        shown = f"metadata {metadata}, " if metadata else "".join(f"{k}={v}, " for k, v in config.items())
        return DoneResult(done=True, detail=(
            f"Kafka {version} on brokers {', '.join(map(str, brokers))} (status, pod annotations and each broker's "
            f"ApiVersions agree), {shown}Ready, healthy"))


class VerifyConfigStep(_Check):
    async def done(self, ctx: StepContext, step: Step, args: VerifyConfigArgs) -> DoneResult:
        return await tolerant(self._check(ctx, args), "verify")

    async def _check(self, ctx: StepContext, args: VerifyConfigArgs) -> DoneResult:
        brokers = list(args.brokers)
        wanted = args.set
        removed = list(args.unset)
        described = await ctx.admin.describe_broker_configs(
            ctx.cluster, await ctx.bootstrap(), brokers, [*wanted, *removed])
        wrong: list[str] = []
        after: dict[str, set[str]] = {}
        for broker in brokers:
            values = described.get(broker, {})
            for key, want in wanted.items():
                have = values[key].value if key in values else None
                if not same_value(key, have, want):
                    wrong.append(f"broker {broker} has {key}={have}")
            for key in removed:
                entry = values.get(key)
                if entry is not None and entry.source == "DYNAMIC_BROKER_CONFIG":
                    wrong.append(f"broker {broker} still has a per-broker override {key}={entry.value}")
                shown = "absent" if entry is None else f"{entry.value or 'the Kafka default'} ({entry.source})"
                after.setdefault(key, set()).add(shown)
        problems, _ = await health_problems(ctx, brokers)
        wrong += problems
        if wrong:
            return DoneResult(done=False, detail="not yet: " + "; ".join(wrong))
        before = args.uids
        pods = await ctx.gateway.broker_pods(ctx.cluster)
        restarted = sorted(p.node_id for p in pods if before.get(str(p.node_id), p.uid) != p.uid)
        parts = [f"{k}={v}" for k, v in wanted.items()] + [f"{k} unset, now {', '.join(sorted(v))}"
                                                          for k, v in after.items()]
        how = (f"brokers {', '.join(map(str, restarted))} restarted" if restarted
               else "applied without a restart")
        return DoneResult(done=True, detail=f"{'; '.join(parts)} on every broker ({how}), healthy")
