"""The KRaft upgrade plan read whole: every step's kind, arguments (the preconditions each patch is
written under), approval, timeout and the texts the approver reads; and the refusals that decide
whether there is anything to upgrade at all."""

from __future__ import annotations

from typing import Any

import pytest

from runbooks.catalogue.steps import parse_step_args
from runbooks.catalogue.upgrade import UpgradeParams, plan_upgrade
from runbooks.engine.models import PlanRefused, StepArgs
from runbooks.rules.rolls import FOLLOW_TIMEOUT_S, SETTLE_TIMEOUT_S
from tests.runbooks.builders import args_of

from .test_change_plans import brokers, kraft, zookeeper

Row = tuple[str, str, bool, float, Any]


def _typed(rows: list[Row]) -> list[Row]:
    """Expected rows with their arguments written as a stored record has them, read as the typed
    model of their kind (defaults filled in): the plan must equal that exactly."""
    return [(i, kind, approval, timeout, parse_step_args({"kind": kind, **args})) for i, kind, approval, timeout, args
            in rows]


def _follows(expected: dict[str, dict[str, Any]]) -> dict[str, StepArgs]:
    return {i: parse_step_args({"kind": "follow-roll", **args}) for i, args in expected.items()}


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
    assert [(s.id, s.kind, s.needs_approval, s.timeout_s, s.args) for s in steps] == _typed([
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
    ])
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


# -- the ZooKeeper plan ---------------------------------------------------------------------------

IBP, LMFV = "inter.broker.protocol.version", "log.message.format.version"


def _config(key: str, value: str) -> dict[str, Any]:
    return {"path": ["config", key], "value": value}


def _follow_config(broker: int, key: str, value: str) -> dict[str, Any]:
    return {"broker": broker, "pod": f"c-pool-{broker}", "uid": f"uid-{broker}", "expect": {"config": {key: value}},
            "may_skip_roll": False, "settle_generation": None}


def test_zookeeper_plan_steps_with_their_preconditions() -> None:
    """IBP unpinned, LMFV left set: pin IBP (a roll checked against the pods the plan saw), the binaries
    (whose pods are the pin's new ones, so not checked against the plan's), then raise IBP and LMFV."""
    steps = plan_upgrade(UpgradeParams(version="3.9.0"), zookeeper(spec_config={LMFV: "3.8"}))
    rows = [(s.id, s.kind, s.needs_approval, s.timeout_s, s.args) for s in steps]
    follows = {s.id: s.args for s in steps if s.kind == "follow-roll"}
    assert [r for r in rows if r[1] != "follow-roll"] == _typed([
        ("preflight", "cluster-check", False, 120.0, {"kafka_version": "3.8.1", "brokers": [0, 1, 2]}),
        ("pin-protocol", "patch-kafka", True, 120.0,
         {"edits": [_config(IBP, "3.8")], "expect_pods": {"0": "uid-0", "1": "uid-1", "2": "uid-2"}, "wait": "none"}),
        ("roll-version", "patch-kafka", True, 120.0,
         {"edits": [_version("3.9.0")], "expect": [_version("3.8.1")], "expect_pods": None, "wait": "none"}),
        ("roll-done", "await-operator", False, SETTLE_TIMEOUT_S, {"kafka_version": "3.9.0"}),
        ("raise-protocol", "patch-kafka", True, 120.0,
         {"edits": [_config(IBP, "3.9")], "expect_pods": None, "wait": "none"}),
        ("raise-format", "patch-kafka", True, 120.0,
         {"edits": [_config(LMFV, "3.9")], "expect_pods": None, "wait": "none"}),
        ("protocol-done", "await-operator", False, SETTLE_TIMEOUT_S, {"kafka_version": "3.9.0"}),
        ("verify", "verify-upgrade", False, 120.0,
         {"kafka_version": "3.9.0", "metadata_version": None, "config": {IBP: "3.9"}, "brokers": [0, 1, 2]}),
    ])
    assert follows == _follows({
        **{f"pin-{b}": _follow_config(b, IBP, "3.8") for b in (0, 1, 2)},
        **{f"roll-{b}": {**_follow(b), "expect": {"kafka_version": "3.9.0"}} for b in (0, 1, 2)},
        **{f"ibp-{b}": _follow_config(b, IBP, "3.9") for b in (0, 1, 2)},
        **{f"lmfv-{b}": _follow_config(b, LMFV, "3.9") for b in (0, 1, 2)},
    })
    assert [s.id for s in steps if s.kind == "follow-roll"] == [  # each roll in Strimzi's order, controller last
        f"{roll}-{b}" for roll in ("pin", "roll", "ibp", "lmfv") for b in (0, 2, 1)]
    assert all("At risk: none (1 partitions" in s.summary for s in steps if s.kind == "patch-kafka")
    assert [s.title for s in steps if s.id.endswith("-0") and s.kind == "follow-roll"] == [
        f"Broker 0: restarted with {IBP} pinned", "Broker 0: restarted on Kafka 3.9.0",
        "Broker 0: restarted speaking 3.9", "Broker 0: restarted writing format 3.9"]
    titles = {s.id: s.title for s in steps}
    assert titles["pin-protocol"] == f"Pin {IBP} at 3.8"
    assert titles["pin-1"] == f"Broker 1 (active controller): restarted with {IBP} pinned"
    assert titles["ibp-0"] == "Broker 0: restarted speaking 3.9"
    assert titles["lmfv-0"] == "Broker 0: restarted writing format 3.9"
    summaries = {s.id: s.summary for s in steps}
    assert summaries["pin-protocol"].startswith(
        f"Sets {IBP}=3.8 in spec.kafka.config (a change Kafka takes only on restart). Strimzi then restarts every "
        "broker itself, one at a time, in the order 0, 2, 1.")
    assert summaries["roll-version"].startswith(
        "Sets spec.kafka.version 3.8.1 -> 3.9.0; the brokers keep speaking protocol 3.8. Strimzi then restarts")
    assert "At risk: none (1 partitions" in summaries["pin-protocol"]


