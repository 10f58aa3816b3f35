"""The safety rules of the pure layer, each held by a direct test (issue 12 §5).

- the restart plan (and every roll the bot follows) puts the active controller last, whatever order
  the brokers were given in;
- the under-replication correction for partitions being reassigned: RF = |replicas| - |adding|, so a
  replica being added is not missing, a replica being removed still is;
- an approval is judged by the nonce of the button that was clicked, never the current one: a stale
  nonce is refused even while another request for the same step is current;
- an approval at exactly the deadline is refused (fail closed), one just before it is accepted.

Each is written against public functions (``plan_restart``, ``follow_steps``, ``under_replicated``,
``assess``, ``decide``), so the test outlives a reshuffle of the modules behind them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbooks.catalogue.restart import RestartParams, plan_restart
from runbooks.catalogue.step_args import RollExpectation, follow_steps
from runbooks.engine.approvals import RefusalCode
from runbooks.engine.events import Retry, Tick
from runbooks.engine.models import RunState
from runbooks.rules.health import ClusterSnapshot, QuorumInfo, assess, preflight, under_replicated
from runbooks.rules.rolls import BrokerPodState, roll_order
from tests.runbooks.builders import args_of

from .builders import APPROVER, APPROVER_2, GROUP_MEMBER, part, policy, snapshot, started, voter

# -- the active controller restarts last ----------------------------------------------------------

# A cluster of up to 8 brokers with arbitrary ids, the brokers chosen for the restart in any order,
# and an active controller that is one of them, another broker, or unknown; reported through the
# KRaft quorum (the leader wins over the controller id) or only through the controller id.
broker_ids = st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=8, unique=True)


@st.composite
def restart_cases(draw: st.DrawFn) -> tuple[list[int], list[int], int | None, bool]:
    cluster = draw(broker_ids)
    chosen = draw(st.permutations(cluster).flatmap(
        lambda order: st.integers(min_value=1, max_value=len(order)).map(lambda n: list(order[:n]))))
    controller = draw(st.one_of(st.none(), st.sampled_from(cluster), st.integers(min_value=201, max_value=300)))
    via_quorum = draw(st.booleans())
    return cluster, chosen, controller, via_quorum


def _controller_snapshot(cluster: list[int], controller: int | None, via_quorum: bool) -> ClusterSnapshot:
    if via_quorum and controller is not None:
        # The quorum leader is the active controller; a stale controller id must not win over it.
        stale = next((b for b in cluster if b != controller), None)
        return snapshot(brokers=tuple(cluster), controller=stale,
                        quorum=QuorumInfo(leader_id=controller, voters=(voter(controller, 1),)))
    return snapshot(brokers=tuple(cluster), controller=controller)


@settings(max_examples=200, deadline=None)
@given(restart_cases())
def test_restart_plan_puts_the_active_controller_last_whatever_the_order(
        case: tuple[list[int], list[int], int | None, bool]) -> None:
    """For any broker ids, any order they are asked in and any active controller: every chosen broker is
    restarted exactly once, the others in ascending order, and the active controller (when chosen) last."""
    cluster, chosen, controller, via_quorum = case
    snap = _controller_snapshot(cluster, controller, via_quorum)
    pods = {b: f"prod-kafka-{b}" for b in cluster}
    steps = plan_restart(RestartParams(brokers=tuple(chosen)), snap, pods)
    restarts = [int(args_of(s)["broker"]) for s in steps if s.kind == "restart-broker"]
    others = sorted(b for b in chosen if b != controller)
    assert restarts == others + ([controller] if controller in chosen else [])
    titled = [s.title for s in steps if "(active controller)" in s.title]
    assert titled == ([f"Restart broker {controller} (active controller)"] if controller in chosen else [])


@settings(max_examples=200, deadline=None)
@given(restart_cases())
def test_followed_rolls_put_the_active_controller_last_whatever_the_order(
        case: tuple[list[int], list[int], int | None, bool]) -> None:
    """The upgrade and config runbooks follow Strimzi's roll in the same order: the active controller last."""
    cluster, chosen, controller, via_quorum = case
    snap = _controller_snapshot(cluster, controller, via_quorum)
    brokers = [BrokerPodState(id=b, pod=f"prod-kafka-{b}", uid=f"uid-{b}") for b in chosen]
    expected = sorted(b for b in chosen if b != controller) + ([controller] if controller in chosen else [])
    assert [b.id for b in roll_order(snap, brokers)] == expected
    steps = follow_steps("roll", brokers, snap, what="restarted", expect=RollExpectation())
    assert [int(args_of(s)["broker"]) for s in steps] == expected


def test_restart_of_every_broker_puts_the_controller_last_when_none_are_named() -> None:
    """Without a broker list the plan restarts every broker of the cluster, still the controller last."""
    snap = snapshot(brokers=(5, 3, 9), quorum=QuorumInfo(leader_id=3, voters=(voter(3, 1),)), controller=9)
    steps = plan_restart(RestartParams(), snap, {9: "p9", 3: "p3", 5: "p5"})
    assert [args_of(s)["broker"] for s in steps if s.kind == "restart-broker"] == [5, 9, 3]


# -- under-replication while partitions are reassigned --------------------------------------------

