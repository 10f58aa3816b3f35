"""The upgrade and config planners, pure: what each plan holds, and every refusal with its reason."""

from __future__ import annotations

from typing import Any

import pytest

from runbooks.catalogue.config import ConfigInput, ConfigParams, config_diff, plan_config_change
from runbooks.catalogue.upgrade import UpgradeInput, UpgradeParams, plan_upgrade
from runbooks.engine.models import PlanRefused
from runbooks.rules.config_keys import ConfigEntryInfo, denial, value_problem
from runbooks.rules.rolls import BrokerPodState
from runbooks.rules.versions import (
    ClusterMode,
    VersionError,
    default_metadata,
    detect_mode,
    line_of_level,
    metadata_level,
    metadata_name,
)
from tests.runbooks.builders import args_of

from .builders import part, snapshot

FULL = (0, 1, 2)
HEALTHY = snapshot(part("orders", 0, leader=0, replicas=FULL, isr=FULL), controller=1)


def brokers(version: str = "4.2.2") -> tuple[BrokerPodState, ...]:
    return tuple(BrokerPodState(id=i, pod=f"c-pool-{i}", uid=f"uid-{i}", kafka_version=version) for i in FULL)


def kraft(**overrides: Any) -> UpgradeInput:
    values: dict[str, Any] = {"mode": ClusterMode.KRAFT, "ready": True, "kafka_version": "4.2.2",
                              "metadata_version": "4.2-IV1", "brokers": brokers(), "snapshot": HEALTHY}
    values.update(overrides)
    return UpgradeInput(**values)


def refusal(params: UpgradeParams, world: UpgradeInput) -> str:
    with pytest.raises(PlanRefused) as caught:
        plan_upgrade(params, world)
    return str(caught.value)


# -- versions -------------------------------------------------------------------------------------

def test_metadata_levels_and_the_line_a_binary_advertises() -> None:
    """Names and levels map both ways; a short '4.3' is the line's latest; 29 is what a 4.2 binary tops out at."""
    assert metadata_level("4.2-IV1") == 29 and metadata_level("4.3") == 30 and metadata_level("30") == 30
    assert metadata_name(30) == "4.3-IV0" and metadata_name(99) == "99"
    assert default_metadata("4.3.1") == "4.3-IV0" and line_of_level(29) == "4.2" and line_of_level(28) is None
    with pytest.raises(VersionError):
        metadata_level("4.9-IV7")


def test_mode_is_kraft_with_a_metadata_version_or_a_quorum() -> None:
    """A cluster with neither a metadata version nor a KRaft quorum is a ZooKeeper one."""
    assert detect_mode("4.2-IV1", False) is ClusterMode.KRAFT
    assert detect_mode(None, True) is ClusterMode.KRAFT
    assert detect_mode(None, False) is ClusterMode.ZOOKEEPER


# -- the KRaft upgrade plan -----------------------------------------------------------------------

def test_kraft_plan_pins_rolls_in_operator_order_then_raises_after_a_final_approval() -> None:
    """Pin (automatic), roll (approved, pods as planned), brokers in Strimzi's order with the active controller
    last (automatic gates), operator done, raise (approved, no roll), verify."""
    steps = plan_upgrade(UpgradeParams(version="4.3.1"), kraft())
    assert [s.id for s in steps] == ["preflight", "pin-metadata", "roll-version", "roll-0", "roll-2", "roll-1",
                                     "roll-done", "raise-metadata", "verify"]
    assert [s.id for s in steps if s.needs_approval] == ["roll-version", "raise-metadata"]
    pin, roll = steps[1], steps[2]
    assert args_of(pin)["edits"] == [{"path": ["metadataVersion"], "value": "4.2-IV1"}]
    assert args_of(roll)["expect"] == [{"path": ["version"], "value": "4.2.2"},
                                   {"path": ["metadataVersion"], "value": "4.2-IV1"}]
    assert args_of(roll)["expect_pods"] == {"0": "uid-0", "1": "uid-1", "2": "uid-2"}
    assert "cannot be held between brokers" in roll.summary and "order 0, 2, 1" in roll.summary
    assert steps[5].title == "Broker 1 (active controller): restarted on Kafka 4.3.1"
    assert args_of(steps[5])["expect"] == {"kafka_version": "4.3.1", "config": {}}
    assert args_of(steps[5])["uid"] == "uid-1"
    assert args_of(steps[7])["edits"] == [{"path": ["metadataVersion"], "value": "4.3-IV0"}]
    assert args_of(steps[7])["no_roll"]


def test_binaries_already_upgraded_but_metadata_behind_plans_only_the_raise() -> None:
    """An interrupted upgrade (all brokers on 4.3.1, metadata still 4.2-IV1) resumes at the raise."""
    steps = plan_upgrade(UpgradeParams(version="4.3.1"),
                         kraft(kafka_version="4.3.1", brokers=brokers("4.3.1")))
    assert [s.id for s in steps] == ["preflight", "raise-metadata", "verify"]


