"""What a rebalance card says, and the card's own record (where its message is, who pressed what).

One card per KafkaRebalance (per uid: a rebalance deleted and created again under the same name
gets a new card). The card is posted when the rebalance first needs a person
(``runbooks.rules.rebalance.wants_card``) and then follows the resource through every state it
reaches, until it is deleted. Pure: the text is a function of the resource, the record and ``now``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from runbooks.engine.models import ApprovalPolicy
from runbooks.rules.rebalance import (
    AUTO_APPROVAL_ANNOTATION,
    REBALANCE_ANNOTATION,
    STALE_PROPOSAL,
    KafkaRebalanceView,
    RebalanceAction,
    RebalanceProgress,
    RebalanceState,
    approvals_missing,
    offered_actions,
)

MAX_HISTORY = 10  # presses shown on the card; the audit of older ones is the message's edit history


class CardMessage(BaseModel):
    """Where a card is: a Slack channel and ts, or a console/log id (channel None)."""

    model_config = ConfigDict(frozen=True)

    channel: str | None = None
    id: str


class Press(BaseModel):
    model_config = ConfigDict(frozen=True)

    by: str
    action: RebalanceAction
    at: datetime
    # "set" (the annotation was written), "counted" (an approval short of N-of-M), or a refusal's code
    outcome: str


class RebalanceCard(BaseModel):
    """The card's record, kept in the store under compare-and-set, shared by every replica."""

    model_config = ConfigDict(frozen=True)

    cluster: str
    namespace: str
    name: str
    uid: str
    message: CardMessage | None = None
    shown_state: RebalanceState | None = None
    shown_fingerprint: str = ""  # a fingerprint of what the message shows: edited only when it changes
    proposal: str = ""  # which proposal ``approved_by`` counts for (the ProposalReady transition time)
    approved_by: tuple[str, ...] = ()
    presses: tuple[Press, ...] = ()
    refused: tuple[Press, ...] = ()  # the audit of refused presses: kept, not shown on the card

    @property
    def id(self) -> str:
        return f"{self.cluster}/{self.namespace}/{self.name}/{self.uid}"


def proposal_id(rebalance: KafkaRebalanceView) -> str:
    """Each new proposal (a refresh gives one) has its own ProposalReady transition."""
    if rebalance.state is not RebalanceState.PROPOSAL_READY:
        return ""
    return rebalance.state_since.isoformat() if rebalance.state_since else rebalance.resource_version


def approvals_for(card: RebalanceCard, rebalance: KafkaRebalanceView) -> tuple[str, ...]:
    """The approvals recorded for the proposal on show now; those of an older proposal count for nothing."""
    current = proposal_id(rebalance)
    return card.approved_by if current and card.proposal == current else ()


