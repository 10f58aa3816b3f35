"""The rolling-restart plan, read whole: what the approver is shown and what the worker runs.

The plan is the contract between the runbook and its executors (the step kinds and arguments), and
its titles and summaries are what an approver reads before clicking: both are checked exactly.
"""

from __future__ import annotations

import pytest

from runbooks.catalogue.restart import RESTART_TIMEOUT_S, RestartParams, plan_restart
from runbooks.engine.models import PlanRefused
from runbooks.rules.health import QuorumInfo

from .builders import part, snapshot, voter

PODS = {0: "prod-kafka-0", 1: "prod-kafka-1", 2: "prod-kafka-2"}
# Broker 2 is the active controller (quorum leader); "orders-0" sits at min ISR 2 on brokers 0 and 1,
# so restarting either of those blocks acks=all producers; broker 2 is out of its ISR already.
SNAP = snapshot(part("orders", 0, leader=0, replicas=(0, 1, 2), isr=(0, 1)),
                part("orders", 1, leader=2, replicas=(0, 1, 2), isr=(0, 1, 2)),
                quorum=QuorumInfo(leader_id=2, voters=(voter(2, 1),)), default_min_isr=2)
AT_RISK_1 = "At risk: orders-0 (at min ISR 2: restarting broker 1 would block acks=all producers)."


def test_the_plan_is_preflight_one_restart_per_broker_controller_last_then_leader_election() -> None:
    """Every field of every step: ids, kinds, arguments, approval, skippability, timeouts and texts."""
    steps = plan_restart(RestartParams(), SNAP, PODS)
    assert [s.model_dump() for s in steps] == [
        {"id": "preflight", "title": "Pre-flight: Kafka Ready, 0 URP, 0 offline, no reassignment",
         "args": {"kind": "preflight", "throttled_moves": False}, "needs_approval": False,
         "approvals_required": None, "skippable": False, "timeout_s": 120.0, "compensation": None, "cleanup": False,
         "interruptible": False, "summary": ""},
        {"id": "restart-0", "title": "Restart broker 0",
         "args": {"kind": "restart-broker", "broker": 0, "pod": "prod-kafka-0"},
         "needs_approval": True, "approvals_required": None, "skippable": False, "timeout_s": RESTART_TIMEOUT_S,
         "compensation": None, "cleanup": False, "interruptible": False,
         "summary": "Restart pod prod-kafka-0 through Strimzi's manual rolling update. At risk: orders-0 (at min "
                    "ISR 2: restarting broker 0 would block acks=all producers)."},
        {"id": "restart-1", "title": "Restart broker 1",
         "args": {"kind": "restart-broker", "broker": 1, "pod": "prod-kafka-1"},
         "needs_approval": True, "approvals_required": None, "skippable": False, "timeout_s": RESTART_TIMEOUT_S,
         "compensation": None, "cleanup": False, "interruptible": False,
         "summary": f"Restart pod prod-kafka-1 through Strimzi's manual rolling update. {AT_RISK_1}"},
        {"id": "restart-2", "title": "Restart broker 2 (active controller)",
         "args": {"kind": "restart-broker", "broker": 2, "pod": "prod-kafka-2"},
         "needs_approval": True, "approvals_required": None, "skippable": False, "timeout_s": RESTART_TIMEOUT_S,
         "compensation": None, "cleanup": False, "interruptible": False,
         "summary": "Restart pod prod-kafka-2 through Strimzi's manual rolling update. At risk: none."},
        {"id": "elect-leaders", "title": "Preferred leader election", "args": {"kind": "elect-leaders"},
         "needs_approval": True, "approvals_required": None, "skippable": True, "timeout_s": 120.0,
         "compensation": None, "cleanup": False, "interruptible": False,
         "summary": "Move leadership back to the preferred replicas, so load is even again."},
    ]
    assert RESTART_TIMEOUT_S == 900.0


def test_without_leader_election_the_plan_ends_with_the_last_restart() -> None:
    """elect_leaders=False leaves out the election step; chosen brokers only, still controller last."""
    steps = plan_restart(RestartParams(brokers=(2, 0), elect_leaders=False), SNAP, PODS)
    assert [s.id for s in steps] == ["preflight", "restart-0", "restart-2"]


@pytest.mark.parametrize(("brokers", "message"), [
    ((7,), "no broker 7 in this cluster; its brokers are 0, 1, 2"),
    ((1, 9, 7), "no broker 7, 9 in this cluster; its brokers are 0, 1, 2"),
])
def test_an_unknown_broker_is_refused_naming_the_valid_ones(brokers: tuple[int, ...], message: str) -> None:
    """A broker id the cluster does not have: refused (nothing planned), naming the unknown ids and the
    cluster's brokers."""
    with pytest.raises(PlanRefused) as refused:
        plan_restart(RestartParams(brokers=brokers), SNAP, PODS)
    assert str(refused.value) == message
