"""Restarting a FAILED MirrorMaker 2 connector or task: a one-step runbook, approved like any other.

What a ``mirror_failed`` alert's button runs (``/kafka mirror-restart <cluster> <mirror> <connector>
[--task N]``). The step sets Strimzi's own annotation on the KafkaMirrorMaker2,
``strimzi.io/restart-connector-task=<connector>:<task>`` for a task, or
``strimzi.io/restart-connector=<connector>:includeTasks,onlyFailed`` for a connector (the connector
and its FAILED tasks); the operator restarts it through Connect's REST API and removes the
annotation. The step is done when that annotation is gone and what was restarted is RUNNING.

Nothing FAILED is refused (``autoRestart`` or someone else may have fixed it since the alert): a
restart of a healthy task interrupts its copying for nothing.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from runbooks.alerting.mirror import FAILED, ConnectorHealth, first_line
from runbooks.catalogue.runbook import Runbook
from runbooks.engine.models import PlanRefused, StepArgs, StepSpec

RUNBOOK = "mirror-restart"
RESTART_CONNECTOR = "strimzi.io/restart-connector"
RESTART_TASK = "strimzi.io/restart-connector-task"
RESTART_TIMEOUT_S = 300.0  # Strimzi acts on the annotation at its next reconciliation (every 2 min by default)


class MirrorRestartParams(BaseModel):
    model_config = ConfigDict(frozen=True)

    mirror: str
    connector: str
    task: int | None = None


class RestartMirrorArgs(StepArgs):
    kind: Literal["restart-mirror-connector"] = "restart-mirror-connector"
    mirror: str
    connector: str
    task: int | None = None

    @property
    def annotation(self) -> tuple[str, str]:
        if self.task is not None:
            return RESTART_TASK, f"{self.connector}:{self.task}"
        return RESTART_CONNECTOR, f"{self.connector}:includeTasks,onlyFailed"


class MirrorRestartInput(BaseModel):
    """The KafkaMirrorMaker2 resources of the cluster, as the planner needs them."""

    model_config = ConfigDict(frozen=True)

    mirrors: dict[str, tuple[ConnectorHealth, ...]]  # resource name -> its connectors


def what(params: MirrorRestartParams) -> str:
    return f"task {params.task} of {params.connector}" if params.task is not None else params.connector


def plan(params: MirrorRestartParams, world: MirrorRestartInput) -> list[StepSpec]:
    connectors = world.mirrors.get(params.mirror)
    if connectors is None:
        known = ", ".join(sorted(world.mirrors)) or "none"
        raise PlanRefused(f"no KafkaMirrorMaker2 {params.mirror} in this cluster's namespace (its mirrors: {known})")
    connector = next((c for c in connectors if c.name == params.connector), None)
    if connector is None:
        known = ", ".join(c.name for c in connectors) or "none reported yet"
        raise PlanRefused(f"{params.mirror} has no connector {params.connector} (its connectors: {known})")
    if params.task is not None:
        task = next((t for t in connector.tasks if t.id == params.task), None)
        if task is None:
            known = ", ".join(str(t.id) for t in connector.tasks) or "none"
            raise PlanRefused(f"{params.connector} has no task {params.task} (its tasks: {known})")
        failed, state, trace = task.state.upper() == FAILED, task.state, task.trace
    else:
        failed_tasks = [t for t in connector.tasks if t.state.upper() == FAILED]
        failed = connector.state.upper() == FAILED or bool(failed_tasks)
        state, trace = connector.state, connector.trace or (failed_tasks[0].trace if failed_tasks else None)
    if not failed:
        raise PlanRefused(f"{what(params)} is {state}, not FAILED: there is nothing to restart")
    args = RestartMirrorArgs(mirror=params.mirror, connector=params.connector, task=params.task)
    key, value = args.annotation
    return [StepSpec(
        id="restart", title=f"Restart {what(params)} (MirrorMaker 2 {params.mirror})", args=args,
        timeout_s=RESTART_TIMEOUT_S,
        summary=f"It failed with: {first_line(trace)}. Sets {key}={value} on the KafkaMirrorMaker2 {params.mirror}: "
                "Strimzi restarts it through Connect's REST API and removes the annotation. Done when it is RUNNING.",
    )]


MIRROR_RESTART = Runbook(
    name=RUNBOOK,
    verb="mirror-restart",
    summary="Restart a FAILED MirrorMaker 2 connector or task (Strimzi's restart annotation), once approved.",
    description="<mirror> is the KafkaMirrorMaker2 in the cluster's namespace (the target cluster's), <connector> "
    "one of its connectors as status.connectors names it (e.g. 'east->west.MirrorSourceConnector'). With --task N, "
    "that task only (strimzi.io/restart-connector-task); without it, the connector and its FAILED tasks "
    "(strimzi.io/restart-connector with includeTasks,onlyFailed). Refused when nothing there is FAILED. A "
    "mirror_failed alert's Restart button runs this.",
    params=MirrorRestartParams,
    world=MirrorRestartInput,
    plan=plan,
    title=lambda params: f"Restart {what(params)} of MirrorMaker 2 {params.mirror}",
    refusal=lambda cluster, params: f"Cannot restart {what(params)} on {cluster}",
    stored=lambda params: params.model_dump(mode="json"),
)
