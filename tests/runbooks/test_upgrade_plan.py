"""The KRaft upgrade plan read whole: every step's kind, arguments (the preconditions each patch is
written under), approval, timeout and the texts the approver reads; and the refusals that decide
whether there is anything to upgrade at all."""

from __future__ import annotations

from typing import Any

import pytest

from runbooks.rolls import FOLLOW_TIMEOUT_S, SETTLE_TIMEOUT_S, PlanRefused
from runbooks.upgrade import UpgradeParams, plan_upgrade

from .test_change_plans import brokers, kraft, zookeeper


def _version(value: str) -> dict[str, Any]:
    return {"path": ["version"], "value": value}


def _metadata(value: str) -> dict[str, Any]:
    return {"path": ["metadataVersion"], "value": value}


def _follow(broker: int) -> dict[str, Any]:
    return {"broker": broker, "pod": f"c-pool-{broker}", "uid": f"uid-{broker}", "expect": {"kafka_version": "4.3.1"},
            "may_skip_roll": False, "settle_generation": None}


def test_kraft_plan_steps_with_their_preconditions() -> None:
    """Each patch carries what it expects to find (so a change behind the plan's back is refused), the
    pin and the raise are settled without a roll, the roll is checked against the pods the plan saw."""
    steps = plan_upgrade(UpgradeParams(version="4.3.1"), kraft(spec_metadata_version="4.2-IV1"))
    assert [(s.id, s.kind, s.needs_approval, s.timeout_s, s.args) for s in steps] == [
        ("preflight", "cluster-check", False, 120.0, {"kafka_version": "4.2.2", "brokers": [0, 1, 2]}),
        ("pin-metadata", "patch-kafka", False, SETTLE_TIMEOUT_S,
         {"edits": [_metadata("4.2-IV1")], "expect": [_version("4.2.2")], "wait": "settled",
          "status": {"metadata_version": "4.2-IV1"}, "no_roll": True}),
        ("roll-version", "patch-kafka", True, 120.0,
         {"edits": [_version("4.3.1")], "expect": [_version("4.2.2"), _metadata("4.2-IV1")],
          "expect_pods": {"0": "uid-0", "1": "uid-1", "2": "uid-2"}, "wait": "none"}),
        ("roll-0", "follow-roll", False, FOLLOW_TIMEOUT_S, _follow(0)),
        ("roll-2", "follow-roll", False, FOLLOW_TIMEOUT_S, _follow(2)),
        ("roll-1", "follow-roll", False, FOLLOW_TIMEOUT_S, _follow(1)),
        ("roll-done", "await-operator", False, SETTLE_TIMEOUT_S, {"kafka_version": "4.3.1"}),
        ("raise-metadata", "patch-kafka", True, SETTLE_TIMEOUT_S,
         {"edits": [_metadata("4.3-IV0")], "expect": [_version("4.3.1")], "wait": "settled",
          "status": {"metadata_version": "4.3-IV0"}, "no_roll": True}),
        ("verify", "verify-upgrade", False, 120.0,
         {"kafka_version": "4.3.1", "metadata_version": "4.3-IV0", "brokers": [0, 1, 2]}),
    ]
    assert FOLLOW_TIMEOUT_S == SETTLE_TIMEOUT_S == 600.0


def test_kraft_plan_texts_say_what_each_step_does_and_how_to_undo_it() -> None:
    """Titles, the approver's summaries and the compensations (what undoing a step would mean)."""
    steps = {s.id: s for s in plan_upgrade(UpgradeParams(version="4.3.1"), kraft(spec_metadata_version="4.2-IV1"))}
    assert [s.title for s in steps.values()] == [
        "Pre-flight: Ready, healthy, every broker on 4.2.2",
        "Pin metadataVersion at the current 4.2-IV1",
        "Roll to Kafka 4.3.1: patch spec.kafka.version",
        "Broker 0: restarted on Kafka 4.3.1",
        "Broker 2: restarted on Kafka 4.3.1",
        "Broker 1 (active controller): restarted on Kafka 4.3.1",
        "Operator done: status.kafkaVersion 4.3.1, Ready",
        "Raise metadataVersion 4.2-IV1 -> 4.3-IV0 (no roll)",
        "Verify: Kafka 4.3.1, metadata 4.3-IV0, every broker, healthy",
    ]
    assert {i: s.compensation for i, s in steps.items() if s.compensation} == {
        "pin-metadata": "set spec.kafka.metadataVersion back to 4.2-IV1",
        "roll-version": "set spec.kafka.version back to 4.2.2 (another roll; possible while metadata is 4.2-IV1)",
    }
    assert steps["pin-metadata"].summary == (
        "Without the pin the operator raises the metadata version by itself right after the roll, and a downgrade "
        "is no longer possible.")
    assert steps["roll-version"].summary.startswith(
        "Sets spec.kafka.version 4.2.2 -> 4.3.1 (metadata stays 4.2-IV1). Strimzi then restarts every broker "
        "itself, one at a time, in the order 0, 2, 1.")
    assert steps["raise-metadata"].summary == (
        "The final approval: the operator applies 4.3-IV0 live through UpdateFeatures. After this the cluster "
        "cannot go back below Kafka 4.3.")
    assert steps["roll-1"].summary.startswith("3 of 3: the operator restarts pod c-pool-1;")
    # Unset in the spec: undoing the pin removes it again.
    unset = plan_upgrade(UpgradeParams(version="4.3.1"), kraft())
    assert unset[1].compensation == "set spec.kafka.metadataVersion back to unset"


def test_a_kraft_status_without_a_metadata_version_is_refused() -> None:
    """The pin needs the current metadata version; without it the plan is refused, saying so."""
    with pytest.raises(PlanRefused) as refused:
        plan_upgrade(UpgradeParams(version="4.3.1"), kraft(metadata_version=None))
    assert str(refused.value) == "the Kafka status reports no metadata version: cannot pin it before the roll"


@pytest.mark.parametrize(("world", "version", "message"), [
    (kraft(kafka_version="4.3.1", brokers=brokers("4.3.1"), metadata_version="4.3-IV0"), "4.3.1",
     "the cluster already runs Kafka 4.3.1 with metadata 4.3-IV0: nothing to upgrade"),
    (kraft(kafka_version="4.3.1", brokers=brokers("4.3.1"), metadata_version=None), "4.3.1",
     "the cluster already runs Kafka 4.3.1: nothing to upgrade"),
    (zookeeper(kafka_version="3.9.0", brokers=brokers("3.9.0")), "3.9.0",
     "the cluster already runs Kafka 3.9.0: nothing to upgrade"),
])
def test_nothing_to_upgrade_is_refused(world: Any, version: str, message: str) -> None:
    """Same version and (KRaft) the metadata at that version's level, or a ZooKeeper cluster on the
    version asked: refused, nothing planned."""
    with pytest.raises(PlanRefused) as refused:
        plan_upgrade(UpgradeParams(version=version), world)
    assert str(refused.value) == message
