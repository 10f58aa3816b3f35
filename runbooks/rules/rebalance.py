"""Cruise Control's ``KafkaRebalance`` as the bot judges it: the resource's states, which
``strimzi.io/rebalance`` value Strimzi acts on in which state, and who may press what on a
rebalance card. Pure: the adapter reads the resource, these rules decide, the use case writes.

Strimzi (``KafkaRebalanceState``, ``KafkaRebalanceAssemblyOperator``): a valid annotation is
removed by the operator once acted on; an invalid one is left in place and ignored. Left in place
it is a trap: a ``stop`` set on a ProposalReady rebalance would stop it the moment it starts
Rebalancing. So a card offers only the values valid in the state it shows, and a press is judged
again against the state the resource is in when it is pressed.

The bot never sets ``strimzi.io/rebalance-auto-approval``: every rebalance it executes was approved
by a person on the card. Rebalances that carry it are shown as approved by the resource.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from runbooks.engine.approvals import Refusal, RefusalCode, policy_approver
from runbooks.engine.models import Actor, ApprovalPolicy

REBALANCE_ANNOTATION = "strimzi.io/rebalance"
AUTO_APPROVAL_ANNOTATION = "strimzi.io/rebalance-auto-approval"
TEMPLATE_ANNOTATION = "strimzi.io/rebalance-template"
RUN_LABEL = "kafka-chatops.io/run"  # on the KafkaRebalance a run creates (--engine cruise-control): its run id
STALE_PROPOSAL = timedelta(minutes=15)  # older than this, the card suggests Refresh before Approve


class RebalanceState(StrEnum):
    """The type of the one condition a KafkaRebalance's status carries."""

    NEW = "New"
    PENDING_PROPOSAL = "PendingProposal"
    PROPOSAL_READY = "ProposalReady"
    REBALANCING = "Rebalancing"
    READY = "Ready"
    STOPPED = "Stopped"
    NOT_READY = "NotReady"
    RECONCILIATION_PAUSED = "ReconciliationPaused"


class RebalanceAction(StrEnum):
    """A ``strimzi.io/rebalance`` value, and the card button that sets it."""

    APPROVE = "approve"
    REFRESH = "refresh"
    STOP = "stop"

    @property
    def label(self) -> str:
        return self.value.capitalize()


# Strimzi's table: the values the operator acts on in each state (any other is ignored and left).
VALID_ACTIONS: dict[RebalanceState, tuple[RebalanceAction, ...]] = {
    RebalanceState.NEW: (),
    RebalanceState.PENDING_PROPOSAL: (RebalanceAction.STOP, RebalanceAction.REFRESH),
    RebalanceState.PROPOSAL_READY: (RebalanceAction.APPROVE, RebalanceAction.REFRESH),
    RebalanceState.REBALANCING: (RebalanceAction.STOP, RebalanceAction.REFRESH),
    RebalanceState.READY: (RebalanceAction.REFRESH,),
    RebalanceState.STOPPED: (RebalanceAction.REFRESH,),
    RebalanceState.NOT_READY: (RebalanceAction.REFRESH,),
    RebalanceState.RECONCILIATION_PAUSED: (),
}


class OptimizationSummary(BaseModel):
    """The review figures of ``status.optimizationResult`` (Cruise Control's proposal summary)."""

    model_config = ConfigDict(frozen=True)

    replica_movements: int | None = None  # numReplicaMovements
    leader_movements: int | None = None  # numLeaderMovements
    data_to_move_mb: float | None = None  # dataToMoveMB
    intra_broker_replica_movements: int | None = None  # numIntraBrokerReplicaMovements
    balancedness_before: float | None = None  # onDemandBalancednessScoreBefore
    balancedness_after: float | None = None  # onDemandBalancednessScoreAfter
    excluded_topics: tuple[str, ...] = ()

    @classmethod
    def from_status(cls, result: object) -> OptimizationSummary:
        """Read what is there; a field missing or of another type stays unknown (never invented)."""
        if not isinstance(result, dict):
            return cls()

        def number(key: str) -> float | None:
            value = result.get(key)
            return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

        def count(key: str) -> int | None:
            value = number(key)
            return None if value is None else int(value)

        topics = result.get("excludedTopics")
        return cls(
            replica_movements=count("numReplicaMovements"), leader_movements=count("numLeaderMovements"),
            data_to_move_mb=number("dataToMoveMB"),
            intra_broker_replica_movements=count("numIntraBrokerReplicaMovements"),
            balancedness_before=number("onDemandBalancednessScoreBefore"),
            balancedness_after=number("onDemandBalancednessScoreAfter"),
            excluded_topics=tuple(str(t) for t in topics) if isinstance(topics, list) else (),
        )


class RebalanceProgress(BaseModel):
    """The progress ConfigMap of a Rebalancing KafkaRebalance (Strimzi 0.47+)."""

    model_config = ConfigDict(frozen=True)

    completed_percent: float | None = None  # completedByteMovementPercentage
    eta_minutes: float | None = None  # estimatedTimeToCompletionInMinutes