@pytest.mark.parametrize(("version", "world", "reason"), [
    ("4.4.0", {}, "Kafka 4.4.0 is not supported by Strimzi 1.2 (Strimzi 1.2's list, as the operator's version is "
                  "unknown: the operator Deployment was not read): supported 4.2.0, 4.2.1, 4.2.2, 4.3.0, 4.3.1"),
    ("latest", {}, "'latest' is not a Kafka version: write it like 4.3.1"),
    ("4.2.0", {}, "4.2.0 is older than the running 4.2.2: this command only upgrades"),
    ("4.3.1", {"ready": False, "not_ready_reason": "UnforceableProblem: pod x"},
     "the Kafka resource is not Ready (UnforceableProblem: pod x)"),
    ("4.3.1", {"settled": False}, "has not reconciled the latest change"),
    ("4.3.1", {"brokers": (*brokers()[:2], BrokerPodState(id=2, pod="p", uid="u", kafka_version="4.3.1"))},
     "the brokers run 4.2.2, 4.3.1 while the status says 4.2.2: a roll is unfinished"),
    ("4.3.1", {"snapshot": None, "snapshot_error": "KafkaUnavailable: no route"}, "Kafka did not answer"),
    ("4.3.1", {"snapshot": snapshot(part("orders", 0, leader=0, replicas=FULL, isr=(0, 1)))},
     "the cluster is not healthy: 1 under-replicated partitions (e.g. orders-0)"),
    ("4.3.1", {"snapshot": snapshot(part("orders", 0, leader=0, replicas=(0, 1, 2, 3), isr=FULL, adding=(3,)),
                                    brokers=(0, 1, 2, 3))},
     "1 partition reassignments in flight"),
])
def test_upgrade_refusals(version: str, world: dict[str, Any], reason: str) -> None:
    """Each reason an upgrade cannot start is said in words, with what would be valid."""
    assert reason in refusal(UpgradeParams(version=version), kraft(**world))


# -- the ZooKeeper plan ---------------------------------------------------------------------------

def zookeeper(**overrides: Any) -> UpgradeInput:
    values: dict[str, Any] = {"mode": ClusterMode.ZOOKEEPER, "ready": True, "kafka_version": "3.8.1",
                              "brokers": brokers("3.8.1"), "snapshot": HEALTHY}
    values.update(overrides)
    return UpgradeInput(**values)


def test_zookeeper_plan_with_ibp_pinned_is_binaries_then_protocol() -> None:
    """IBP already pinned: two rolls (version, then IBP), each approved once and followed per broker."""
    steps = plan_upgrade(UpgradeParams(version="3.9.0"),
                         zookeeper(spec_config={"inter.broker.protocol.version": "3.8"}))
    assert [s.id for s in steps if s.needs_approval] == ["roll-version", "raise-protocol"]
    raise_ibp = next(s for s in steps if s.id == "raise-protocol")
    assert args_of(raise_ibp)["edits"] == [{"path": ["config", "inter.broker.protocol.version"], "value": "3.9"}]
    assert args_of(next(s for s in steps if s.id == "ibp-1"))["expect"] == {
        "kafka_version": None, "config": {"inter.broker.protocol.version": "3.9"}}
    assert args_of(steps[-1])["config"] == {"inter.broker.protocol.version": "3.9"}


def test_zookeeper_plan_refuses_an_ibp_newer_than_the_running_version() -> None:
    """An IBP above the running release is a misconfiguration to fix first, not something to upgrade over."""
    reason = refusal(UpgradeParams(version="3.9.0"), zookeeper(spec_config={"inter.broker.protocol.version": "3.9"}))
    assert "inter.broker.protocol.version is 3.9, newer than the running 3.8.1" in reason


# -- the config change ----------------------------------------------------------------------------

CATALOGUE = {
    "log.retention.ms": ConfigEntryInfo(name="log.retention.ms", type="LONG", read_only=False),
    "auto.create.topics.enable": ConfigEntryInfo(name="auto.create.topics.enable", value="false", type="BOOLEAN",
                                                 source="STATIC_BROKER_CONFIG"),
    "min.insync.replicas": ConfigEntryInfo(name="min.insync.replicas", value="2", type="INT", read_only=False),
    "compression.type": ConfigEntryInfo(name="compression.type", type="STRING", read_only=False),
    "default.replication.factor": ConfigEntryInfo(name="default.replication.factor", value="3", type="INT",
                                                  source="STATIC_BROKER_CONFIG"),
}


def config_world(**overrides: Any) -> ConfigInput:
    values: dict[str, Any] = {"ready": True, "generation": 7, "kafka_version": "4.3.1", "brokers": brokers("4.3.1"),
                              "snapshot": HEALTHY, "catalogue": CATALOGUE, "spec_config": {"log.retention.ms": 1000}}
    values.update(overrides)
    return ConfigInput(**values)


def test_dynamic_change_is_one_approved_patch_that_waits_for_the_operator() -> None:
    """A key Kafka takes live: patch (settled, no roll expected), verify; the diff is on the approval."""
    steps = plan_config_change(ConfigParams(action="set", values={"log.retention.ms": "86400000"}), config_world())
    assert [s.id for s in steps] == ["preflight", "patch-config", "verify"]
    patch = steps[1]
    assert args_of(patch)["expect_generation"] == 7 and args_of(patch)["no_roll"]
    assert args_of(patch)["wait"] == "settled"
    assert "log.retention.ms: 1000 -> 86400000 (applied live, no restart" in patch.summary
    assert args_of(patch)["edits"] == [{"path": ["config", "log.retention.ms"], "value": 86400000}]
    assert patch.compensation == "log.retention.ms: back to 1000"