def test_a_zookeeper_plan_with_ibp_pinned_checks_the_binaries_roll_against_the_plans_pods() -> None:
    """No pin roll first: the version patch is the first roll, so it carries the pods the plan saw."""
    steps = plan_upgrade(UpgradeParams(version="3.9.0"), zookeeper(spec_config={IBP: "3.8"}))
    roll = next(s for s in steps if s.id == "roll-version")
    assert args_of(roll)["expect_pods"] == {"0": "uid-0", "1": "uid-1", "2": "uid-2"}


@pytest.mark.parametrize(("running", "pinned"), [
    ("2.8.2", {IBP: "2.8", LMFV: "2.8"}),  # below 3.0 the message format follows the protocol
    ("3.0.0", {IBP: "3.0"}),  # from 3.0 it is ignored unless set
])
def test_zookeeper_pins_the_message_format_only_below_3_0(running: str, pinned: dict[str, str]) -> None:
    """log.message.format.version is pinned (at the running line) only when upgrading from below 3.0."""
    steps = plan_upgrade(UpgradeParams(version="3.9.0"),
                         zookeeper(kafka_version=running, brokers=brokers(running)))
    pin = next(s for s in steps if s.id == "pin-protocol")
    assert args_of(pin)["edits"] == [_config(k, v) for k, v in pinned.items()]
    assert pin.title == f"Pin {', '.join(pinned)} at {running.rsplit('.', 1)[0]}"
    assert ("raise-format" in [s.id for s in steps]) is (LMFV in pinned)
    assert pin.summary.startswith(f"Sets {', '.join(f'{k}={v}' for k, v in pinned.items())} in spec.kafka.config")


def test_an_upgrade_within_the_protocol_line_raises_no_protocol() -> None:
    """3.8.0 -> 3.8.1 keeps protocol 3.8: the binaries roll and nothing after it."""
    steps = plan_upgrade(UpgradeParams(version="3.8.1"),
                         zookeeper(kafka_version="3.8.0", brokers=brokers("3.8.0"), spec_config={IBP: "3.8"}))
    assert [s.id for s in steps if s.kind != "follow-roll"] == ["preflight", "roll-version", "roll-done", "verify"]