class KafkaRebalanceView(BaseModel):
    """One KafkaRebalance as read from the API server."""

    model_config = ConfigDict(frozen=True)

    name: str
    namespace: str
    uid: str
    cluster_label: str  # metadata.labels["strimzi.io/cluster"]
    mode: str = "full"
    brokers: tuple[int, ...] = ()
    state: RebalanceState | None = None  # None: no status yet (the operator has not seen it)
    state_since: datetime | None = None  # the condition's lastTransitionTime
    reason: str = ""  # the condition's reason and message (NotReady says why)
    message: str = ""
    optimization: OptimizationSummary = Field(default_factory=OptimizationSummary)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int = 0
    resource_version: str = ""
    progress_config_map: str = ""  # status.progress.rebalanceProgressConfigMap
    run_id: str = ""  # metadata.labels[RUN_LABEL]: created by this run of the bot, approved on its run card

    @property
    def auto_approved(self) -> bool:
        return self.annotations.get(AUTO_APPROVAL_ANNOTATION, "").strip().lower() == "true"

    @property
    def template(self) -> bool:
        return self.annotations.get(TEMPLATE_ANNOTATION, "").strip().lower() == "true"

    @property
    def pending_action(self) -> str:
        """A ``strimzi.io/rebalance`` value the operator has not acted on (yet, or ever)."""
        return self.annotations.get(REBALANCE_ANNOTATION, "")

    def proposal_age(self, now: datetime) -> timedelta | None:
        if self.state is not RebalanceState.PROPOSAL_READY or self.state_since is None:
            return None
        return max(timedelta(0), now - self.state_since)


def wants_card(rebalance: KafkaRebalanceView) -> bool:
    """Whether a rebalance without a card gets one: a proposal waiting for approval, or one the
    resource approved itself and that is moving data now (so people see it, and can stop it)."""
    if rebalance.template or rebalance.run_id:
        return False  # a run's own is approved on the run's card, under the run's approvals
    if rebalance.state is RebalanceState.PROPOSAL_READY:
        return True
    return rebalance.auto_approved and rebalance.state is RebalanceState.REBALANCING


def offered_actions(rebalance: KafkaRebalanceView) -> tuple[RebalanceAction, ...]:
    """The buttons a card shows: the values valid now, minus Approve where the resource approves
    itself, and none while an earlier press waits for the operator."""
    if rebalance.state is None or rebalance.pending_action:
        return ()
    return tuple(a for a in VALID_ACTIONS[rebalance.state]
                 if not (a is RebalanceAction.APPROVE and rebalance.auto_approved))


def check_press(
    rebalance: KafkaRebalanceView, action: RebalanceAction, actor: Actor, policy: ApprovalPolicy, *,
    cluster: str, shown: RebalanceState, approved_by: tuple[str, ...] = (),
) -> Refusal | None:
    """Every check a press must pass before anything is written, in the order a person can act on.

    ``shown`` is the state the card showed when the button was drawn: a press on a card whose
    resource has moved on is refused, never applied to the new state. Nobody requested a
    rebalance through the bot, so four-eyes has no requester to exclude: any approver of the cluster
    may press, and Approve needs ``approvals_required`` distinct approvers (``approved_by``: those
    recorded for this proposal so far)."""
    if not policy_approver(policy, actor):
        return Refusal(code=RefusalCode.NOT_APPROVER,
                       message=f"{actor.id} is not an approver for cluster {cluster}: nothing was changed.")
    name = f"{rebalance.namespace}/{rebalance.name}"
    if rebalance.state is not shown:
        now = rebalance.state.value if rebalance.state is not None else "without a status"
        return Refusal(code=RefusalCode.STALE,
                       message=f"This card is stale: KafkaRebalance {name} is now {now}, not {shown.value} as "
                               f"shown. Nothing was changed; use the updated card.")
    if rebalance.pending_action:
        return Refusal(code=RefusalCode.STALE,
                       message=f"KafkaRebalance {name} already carries {REBALANCE_ANNOTATION}="
                               f"{rebalance.pending_action}, which the operator has not acted on yet. Nothing "
                               f"was changed; wait for it (or remove the annotation by hand if it is wrong).")
    if action not in VALID_ACTIONS[shown]:
        valid = ", ".join(a.label for a in VALID_ACTIONS[shown]) or "none"
        return Refusal(code=RefusalCode.NOT_ALLOWED,
                       message=f"{action.label} is not valid for a {shown.value} KafkaRebalance (valid: {valid}). "
                               f"Nothing was changed.")
    if action is RebalanceAction.APPROVE:
        if rebalance.auto_approved:
            return Refusal(code=RefusalCode.NOT_ALLOWED,
                           message=f"KafkaRebalance {name} approves itself ({AUTO_APPROVAL_ANNOTATION}); "
                                   f"the bot does not approve it. Nothing was changed.")
        if actor.id in approved_by:
            return Refusal(code=RefusalCode.ALREADY_APPROVED, message="You already approved this proposal.")
    return None


def approvals_missing(policy: ApprovalPolicy, approved_by: tuple[str, ...]) -> int:
    """How many more distinct approvers a proposal needs before the bot sets ``approve``."""
    return max(0, policy.approvals_required - len(set(approved_by)))
