"""``runbooks.rules.gates.restart_gate``, one rule at a time: each case breaks exactly one rule on an
otherwise healthy cluster and must be refused naming it; the healthy cluster must pass."""

from __future__ import annotations

import pytest

from runbooks.rules.gates import restart_gate
from runbooks.rules.health import ClusterSnapshot, QuorumInfo
from tests.runbooks.builders import part, snapshot, voter

pytestmark = pytest.mark.timeout(5)

READY = {0: True, 1: True, 2: True}
QUORUM = QuorumInfo(leader_id=2, voters=(voter(0, 1000), voter(1, 1000), voter(2, 1000)))


def healthy(**changes: object) -> ClusterSnapshot:
    values: dict[str, object] = {"quorum": QUORUM}
    values.update(changes)
    parts = values.pop("parts", (part("orders", 0, leader=0, replicas=(0, 1, 2), isr=(0, 1, 2)),))
    return snapshot(*parts, **values)  # type: ignore[arg-type]


def test_a_healthy_cluster_lets_the_broker_restart() -> None:
    verdict = restart_gate(healthy(), 1, READY)
    assert verdict.ok and verdict.reason == "broker 1 can restart. At risk: none."


@pytest.mark.parametrize(("snap", "pods", "problem"), [
    (healthy(), {**READY, 1: False}, "pod of broker 1 is not Ready"),
    (healthy(), {0: True, 2: True}, "pod of broker 1 is not Ready"),
    (healthy(), {**READY, 2: False}, "other brokers not Ready: 2"),
    # the checks the restart gate gained from assess(): a broker Kafka does not know of at all...
    (healthy(brokers=(0, 1)), READY, "brokers missing: 2"),
    (healthy(fenced=(2,)), READY, "brokers fenced: 2"),
    # ...a partition under its min ISR (leaderless here: no URP rule can see it, RF 1)...
    (healthy(parts=(part("solo", 0, leader=None, replicas=(0,), isr=(0,)),)), READY,
     "1 partitions under min ISR (e.g. solo-0)"),
    # ...and a quorum whose majority is not caught up (broker 1 is not a voter, so canRollController passes).
    (healthy(quorum=QuorumInfo(leader_id=2, voters=(voter(0, None), voter(2, 1000), voter(3, None)))), READY,
     "only 1 of 3 controllers are caught up; 2 needed"),
    (healthy(parts=(part("orders", 0, leader=0, replicas=(0, 1, 2), isr=(0, 2)),)), READY,
     "1 under-replicated partitions (e.g. orders-0)"),
    (healthy(parts=(part("orders", 0, leader=0, replicas=(0, 1, 2), isr=(0, 1, 2), adding=(2,)),)), READY,
     "1 partition reassignments in flight"),
    (healthy(parts=(part("orders", 0, leader=0, replicas=(0, 1, 2, 3), isr=(0, 1, 2)),), min_isr={"orders": 3},
             brokers=(0, 1, 2, 3)), {**READY, 3: True},
     "restarting broker 1 is not safe: At risk: orders-0 (at min ISR 3: restarting broker 1 would block acks=all "
     "producers)."),
    (healthy(quorum=QuorumInfo(leader_id=2, voters=(voter(0, None), voter(1, 1000), voter(2, 1000)))), READY,
     "controller quorum: only 1 of the other 2 controllers are caught up; 2 needed"),
])
def test_each_rule_refuses_by_name(snap: ClusterSnapshot, pods: dict[int, bool], problem: str) -> None:
    verdict = restart_gate(snap, 1, pods)
    assert not verdict.ok
    assert problem in verdict.reason, verdict.reason


def test_the_partitions_at_risk_are_findings_even_when_the_restart_may_go() -> None:
    """A healthy cluster has nothing at risk; broker 1 in an ISR of exactly min ISR is shown as a finding."""
    assert restart_gate(healthy(), 1, READY).findings == ()
    at_min = healthy(parts=(part("orders", 0, leader=0, replicas=(0, 1, 2, 3), isr=(0, 1, 2)),),
                     min_isr={"orders": 3}, brokers=(0, 1, 2, 3))
    refused = restart_gate(at_min, 1, {**READY, 3: True})
    assert refused.findings == ("orders-0: at min ISR 3: restarting broker 1 would block acks=all producers",)
