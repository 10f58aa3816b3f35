"""What the approver of a roll reads, and the roll's plan when Kafka did not answer: each broker whose
restart puts partitions at risk is named with them; without a snapshot the risk is said to be
unknown and the brokers go by id."""

from __future__ import annotations

import pytest

from runbooks.catalogue.step_args import RollExpectation, follow_steps
from runbooks.catalogue.upgrade import UpgradeInput, UpgradeParams, plan_upgrade
from runbooks.engine.models import PlanRefused
from runbooks.rules.rolls import BrokerPodState, risk_lines, roll_order, roll_summary

from .builders import part, snapshot
from .test_change_plans import brokers, kraft

PODS = [BrokerPodState(id=b, pod=f"p-{b}", uid=f"u-{b}") for b in (2, 0, 1)]
# orders-0 is at min ISR 2 on brokers 0 and 1 (2 is out of its ISR): restarting 0 or 1 blocks producers.
AT_RISK = snapshot(part("orders", 0, leader=0, replicas=(0, 1, 2), isr=(0, 1)), controller=2)


def test_risk_lines_name_each_broker_at_risk_and_its_partitions() -> None:
    assert risk_lines(AT_RISK, PODS) == (
        "At risk: broker 0: At risk: orders-0 (at min ISR 2: restarting broker 0 would block acks=all producers).; "
        "broker 1: At risk: orders-0 (at min ISR 2: restarting broker 1 would block acks=all producers).")


def test_without_a_snapshot_the_risk_is_unknown_and_brokers_go_by_id() -> None:
    """Kafka did not answer: no controller is known, so the order is by id, and the risk is unknown."""
    assert risk_lines(None, PODS) == "At risk: unknown (Kafka did not answer)."
    assert [b.id for b in roll_order(None, PODS)] == [0, 1, 2]
    steps = follow_steps("roll", PODS, None, what="rolled", expect=RollExpectation(), timeout_s=42.0)
    assert [(s.id, s.title, s.timeout_s) for s in steps] == [
        ("roll-0", "Broker 0: rolled", 42.0), ("roll-1", "Broker 1: rolled", 42.0),
        ("roll-2", "Broker 2: rolled", 42.0)]
    assert steps[0].summary == (
        "1 of 3: the operator restarts pod p-0; the run waits for a new pod, Ready, back in ISR and 0 URP, and "
        "pauses if it does not come back or the cluster is sick beyond this broker.")


def test_roll_summary_says_the_roll_is_approved_once() -> None:
    assert roll_summary(PODS, None, "Sets x.") == (
        "Sets x. Strimzi then restarts every broker itself, one at a time, in the order 0, 1, 2. Approving this "
        "approves the whole roll: the operator cannot be held between brokers, so each broker below is a health "
        "gate, not a separate approval; the run pauses at the first broker that does not come back. At risk: "
        "unknown (Kafka did not answer).")


@pytest.mark.parametrize(("world", "message"), [
    (kraft(ready=False), "the Kafka resource is not Ready (no reason given): an upgrade starts only from a Ready "
                         "cluster; `/kafka status` shows what is wrong"),
    (kraft(settled=False), "the operator has not reconciled the latest change to the Kafka resource yet; try again "
                           "once it is Ready at the current generation"),
    (kraft(brokers=(*brokers()[:2], BrokerPodState(id=2, pod="p", uid="u"))),
     "the brokers run 4.2.2, ? while the status says 4.2.2: a roll is unfinished; let the operator finish it first"),
    (kraft(kafka_version="4.3.0", brokers=brokers("4.3.0")),
     "4.2.2 is older than the running 4.3.0: this command only upgrades. A downgrade lowers the metadata version "
     "first and is a separate, manual procedure"),
    (kraft(snapshot=snapshot(part("orders", 0, leader=0, replicas=(0, 1, 2), isr=(0, 1)))),
     "the cluster is not healthy: 1 under-replicated partitions (e.g. orders-0). Fix that first: an upgrade "
     "restarts every broker"),
])
def test_upgrade_refusals_in_full(world: UpgradeInput, message: str) -> None:
    """Each refusal, word for word: what is wrong and what to do."""
    version = "4.2.2" if "older" in message else "4.3.1"
    with pytest.raises(PlanRefused) as refused:
        plan_upgrade(UpgradeParams(version=version), world)
    assert str(refused.value) == message
