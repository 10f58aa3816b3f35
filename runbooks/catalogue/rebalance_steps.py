"""Cruise Control as the engine of ``replace-broker`` and ``scale`` (``--engine cruise-control``): the
step kinds that drive a ``KafkaRebalance`` and the steps a plan builds from them.

A phase of moves (drain, fill, move back) becomes two steps: ``create-rebalance`` (no approval: a
proposal moves nothing) creates ``<cluster>-kco-<run id>-<label>`` with the mode and brokers, labelled
``strimzi.io/cluster`` and never with ``strimzi.io/rebalance-auto-approval``, and is done at
ProposalReady; ``run-rebalance`` shows the proposal's figures to the approver, approves it with
``strimzi.io/rebalance=approve`` and is done at Ready. ``stop-rebalance`` is the cleanup that runs
however the run ends: ``stop`` on any of the run's rebalances still computing or moving data.

The run leaves its KafkaRebalance resources in place when it ends (they record what Cruise Control
did); their names carry the run id.

Why the bot's planner is the default engine: it moves exactly the minimum (only the drained brokers'
replicas, only the new brokers' fair share) and moves a replaced broker's partitions back to exactly
their old replica lists. Cruise Control optimizes its goals and promises neither.
"""

from __future__ import annotations

from typing import Literal

from runbooks.engine.models import StepArgs, StepSpec
from runbooks.rules.reassignment import ids

Engine = Literal["bot", "cruise-control"]
ENGINES: tuple[Engine, ...] = ("bot", "cruise-control")
DEFAULT_ENGINE: Engine = "bot"
RebalanceMode = Literal["full", "add-brokers", "remove-brokers"]
STALE_AFTER_S = 600.0  # an older proposal is refreshed before it is approved: the cluster moved on
PROPOSAL_TIMEOUT_S = 1800.0  # Cruise Control needs its load model (a few metric windows) first
REBALANCE_TIMEOUT_S = 6 * 3600.0

WHY_BOT_DEFAULT = ("the bot's planner moves exactly the minimum and moves a replaced broker's partitions back to "
                   "exactly their old replica lists, which Cruise Control's goals do not promise")


NO_CRUISE_CONTROL = ("--engine cruise-control needs Cruise Control, but the Kafka resource has no spec.cruiseControl: "
                     "use --engine bot (the default), or add spec.cruiseControl to the Kafka resource first")


def rebalance_name(kafka: str, run_id: str, label: str) -> str:
    """The KafkaRebalance a run's step drives: named after the cluster, the run and the phase."""
    return f"{kafka}-kco-{run_id}-{label}"


class CreateRebalanceArgs(StepArgs):
    """Create the run's KafkaRebalance ``label`` (mode, brokers); done when its proposal is ready."""

    kind: Literal["create-rebalance"] = "create-rebalance"
    label: str
    mode: RebalanceMode
    brokers: tuple[int, ...] = ()


class RunRebalanceArgs(StepArgs):
    """Approve the run's KafkaRebalance ``label`` (a fresh proposal only); done when it is Ready."""

    kind: Literal["run-rebalance"] = "run-rebalance"
    label: str
    stale_after_s: float = STALE_AFTER_S


class StopRebalanceArgs(StepArgs):
    """Cleanup: ``stop`` on any of the run's KafkaRebalances still computing or moving data."""

    kind: Literal["stop-rebalance"] = "stop-rebalance"
    labels: tuple[str, ...]


def _described(mode: RebalanceMode, brokers: tuple[int, ...]) -> str:
    named = f"broker{'s' if len(brokers) > 1 else ''} {ids(brokers)}"
    if mode == "remove-brokers":
        return f"move every replica off {named}"
    if mode == "add-brokers":
        return f"move replicas onto {named}"
    return "balance the whole cluster"


def rebalance_steps(label: str, mode: RebalanceMode, brokers: tuple[int, ...], *, what: str, risk: str,
                    compensation: str) -> list[StepSpec]:
    """A phase through Cruise Control: the proposal, then its approved execution."""
    plan = _described(mode, brokers)
    return [
        StepSpec(id=f"{label}-proposal", title=f"{what}: ask Cruise Control for a proposal ({mode})",
                 args=CreateRebalanceArgs(label=label, mode=mode, brokers=brokers), needs_approval=False,
                 timeout_s=PROPOSAL_TIMEOUT_S, compensation="None needed: a proposal moves nothing.",
                 summary=f"A KafkaRebalance ({mode}) asks Cruise Control to {plan}; nothing moves until approved."),
        StepSpec(id=f"{label}-rebalance", title=f"{what}: execute Cruise Control's proposal",
                 args=RunRebalanceArgs(label=label), timeout_s=REBALANCE_TIMEOUT_S, interruptible=True,
                 compensation=compensation,
                 summary=f"Cruise Control will {plan}, with the movements and data shown (its proposal, not the "
                 f"bot's plan; a proposal older than {int(STALE_AFTER_S // 60)} min is refreshed first). At risk: "
                 f"{risk}"),
    ]


def stop_rebalance_step(labels: tuple[str, ...]) -> StepSpec:
    return StepSpec(id="stop-rebalances", title="Stop any Cruise Control rebalance of this run still running",
                    args=StopRebalanceArgs(labels=labels), needs_approval=False, cleanup=True, timeout_s=600.0,
                    compensation="None needed: a stopped rebalance leaves the partitions it moved where they are.")
