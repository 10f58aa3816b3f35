"""The rolling-restart runbook: pre-flight, then one approved step per broker, then leadership.

Order is Strimzi's: brokers that are not the active controller first, the active controller last,
so the quorum changes leader once at most. Each restart goes through the operator's own
``strimzi.io/manual-rolling-update`` annotation (never a pod delete), and is proven done by a new
pod uid, the pod Ready, the broker back in the ISR of all its partitions and 0 URP.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from runbooks.catalogue.runbook import Runbook
from runbooks.engine.models import PlanRefused, StepArgs, StepSpec
from runbooks.rules.health import ClusterSnapshot, can_restart, restart_order

RUNBOOK = "restart"
RESTART_TIMEOUT_S = 900.0  # a broker with much log to recover can take minutes; the gate is patient


class RestartParams(BaseModel):
    model_config = ConfigDict(frozen=True)

    brokers: tuple[int, ...] | None = None
    elect_leaders: bool = True


class PreflightArgs(StepArgs):
    kind: Literal["preflight"] = "preflight"
    # The run copies replicas under a throttle: the pre-flight says when a Topic Operator may remove it.
    throttled_moves: bool = False


class RestartBrokerArgs(StepArgs):
    kind: Literal["restart-broker"] = "restart-broker"
    broker: int
    pod: str


class ElectLeadersArgs(StepArgs):
    kind: Literal["elect-leaders"] = "elect-leaders"


def plan_restart(params: RestartParams, snapshot: ClusterSnapshot, pod_names: dict[int, str]) -> list[StepSpec]:
    known = sorted(pod_names)
    chosen = list(params.brokers) if params.brokers is not None else known
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise PlanRefused(
            f"no broker {', '.join(map(str, unknown))} in this cluster; its brokers are {', '.join(map(str, known))}"
        )
    steps = [StepSpec(
        id="preflight", title="Pre-flight: Kafka Ready, 0 URP, 0 offline, no reassignment", args=PreflightArgs(),
        needs_approval=False, timeout_s=120.0,
    )]
    controller = snapshot.active_controller
    for broker in restart_order(snapshot, chosen):
        check = can_restart(snapshot, broker)
        role = " (active controller)" if broker == controller else ""
        steps.append(StepSpec(
            id=f"restart-{broker}", title=f"Restart broker {broker}{role}",
            args=RestartBrokerArgs(broker=broker, pod=pod_names[broker]), timeout_s=RESTART_TIMEOUT_S,
            summary=f"Restart pod {pod_names[broker]} through Strimzi's manual rolling update. {check.summary()}",
        ))
    if params.elect_leaders:
        steps.append(StepSpec(
            id="elect-leaders", title="Preferred leader election", args=ElectLeadersArgs(), skippable=True,
            timeout_s=120.0, summary="Move leadership back to the preferred replicas, so load is even again.",
        ))
    return steps


class RestartInput(BaseModel):
    """The cluster as the restart planner needs it, read through the ports."""

    model_config = ConfigDict(frozen=True)

    snapshot: ClusterSnapshot
    pod_names: dict[int, str]  # broker id -> its pod


def plan(params: RestartParams, world: RestartInput) -> list[StepSpec]:
    return plan_restart(params, world.snapshot, world.pod_names)


RESTART = Runbook(
    name=RUNBOOK,
    verb="restart",
    summary="Rolling restart, one broker at a time, each step approved.",
    description="Non-controller brokers first, the active controller last. Each approval request shows the "
    "partitions that restarting that broker would leave below min.insync.replicas. --dry-run shows the plan and "
    "changes nothing.",
    params=RestartParams,
    world=RestartInput,
    plan=plan,
    title=lambda params: "Rolling restart",
    refusal=lambda cluster, params: f"Cannot plan a restart of {cluster}",
    stored=lambda params: params.model_dump(mode="json"),
)
