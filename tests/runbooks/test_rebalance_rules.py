"""The rebalance card rules: which ``strimzi.io/rebalance`` value a press may set in which state
(Strimzi's table), who may press, N-of-M on Approve, what a card offers, and what it says, word for word."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runbooks.engine.approvals import RefusalCode
from runbooks.engine.models import Actor, ApprovalPolicy
from runbooks.rules.rebalance import (
    VALID_ACTIONS,
    KafkaRebalanceView,
    OptimizationSummary,
    RebalanceAction,
    RebalanceProgress,
    RebalanceState,
    approvals_missing,
    check_press,
    offered_actions,
    wants_card,
)
from runbooks.rules.rebalance_card import Press, RebalanceCard, card_view

pytestmark = pytest.mark.timeout(5)

NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
POLICY = ApprovalPolicy(approvers=("U0APP", "U0TWO"), approver_groups=("S0OPS",), four_eyes=True)
APPROVER = Actor(id="U0APP")
RESULT = {"numReplicaMovements": 42, "numLeaderMovements": 7, "dataToMoveMB": 1234,
          "onDemandBalancednessScoreBefore": 71.25, "onDemandBalancednessScoreAfter": 94.5,
          "numIntraBrokerReplicaMovements": 0, "excludedTopics": []}
A, R, S = RebalanceAction.APPROVE, RebalanceAction.REFRESH, RebalanceAction.STOP
# Strimzi's KafkaRebalanceState: the values the operator acts on in each state.
STRIMZI_TABLE = {
    RebalanceState.NEW: set(), RebalanceState.PENDING_PROPOSAL: {S, R}, RebalanceState.PROPOSAL_READY: {A, R},
    RebalanceState.REBALANCING: {S, R}, RebalanceState.READY: {R}, RebalanceState.STOPPED: {R},
    RebalanceState.NOT_READY: {R}, RebalanceState.RECONCILIATION_PAUSED: set(),
}


def rebalance(state: RebalanceState | None = RebalanceState.PROPOSAL_READY, *, since: timedelta = timedelta(minutes=3),
              annotations: dict[str, str] | None = None, **extra: object) -> KafkaRebalanceView:
    fields: dict[str, object] = {"optimization": OptimizationSummary.from_status(RESULT), **extra}
    return KafkaRebalanceView(
        name="drain-3", namespace="kafka", uid="u-1", cluster_label="east", mode="remove-brokers", brokers=(3, 4),
        state=state, state_since=NOW - since, annotations=annotations or {}, resource_version="7",
        **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("state", list(RebalanceState))
@pytest.mark.parametrize("action", list(RebalanceAction))
def test_a_press_is_allowed_exactly_where_strimzi_acts_on_the_value(state: RebalanceState,
                                                                    action: RebalanceAction) -> None:
    """Every state x value: valid ones pass, the rest are refused naming the valid ones (an invalid
    value left on the resource would be acted on later, in another state)."""
    assert set(VALID_ACTIONS[state]) == STRIMZI_TABLE[state]
    refusal = check_press(rebalance(state), action, APPROVER, POLICY, cluster="east", shown=state)
    if action in STRIMZI_TABLE[state]:
        assert refusal is None
    else:
        assert refusal is not None and refusal.code is RefusalCode.NOT_ALLOWED
        valid = ", ".join(a.label for a in VALID_ACTIONS[state]) or "none"
        assert refusal.message == (f"{action.label} is not valid for a {state.value} KafkaRebalance (valid: {valid}). "
                                   "Nothing was changed.")


def test_an_outsider_is_refused_first_and_a_group_member_may_press() -> None:
    outsider = check_press(rebalance(), A, Actor(id="U0OUT"), POLICY, cluster="east",
                           shown=RebalanceState.PROPOSAL_READY)
    assert outsider is not None and outsider.code is RefusalCode.NOT_APPROVER
    assert outsider.message == "U0OUT is not an approver for cluster east: nothing was changed."
    member = Actor(id="U0GRP", groups=("S0OPS",))
    assert check_press(rebalance(), A, member, POLICY, cluster="east", shown=RebalanceState.PROPOSAL_READY) is None


def test_a_press_on_a_card_whose_resource_moved_on_is_refused() -> None:
    """The card showed ProposalReady; the resource is Rebalancing now: Approve is refused, not applied."""
    refusal = check_press(rebalance(RebalanceState.REBALANCING), A, APPROVER, POLICY, cluster="east",
                          shown=RebalanceState.PROPOSAL_READY)
    assert refusal is not None and refusal.code is RefusalCode.STALE
    assert refusal.message == ("This card is stale: KafkaRebalance kafka/drain-3 is now Rebalancing, not "
                               "ProposalReady as shown. Nothing was changed; use the updated card.")


def test_a_pending_annotation_blocks_a_second_press() -> None:
    refusal = check_press(rebalance(annotations={"strimzi.io/rebalance": "approve"}), R, APPROVER, POLICY,
                          cluster="east", shown=RebalanceState.PROPOSAL_READY)
    assert refusal is not None and refusal.code is RefusalCode.STALE
    assert "already carries strimzi.io/rebalance=approve" in refusal.message


def test_auto_approved_rebalances_are_never_approved_by_the_bot() -> None:
    auto = rebalance(annotations={"strimzi.io/rebalance-auto-approval": "true"})
    assert offered_actions(auto) == (R,)
    refusal = check_press(auto, A, APPROVER, POLICY, cluster="east", shown=RebalanceState.PROPOSAL_READY)
    assert refusal is not None and refusal.code is RefusalCode.NOT_ALLOWED
    assert "approves itself (strimzi.io/rebalance-auto-approval)" in refusal.message


def test_n_of_m_counts_distinct_approvers_and_refuses_a_second_approval_by_the_same_person() -> None:
    two = POLICY.model_copy(update={"approvals_required": 2})
    assert approvals_missing(two, ()) == 2
    assert approvals_missing(two, ("U0APP",)) == 1
    assert approvals_missing(two, ("U0APP", "U0TWO")) == 0
    again = check_press(rebalance(), A, APPROVER, two, cluster="east", shown=RebalanceState.PROPOSAL_READY,
                        approved_by=("U0APP",))
    assert again is not None and again.code is RefusalCode.ALREADY_APPROVED


def test_which_rebalances_get_a_card() -> None:
    assert wants_card(rebalance())
    assert not wants_card(rebalance(RebalanceState.PENDING_PROPOSAL))
    assert not wants_card(rebalance(RebalanceState.REBALANCING))
    assert wants_card(rebalance(RebalanceState.REBALANCING, annotations={"strimzi.io/rebalance-auto-approval": "true"}))
    assert not wants_card(rebalance(annotations={"strimzi.io/rebalance-template": "true"}))


def card(**extra: object) -> RebalanceCard:
    return RebalanceCard(cluster="east", namespace="kafka", name="drain-3", uid="u-1", **extra)  # type: ignore[arg-type]


def test_the_proposal_card_word_for_word() -> None:
    view = card_view(rebalance(), card(), POLICY, NOW)
    assert view.headline == "KafkaRebalance kafka/drain-3 on east: ProposalReady"
    assert view.lines == (
        "Mode: remove-brokers · brokers: 3, 4",
        "Proposal: 42 replica movements, 7 leader movements, 1,234 MB to move",
        "Balancedness: 71.2 before → 94.5 after (100 is perfectly balanced)",
        "Proposal age: 3 min",
        "Approvers: U0APP, U0TWO, S0OPS",
    )
    assert [(b.action, b.style) for b in view.buttons] == [(A, "primary"), (R, "")]


def test_an_old_proposal_suggests_refresh() -> None:
    view = card_view(rebalance(since=timedelta(minutes=22)), card(), POLICY, NOW)
    assert ("Proposal age: 22 min (older than 15 min: Refresh for a current proposal before approving)"
            in view.lines)


def test_the_card_while_rebalancing_and_after_presses() -> None:
    presses = (Press(by="U0APP", action=A, at=NOW, outcome="set"),)
    view = card_view(rebalance(RebalanceState.REBALANCING), card(presses=presses), POLICY, NOW,
                     progress=RebalanceProgress(completed_percent=37.5, eta_minutes=12), mention=lambda u: f"@{u}")
    assert view.lines[-3:] == ("Rebalancing: 37.5 % of the data moved, about 12 min left.",
                               "@U0APP pressed Approve at 04:00 UTC",
                               "Approvers: @U0APP, @U0TWO, @S0OPS")
    assert [b.action for b in view.buttons] == [S, R]


def test_the_end_states_and_the_auto_approval_line() -> None:
    ready = card_view(rebalance(RebalanceState.READY), card(), POLICY, NOW)
    assert ready.lines[1] == "Ready: the rebalance finished."
    not_ready = card_view(rebalance(RebalanceState.NOT_READY, reason="CruiseControlRestException",
                                    message="NotEnoughValidWindows"), card(), POLICY, NOW)
    assert not_ready.lines[1] == ("NotReady: CruiseControlRestException: NotEnoughValidWindows. Refresh asks Cruise "
                                  "Control for a new proposal.")
    auto = card_view(rebalance(RebalanceState.REBALANCING, annotations={"strimzi.io/rebalance-auto-approval": "true"}),
                     card(), POLICY, NOW)
    assert "Auto-approved by the resource (strimzi.io/rebalance-auto-approval), not by the bot." in auto.lines
    assert A not in [b.action for b in auto.buttons]
    gone = card_view(None, card(), POLICY, NOW)
    assert gone.headline == "KafkaRebalance kafka/drain-3 on east: deleted" and not gone.buttons


def test_optimization_result_fields_missing_or_malformed_stay_unknown() -> None:
    summary = OptimizationSummary.from_status({"numReplicaMovements": "many", "dataToMoveMB": True})
    assert summary.replica_movements is None and summary.data_to_move_mb is None
    view = card_view(rebalance(optimization=summary), card(), POLICY, NOW)
    assert view.lines[1] == "Proposal: unknown replica movements, unknown leader movements, unknown to move"


def test_a_press_on_a_resource_that_lost_its_status_or_by_a_second_approval_is_refused_saying_so() -> None:
    """A resource without a status is not what the card showed; an approver who already approved this
    proposal cannot count twice towards N-of-M."""
    gone = check_press(rebalance(None), A, APPROVER, POLICY, cluster="east", shown=RebalanceState.PROPOSAL_READY)
    assert gone is not None and gone.message == (
        "This card is stale: KafkaRebalance kafka/drain-3 is now without a status, not ProposalReady as shown. "
        "Nothing was changed; use the updated card.")
    twice = check_press(rebalance(), A, APPROVER, POLICY, cluster="east", shown=RebalanceState.PROPOSAL_READY,
                        approved_by=(APPROVER.id,))
    assert twice is not None and twice.code is RefusalCode.ALREADY_APPROVED
    assert twice.message == "You already approved this proposal."
