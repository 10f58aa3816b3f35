"""The mirror-restart runbook's executor, and how its planner reads the cluster: Strimzi's restart
annotation on a KafkaMirrorMaker2, done once the operator has removed it and the connector (or task)
is RUNNING.

The KafkaMirrorMaker2 resources are reached through the ``MirrorMakers`` port, which the bot's
cluster gateway implements next to ``ClusterGateway`` (``bot.kube.apis``): the step finds it on
the gateway it is given, and says so when a gateway has none.
"""

from __future__ import annotations

from typing import Any, cast

from handlers.mirror_ports import MirrorMakers, MirrorMakerStatus
from handlers.ports import ClusterGateway, ClusterRef
from handlers.steps.base import DoneResult, GateResult, StepContext, StepError
from runbooks.alerting.mirror import ConnectorHealth, TaskHealth, first_line
from runbooks.catalogue.mirror_restart import MirrorRestartInput, RestartMirrorArgs
from runbooks.engine.models import Step

RUNNING = "RUNNING"
_PORT_METHODS = ("list_mirror_makers", "get_mirror_maker", "annotate_mirror_maker")


def mirror_makers(gateway: ClusterGateway) -> MirrorMakers:
    """The gateway as the ``MirrorMakers`` port (the bot's gateway is both)."""
    if not all(callable(getattr(gateway, name, None)) for name in _PORT_METHODS):
        raise StepError(f"this bot's cluster gateway ({type(gateway).__name__}) cannot reach KafkaMirrorMaker2 "
                        "resources", permanent=True)
    return cast(MirrorMakers, gateway)


def health(resource: MirrorMakerStatus) -> tuple[ConnectorHealth, ...]:
    return tuple(ConnectorHealth(name=c.name, state=c.state, trace=c.trace or None,
                                 tasks=tuple(TaskHealth(id=t.id, state=t.state, trace=t.trace or None)
                                             for t in c.tasks))
                 for c in resource.connectors)


async def mirror_restart_world(gateway: ClusterGateway, cluster: ClusterRef) -> MirrorRestartInput:
    resources = await mirror_makers(gateway).list_mirror_makers(cluster)
    return MirrorRestartInput(mirrors={r.name: health(r) for r in resources})


class RestartMirrorStep:
    async def gate(self, ctx: StepContext, step: Step, args: RestartMirrorArgs) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: RestartMirrorArgs) -> dict[str, Any]:
        resource = await self._resource(ctx, args)
        return {"generation": resource.generation, "state": _state(resource, args)}

    async def act(self, ctx: StepContext, step: Step, args: RestartMirrorArgs) -> str:
        key, value = args.annotation
        await mirror_makers(ctx.gateway).annotate_mirror_maker(ctx.cluster, args.mirror, {key: value})
        return f"annotated KafkaMirrorMaker2 {args.mirror} with {key}={value}"

    async def done(self, ctx: StepContext, step: Step, args: RestartMirrorArgs) -> DoneResult:
        if not step.applied:
            return DoneResult(done=False)
        resource = await self._resource(ctx, args)
        key, _ = args.annotation
        if key in resource.annotations:
            return DoneResult(done=False, detail="waiting for Strimzi to act on the restart annotation")
        state = _state(resource, args)
        if state == RUNNING:
            return DoneResult(done=True, detail=f"{_what(args)} is RUNNING")
        trace = _trace(resource, args)
        return DoneResult(done=False, detail=f"{_what(args)} is {state}" + (f": {trace}" if trace else ""))

    async def _resource(self, ctx: StepContext, args: RestartMirrorArgs) -> MirrorMakerStatus:
        resource = await mirror_makers(ctx.gateway).get_mirror_maker(ctx.cluster, args.mirror)
        if resource is None:
            raise StepError(f"the KafkaMirrorMaker2 {args.mirror} is gone from {ctx.cluster.namespace}", permanent=True)
        return resource


def _what(args: RestartMirrorArgs) -> str:
    return f"task {args.task} of {args.connector}" if args.task is not None else args.connector


def _state(resource: MirrorMakerStatus, args: RestartMirrorArgs) -> str:
    """RUNNING when the task (or the connector and all its tasks) runs; else the state that does not."""
    connector = resource.connector(args.connector)
    if connector is None:
        return "not reported"
    if args.task is not None:
        task = next((t for t in connector.tasks if t.id == args.task), None)
        return task.state if task is not None else "not reported"
    if connector.state != RUNNING:
        return connector.state
    stuck = next((t for t in connector.tasks if t.state != RUNNING), None)
    return RUNNING if stuck is None else f"RUNNING with task {stuck.id} {stuck.state}"


def _trace(resource: MirrorMakerStatus, args: RestartMirrorArgs) -> str:
    connector = resource.connector(args.connector)
    if connector is None:
        return ""
    traces = [connector.trace] + [t.trace for t in connector.tasks if args.task is None or t.id == args.task]
    found = next((t for t in traces if t), "")
    return first_line(found) if found else ""
