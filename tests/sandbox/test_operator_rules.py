"""The operator's pure rules (no brokers): Strimzi's safety checks, node ids, config diffs, version planning."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from bot.sandbox.operator.availability import PartitionReplicas, VoterState, can_roll_broker, can_roll_controller
from bot.sandbox.operator.brokerconfig import BrokerConfigState, diff, user_config
from bot.sandbox.operator.events import RestartReason
from bot.sandbox.operator.nodepools import PoolRequest, assign_node_ids, parse_id_ranges
from bot.sandbox.operator.roller import Roller, RollSettings, roll_order
from bot.sandbox.operator.status import ReconcileFailure
from bot.sandbox.operator.upgrade import plan_version_change
from bot.sandbox.operator.versions import metadata_level, metadata_name
from bot.sandbox.processes import mentions


def p(topic: str, replicas: tuple[int, ...], isr: tuple[int, ...]) -> PartitionReplicas:
    return PartitionReplicas(topic, 0, replicas, isr)


@pytest.mark.parametrize(("partition", "min_isr", "safe"), [
    (p("t", (0, 1, 2), (0, 1, 2)), 2, True),     # ISR 3 > minISR 2
    (p("t", (0, 1, 2), (0, 1)), 2, False),       # ISR == minISR and 0 is in it
    (p("t", (0, 1, 2), (1, 2)), 2, True),        # ISR == minISR but 0 is already out
    (p("t", (0, 1, 2), (1,)), 2, False),         # already under minISR and 0 holds a replica
    (p("t", (0, 1), (0, 1)), 2, True),           # RF <= minISR: never safe, so Strimzi ignores it
    (p("t", (1, 2, 3), (1, 2)), 2, True),        # 0 holds no replica
])
def test_broker_can_roll_follows_kafka_availability(partition: PartitionReplicas, min_isr: int, safe: bool) -> None:
    """KafkaAvailability.canRoll: only a broker whose restart drops a partition below minISR is held."""
    assert bool(can_roll_broker(0, [partition], {"t": min_isr})) is safe


def test_controller_can_roll_needs_a_caught_up_majority_without_it() -> None:
    """KafkaQuorumCheck: no leader -> no; 3 voters need 2 caught-up others; a lagging voter does not count."""
    caught_up = [VoterState(0, 10_000), VoterState(1, 9_500), VoterState(2, 9_900)]
    assert can_roll_controller(1, 0, caught_up)
    assert not can_roll_controller(1, -1, caught_up)
    lagging = [VoterState(0, 10_000), VoterState(1, 9_500), VoterState(2, 1_000)]
    assert not can_roll_controller(1, 0, lagging)
    assert can_roll_controller(2, 0, lagging)
    assert can_roll_controller(0, 0, [VoterState(0, 5)])  # a single controller may be rolled


def test_node_ids_scale_up_lowest_free_and_down_highest() -> None:
    """Scale-up takes the lowest id free cluster-wide, scale-down the highest of the pool."""
    result = assign_node_ids([PoolRequest("a", 4, (0, 2, 3)), PoolRequest("b", 1, (1, 5))])
    assert result["a"].added == (4,) and result["a"].node_ids == (0, 2, 3, 4)
    assert result["b"].removed == (5,) and result["b"].node_ids == (1,)


def test_node_ids_follow_the_next_and_remove_annotations() -> None:
    """strimzi.io/next-node-ids and strimzi.io/remove-node-ids choose the ids."""
    up = assign_node_ids([PoolRequest("a", 5, (0, 1, 2), next_ids=tuple(parse_id_ranges("[10-11]")))])
    assert up["a"].added == (10, 11)
    down = assign_node_ids([PoolRequest("a", 2, (0, 1, 2), remove_ids=(0,))])
    assert down["a"].removed == (0,)
    assert parse_id_ranges("[0, 1, 10-12]") == [0, 1, 10, 11, 12]
    with pytest.raises(ValueError):
        parse_id_ranges("3")


def test_config_diff_splits_dynamic_changes_from_restarts() -> None:
    """Dynamic keys are set/deleted live; anything else (or a key gone from the file) needs a restart."""
    current = BrokerConfigState(static={"log.retention.ms": "1", "auto.create.topics.enable": "false"})
    live = diff(current, {"log.retention.ms": "2", "auto.create.topics.enable": "false"})
    assert not live.needs_restart and live.dynamic_set == {"log.retention.ms": "2"}
    assert diff(current, {"log.retention.ms": "1", "auto.create.topics.enable": "true"}).restart_keys == (
        "auto.create.topics.enable",)
    assert diff(current, {"auto.create.topics.enable": "false"}).needs_restart  # removed from the file
    applied = BrokerConfigState(static={}, dynamic={"num.io.threads": "4"})
    gone = diff(applied, {})
    assert gone.dynamic_delete == ("num.io.threads",) and not gone.needs_restart


def test_user_config_renders_values_and_drops_what_strimzi_owns() -> None:
    """spec.kafka.config: booleans and numbers become strings; listeners/node.id/... are ignored."""
    cfg, dropped = user_config({"auto.create.topics.enable": True, "num.io.threads": 8, "listeners": "x",
                                "node.id": 3, "controller.quorum.fetch.timeout.ms": 2000})
    assert cfg == {"auto.create.topics.enable": "true", "num.io.threads": "8",
                   "controller.quorum.fetch.timeout.ms": "2000"}
    assert dropped == ["listeners", "node.id"]


def test_metadata_levels_map_to_strimzi_names() -> None:
    """describeFeatures levels <-> the names Strimzi writes in status.kafkaMetadataVersion."""
    assert metadata_name(29) == "4.2-IV1" and metadata_name(30) == "4.3-IV0"
    assert metadata_level("4.2-IV1") == 29 and metadata_level("4.3") == 30
    with pytest.raises(ValueError):
        metadata_level("4.3-IV9")


def test_version_change_keeps_metadata_during_the_roll_and_bumps_an_unpinned_one_after() -> None:
    """KRaftVersionChangeCreator: current metadata during an upgrade; then desired, or the new default."""
    during = plan_version_change(["4.2.2", "4.3.1", "4.2.2"], "4.3.1", None, "4.2-IV1")
    assert during.is_change and during.metadata_version == "4.2-IV1"
    after_unpinned = plan_version_change(["4.3.1"] * 3, "4.3.1", None, "4.2-IV1")
    assert after_unpinned.metadata_version == "4.3-IV0"
    after_pinned = plan_version_change(["4.3.1"] * 3, "4.3.1", "4.2-IV1", "4.2-IV1")
    assert after_pinned.metadata_version == "4.2-IV1"
    too_new = plan_version_change(["4.2.2"] * 3, "4.2.2", "4.3-IV0", "4.2-IV1")
    assert too_new.metadata_version == "4.2-IV1" and too_new.warnings[0]["reason"] == "KafkaMetadataVersion"
    with pytest.raises(ReconcileFailure, match="has to be lower or equal"):
        plan_version_change(["4.3.1"] * 3, "4.2.2", None, "4.3-IV0")


@dataclass
class FakePod:
    node_id: int
    is_controller: bool = True
    is_broker: bool = True
    ready: bool = True
    name: str = ""

    def is_ready(self) -> bool:
        return self.ready


class FakeAdmin:
    def __init__(self, leader: int) -> None:
        self.leader = leader

    async def quorum(self) -> tuple[int, list[VoterState]]:
        return self.leader, []


async def test_roll_order_puts_controllers_first_unready_first_and_the_active_controller_last() -> None:
    """KafkaRoller order: unready controllers, ready controllers, then brokers; the quorum leader is deferred."""
    pods: list[Any] = [FakePod(3, is_controller=False), FakePod(1), FakePod(0), FakePod(2, ready=False)]
    assert [x.node_id for x in roll_order(pods)] == [2, 0, 1, 3]
    roller = Roller(FakeAdmin(leader=0), RollSettings(), restart=None)  # type: ignore[arg-type]
    queue: list[Any] = [FakePod(0), FakePod(1)]
    assert (await roller._next(queue)).node_id == 1
    assert (await roller._next([FakePod(0)])).node_id == 0


def test_restart_reasons_use_strimzis_pascal_case_names() -> None:
    """Event reasons are RestartReason.pascalCased(), e.g. ManualRollingUpdate."""
    assert RestartReason.MANUAL_ROLLING_UPDATE.pascal == "ManualRollingUpdate"
    assert RestartReason.POD_HAS_OLD_REVISION.pascal == "PodHasOldRevision"
    assert RestartReason.CONFIG_CHANGE_REQUIRES_RESTART.pascal == "ConfigChangeRequiresRestart"


def test_leftover_process_matching_never_hits_a_sibling_sandbox() -> None:
    """`down` kills processes under its own dir only: /x/demo must not match /x/demo2."""
    assert mentions("-Djava.io.tmpdir=/x/demo/clusters/tmp", "/x/demo")
    assert mentions("/x/demo", "/x/demo")
    assert not mentions("-Djava.io.tmpdir=/x/demo2/clusters/tmp", "/x/demo")