class CardButton(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: RebalanceAction
    label: str
    style: str = ""  # "primary" / "danger"


class RebalanceCardView(BaseModel):
    """The card as any front end renders it: a headline, lines, and the buttons."""

    model_config = ConfigDict(frozen=True)

    headline: str
    lines: tuple[str, ...]
    buttons: tuple[CardButton, ...] = ()
    state: RebalanceState | None = None  # the state the buttons were drawn for

    @property
    def text(self) -> str:
        return "\n".join((self.headline, *self.lines))


def minutes(delta: timedelta) -> str:
    whole = int(delta.total_seconds() // 60)
    if whole < 1:
        return "under 1 min"
    if whole < 120:
        return f"{whole} min"
    return f"{whole // 60} h {whole % 60:02d} min"


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "unknown"
    shown = f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:,.1f}"
    return f"{shown}{unit}"


def _summary_lines(rebalance: KafkaRebalanceView) -> list[str]:
    result = rebalance.optimization
    lines = [f"Proposal: {_number(result.replica_movements)} replica movements, "
             f"{_number(result.leader_movements)} leader movements, {_number(result.data_to_move_mb, ' MB')} to move"]
    if result.intra_broker_replica_movements:
        lines.append(f"Between disks of a broker: {result.intra_broker_replica_movements} replica movements")
    if result.balancedness_before is not None or result.balancedness_after is not None:
        lines.append(f"Balancedness: {_number(result.balancedness_before)} before → "
                     f"{_number(result.balancedness_after)} after (100 is perfectly balanced)")
    if result.excluded_topics:
        shown = ", ".join(result.excluded_topics[:5]) + (" …" if len(result.excluded_topics) > 5 else "")
        lines.append(f"Excluded topics: {shown}")
    return lines


def _state_lines(rebalance: KafkaRebalanceView, progress: RebalanceProgress | None, now: datetime) -> list[str]:
    state = rebalance.state
    if state is None or state is RebalanceState.NEW:
        return ["Waiting for the operator to ask Cruise Control for a proposal."]
    if state is RebalanceState.PENDING_PROPOSAL:
        return ["Cruise Control is computing a proposal."]
    if state is RebalanceState.PROPOSAL_READY:
        lines = _summary_lines(rebalance)
        age = rebalance.proposal_age(now)
        if age is not None:
            stale = age > STALE_PROPOSAL
            lines.append(f"Proposal age: {minutes(age)}" + (
                f" (older than {minutes(STALE_PROPOSAL)}: Refresh for a current proposal before approving)"
                if stale else ""))
        return lines
    if state is RebalanceState.REBALANCING:
        lines = _summary_lines(rebalance)
        if progress is None or progress.completed_percent is None:
            lines.append("Rebalancing: progress not reported yet.")
        else:
            eta = ("" if progress.eta_minutes is None
                   else f", about {minutes(timedelta(minutes=progress.eta_minutes))} left")
            lines.append(f"Rebalancing: {_number(progress.completed_percent)} % of the data moved{eta}.")
        return lines
    if state is RebalanceState.READY:
        return ["Ready: the rebalance finished.", *_summary_lines(rebalance)]
    if state is RebalanceState.STOPPED:
        return ["Stopped: Cruise Control finished the batch in flight and cancelled the rest; the cluster is "
                "left partly rebalanced. Refresh asks for a new proposal."]
    if state is RebalanceState.NOT_READY:
        why = ": ".join(p for p in (rebalance.reason, rebalance.message) if p) or "no reason given"
        return [f"NotReady: {why}. Refresh asks Cruise Control for a new proposal."]
    return ["Reconciliation is paused (strimzi.io/pause-reconciliation): the operator acts on nothing."]


def card_view(
    rebalance: KafkaRebalanceView | None, card: RebalanceCard, policy: ApprovalPolicy, now: datetime, *,
    progress: RebalanceProgress | None = None, mention: Callable[[str], str] = str,
) -> RebalanceCardView:
    """The card of ``card`` showing ``rebalance`` (None: the resource was deleted)."""
    name = f"{card.namespace}/{card.name}"
    if rebalance is None:
        return RebalanceCardView(headline=f"KafkaRebalance {name} on {card.cluster}: deleted",
                                 lines=("The resource was deleted; this card no longer follows it.",
                                        *_history(card, mention)))
    state = rebalance.state.value if rebalance.state else "no status yet"
    lines = [f"Mode: {rebalance.mode}" + (f" · brokers: {', '.join(str(b) for b in rebalance.brokers)}"
                                          if rebalance.brokers else "")]
    lines += _state_lines(rebalance, progress, now)
    if rebalance.auto_approved:
        lines.append(f"Auto-approved by the resource ({AUTO_APPROVAL_ANNOTATION}), not by the bot.")
    if rebalance.pending_action:
        lines.append(f"Requested: {REBALANCE_ANNOTATION}={rebalance.pending_action}, waiting for the operator.")
    approved = approvals_for(card, rebalance)
    if approved and rebalance.state is RebalanceState.PROPOSAL_READY:
        missing = approvals_missing(policy, approved)
        lines.append(f"Approvals: {len(set(approved))} of {policy.approvals_required} "
                     f"({', '.join(mention(a) for a in approved)})" + (f", {missing} more needed" if missing else ""))
    lines += _history(card, mention)
    actions = offered_actions(rebalance)
    if actions:
        approvers = [mention(a) for a in (*policy.approvers, *policy.approver_groups)]
        lines.append(f"Approvers: {', '.join(approvers) or 'none configured'}")
    styles = {RebalanceAction.APPROVE: "primary", RebalanceAction.STOP: "danger"}
    buttons = tuple(CardButton(action=a, label=a.label, style=styles.get(a, "")) for a in actions)
    return RebalanceCardView(headline=f"KafkaRebalance {name} on {card.cluster}: {state}", lines=tuple(lines),
                             buttons=buttons, state=rebalance.state)


def _history(card: RebalanceCard, mention: Callable[[str], str]) -> list[str]:
    lines = []
    for press in card.presses[-MAX_HISTORY:]:
        what = "approved (counted toward N-of-M)" if press.outcome == "counted" else f"pressed {press.action.label}"
        lines.append(f"{mention(press.by)} {what} at {press.at:%H:%M} UTC")
    return lines