def test_restart_change_follows_each_broker_and_accepts_a_live_apply() -> None:
    """A start-up key: the roll is followed per broker, each step also done if the operator applies it live."""
    steps = plan_config_change(ConfigParams(action="set", values={"auto.create.topics.enable": "TRUE"}),
                               config_world())
    assert [s.id for s in steps] == ["preflight", "patch-config", "roll-0", "roll-2", "roll-1", "roll-done", "verify"]
    follow = steps[2]
    assert args_of(follow)["expect"] == {"kafka_version": None, "config": {"auto.create.topics.enable": "true"}}
    assert args_of(follow)["may_skip_roll"] and args_of(follow)["settle_generation"] == 8
    assert follow.title == "Broker 0: restarted with auto.create.topics.enable=true"
    assert args_of(steps[-1])["set"] == {"auto.create.topics.enable": "true"}


def test_unset_removes_the_key_and_may_restart() -> None:
    """unset removes the key from spec.kafka.config; whether a restart follows is left to the operator."""
    steps = plan_config_change(ConfigParams(action="unset", keys=("log.retention.ms",)), config_world())
    assert args_of(steps[1])["edits"] == [{"path": ["config", "log.retention.ms"], "value": None}]
    assert steps[2].title == "Broker 0: restarted without log.retention.ms"
    assert args_of(steps[-1])["unset"] == ["log.retention.ms"]


@pytest.mark.parametrize(("params", "reason"), [
    (ConfigParams(action="set", values={"log.retention.ms": "1000"}), "log.retention.ms is already 1000"),
    (ConfigParams(action="unset", keys=("compression.type",)),
     "compression.type is not set in spec.kafka.config, so there is nothing to unset"),
    (ConfigParams(action="set", values={"min.insync.replicas": "4"}), "min.insync.replicas=4 is more than 3"),
    (ConfigParams(action="set", values={"compression.type": "brotli"}),
     "Invalid value brotli for configuration compression.type: String must be one of: uncompressed, zstd, lz4, "
     "snappy, gzip, producer (valid: one of uncompressed, zstd, lz4, snappy, gzip, producer. Default: producer)"),
    (ConfigParams(action="set", values={"log.retention.ms": "-5"}),
     "log.retention.ms=-5: Kafka reads any negative value as unlimited; write -1 for unlimited"),
    (ConfigParams(action="set", values={"listeners": "PLAINTEXT://:9092"}), "listeners cannot be changed this way"),
    (ConfigParams(action="set", values={"log.retention": "1"}), "the brokers know no config 'log.retention'"),
])
def test_config_refusals(params: ConfigParams, reason: str) -> None:
    """No-op changes, unsetting what is not set, impossible or badly typed values, denied and unknown keys."""
    with pytest.raises(PlanRefused) as caught:
        config_diff(params, config_world())
    assert reason in str(caught.value)


@pytest.mark.parametrize("key", [
    "node.id", "broker.id", "process.roles", "listeners", "advertised.listeners", "listener.security.protocol.map",
    "inter.broker.listener.name", "log.dirs", "log.dir", "metadata.log.dir", "controller.quorum.voters",
    "controller.quorum.bootstrap.servers", "controller.listener.names", "broker.rack", "ssl.keystore.location",
    "sasl.enabled.mechanisms", "authorizer.class.name", "super.users", "zookeeper.connect",
    "inter.broker.protocol.version", "log.message.format.version", "unstable.feature.versions.enable",
    "control.plane.listener.name", "reserved.broker.max.id",
])
def test_deny_list_covers_identity_roles_listeners_storage_quorum_security(key: str) -> None:
    """Every key Strimzi owns or the upgrade owns is denied, with a reason."""
    assert denial(key)


@pytest.mark.parametrize("key", ["broker.session.timeout.ms", "broker.heartbeat.interval.ms", "broker.rack"])
def test_broker_keys_are_refused_because_strimzi_drops_them(key: str) -> None:
    """Strimzi forbids the broker. prefix with no exception for the session timeouts: a change the
    operator silently drops would be a run that reports a change nobody made."""
    assert "Strimzi drops every broker.* key" in (denial(key) or "")


@pytest.mark.parametrize("key", ["ssl.cipher.suites", "log.retention.ms",
                                 "num.replica.fetchers", "auto.create.topics.enable"])
def test_strimzis_exceptions_and_ordinary_keys_are_allowed(key: str) -> None:
    """Strimzi's own exceptions to its forbidden prefixes, and ordinary tuning keys, may be changed."""
    assert denial(key) is None


def test_values_with_control_characters_are_refused() -> None:
    """A newline would add a line to server.properties: never a valid value."""
    assert "control character" in (value_problem("compression.type", "zstd\nnode.id=9", None) or "")