# replicas (0, 1, 2, 3) during a move: adding-only (3 joins), removing-only (3 leaves), both (3 joins,
# 0 leaves). RF = |replicas| - |adding|: a replica still being added is not missing from the ISR; a
# replica being removed still counts until it is gone.
URP_CASES = [
    ("adding only, new replica catching up", (3,), (), (0, 1, 2), False),
    ("adding only, every replica in ISR", (3,), (), (0, 1, 2, 3), False),
    # Kafka counts, it does not match members: the new replica in the ISR makes up for an old one out.
    ("adding only, the new replica in place of an existing one", (3,), (), (0, 1, 3), False),
    ("adding only, an existing replica and the new one missing", (3,), (), (0, 1), True),
    ("removing only, every replica in ISR", (), (3,), (0, 1, 2, 3), False),
    ("removing only, the leaving replica missing", (), (3,), (0, 1, 2), True),
    ("removing only, a staying replica missing", (), (3,), (0, 1, 3), True),
    ("both, new replica catching up", (3,), (0,), (0, 1, 2), False),
    ("both, leaving replica missing, new one in", (3,), (0,), (1, 2, 3), False),
    ("both, leaving and new replica missing", (3,), (0,), (1, 2), True),
    ("both, a staying and the leaving replica missing", (3,), (0,), (1, 3), True),
]


@pytest.mark.parametrize(("name", "adding", "removing", "isr", "urp"), URP_CASES, ids=[c[0] for c in URP_CASES])
def test_under_replicated_corrects_for_reassignment(
        name: str, adding: tuple[int, ...], removing: tuple[int, ...], isr: tuple[int, ...], urp: bool) -> None:
    """A moving partition is under-replicated iff its ISR is smaller than |replicas| - |adding| (a count,
    as kafka-topics --under-replicated-partitions does); the go/no-go report and pre-flight agree."""
    moving = part("orders", 0, leader=1, replicas=(0, 1, 2, 3), isr=isr, adding=adding, removing=removing)
    snap = snapshot(moving, brokers=(0, 1, 2, 3), default_min_isr=1)
    assert [p.name for p in under_replicated(snap)] == (["orders-0"] if urp else [])
    report = assess(snap, expected_brokers=(0, 1, 2, 3))
    assert report.under_replicated == (1 if urp else 0)
    assert report.reassigning == 1  # a move in flight is itself a reason not to roll
    assert any("under-replicated" in p for p in report.problems) is urp
    assert any("under-replicated" in p for p in preflight(snap, kafka_ready=True).problems) is urp


def test_partition_not_moving_is_under_replicated_with_one_replica_out() -> None:
    """Without a move, RF is the replica count: one replica out of the ISR is under-replicated."""
    assert under_replicated(snapshot(part("orders", 0, leader=0, replicas=(0, 1, 2), isr=(0, 1)))) != []
    assert under_replicated(snapshot(part("orders", 0, leader=0, replicas=(0, 1, 2), isr=(0, 1, 2)))) == []


# -- the nonce of the clicked button --------------------------------------------------------------

def test_a_stale_nonce_of_the_same_step_is_refused_while_a_new_request_is_current() -> None:
    """2-of-M: the first request expires, a Retry asks again with a new nonce. A click on the old card
    (its nonce) is refused as stale although the same step is waiting now; the new card's nonce is
    accepted, and the recorded approval carries the nonce of the button clicked."""
    driver = started(pol=policy(approvals_required=2))
    assert driver.run.approval is not None
    old_nonce = driver.run.approval.nonce
    driver.clock.advance(601)
    driver.send(Tick())
    driver.send(Retry(actor=APPROVER_2))
    request = driver.run.approval
    assert request is not None and request.step_id == "b0" and request.nonce != old_nonce

    stale = driver.approve(APPROVER, nonce=old_nonce)
    assert stale.refusal is not None and stale.refusal.code is RefusalCode.STALE
    assert "stale" in stale.refusal.message
    assert driver.run.approval is not None and driver.run.approval.approvals == ()

    fresh = driver.approve(APPROVER, nonce=request.nonce)
    assert fresh.refusal is None
    assert driver.run.approval is not None
    assert [(a.by, a.nonce) for a in driver.run.approval.approvals] == [(APPROVER.id, request.nonce)]


def test_a_nonce_from_another_step_is_refused() -> None:
    """The first step's button, clicked again once the second step waits, does not approve the second
    step even when it names it: the nonce is the second request's only."""
    driver = started()
    assert driver.run.approval is not None
    first = driver.run.approval.nonce
    driver.approve(APPROVER)
    driver.finish_step()
    assert driver.run.approval is not None and driver.run.approval.step_id == "b1"
    refused = driver.approve(GROUP_MEMBER, step_id="b1", nonce=first)
    assert refused.refusal is not None and refused.refusal.code is RefusalCode.STALE
    assert driver.run.state is RunState.AWAITING_APPROVAL


# -- the approval deadline ------------------------------------------------------------------------

def test_an_approval_at_exactly_the_deadline_is_refused() -> None:
    """Fail closed: a click at expires_at (before the clock's Tick) approves nothing and says it expired."""
    driver = started()
    assert driver.run.approval is not None
    driver.clock.now = driver.run.approval.expires_at
    decision = driver.approve(APPROVER)
    assert decision.refusal is not None and decision.refusal.code is RefusalCode.STALE
    assert "expired" in decision.refusal.message
    assert driver.run.state is RunState.AWAITING_APPROVAL


def test_an_approval_just_before_the_deadline_is_accepted() -> None:
    """One microsecond before expires_at the approval still counts and the step runs."""
    driver = started()
    assert driver.run.approval is not None
    driver.clock.now = driver.run.approval.expires_at - timedelta(microseconds=1)
    decision = driver.approve(APPROVER)
    assert decision.refusal is None
    assert driver.run.state is RunState.RUNNING


def test_the_deadline_is_the_policy_timeout_after_the_request() -> None:
    """expires_at is requested_at + the policy's approval timeout, not more."""
    driver = started(pol=policy(approval_timeout_s=90.0))
    request = driver.run.approval
    assert request is not None
    assert request.expires_at - request.requested_at == timedelta(seconds=90)
