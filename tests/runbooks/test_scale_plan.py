"""The scale plan read whole, up and down, for a small cluster (controllers 0-2 in their own pool,
brokers in pool "brokers"), and every refusal word for word."""

from __future__ import annotations

import pytest

from runbooks.catalogue.scale import ScaleInput, ScaleParams, plan
from runbooks.engine.models import PlanRefused, StepSpec
from runbooks.rules.node_pools import NodePool, predicted_new_ids, removed_ids
from runbooks.rules.reassignment import PartitionPlacement, ReassignmentBroker
from tests.runbooks.reassignment_builders import MiB, part

pytestmark = pytest.mark.timeout(10)

CONTROLLERS = NodePool(name="controllers", roles=("controller",), replicas=3, node_ids=(0, 1, 2))
DUAL = NodePool(name="mixed", roles=("broker", "controller"), replicas=1, node_ids=(9,))


def cluster(broker_ids: tuple[int, ...], parts: tuple[PartitionPlacement, ...], *, extra: tuple[NodePool, ...] = (),
            racks: str = "") -> ScaleInput:
    pool = NodePool(name="brokers", roles=("broker",), replicas=len(broker_ids), node_ids=broker_ids)
    return ScaleInput(pools=(CONTROLLERS, pool, *extra),
                      brokers=tuple(ReassignmentBroker(id=b, rack=racks[i] if racks else None)
                                    for i, b in enumerate(broker_ids)),
                      partitions=parts)


THREE = cluster((3, 4, 5), tuple(part(f"t-{i}", ((3 + i) % 3 + 3, (4 + i) % 3 + 3), size=100 * MiB)
                                 for i in range(6)))
FOUR = cluster((3, 4, 5, 6), tuple(part(f"t-{i}", (3 + i % 4, 3 + (i + 1) % 4), size=100 * MiB) for i in range(4)))


def shape(steps: list[StepSpec]) -> list[tuple[str, str, bool, bool]]:
    return [(s.id, s.kind, s.needs_approval, s.cleanup) for s in steps]


def test_scale_up_patches_waits_for_the_predicted_ids_then_fills_them() -> None:
    steps = plan(ScaleParams(pool="brokers", replicas=4), THREE)
    assert shape(steps) == [
        ("preflight", "preflight", False, False),
        ("scale-pool", "patch-node-pool", True, False),
        ("await-brokers", "await-pool-nodes", False, False),
        ("fill-1", "move-replicas", True, False),
        ("cancel-moves", "cancel-moves", False, True),
        ("clear-throttles", "clear-throttles", False, True),
        ("elect-leaders", "elect-leaders", True, False),
    ]
    by_id = {s.id: s for s in steps}
    assert by_id["scale-pool"].args.model_dump() == {"kind": "patch-node-pool", "pool": "brokers", "replicas": 4,
                                                     "from_replicas": 3, "remove_ids": ()}
    # Ids are cluster-wide: the controllers hold 0-2, the brokers 3-5, so the new broker is 6.
    assert by_id["await-brokers"].args.model_dump() == {"kind": "await-pool-nodes", "pool": "brokers", "replicas": 4,
                                                        "added": (6,), "removed": (), "before": (3, 4, 5)}
    fill = by_id["fill-1"].args.model_dump()["moves"]
    assert len(fill) == 3 and all(6 in m["new"] and 6 not in m["old"] for m in fill)  # floor(12 / 4) replicas
    assert by_id["fill-1"].summary.startswith("To fill broker(s) 6: move 3 replicas of 3 partitions (the minimum), "
                                              "300 MiB to copy.")
    assert by_id["scale-pool"].summary == ("Strimzi creates brokers 6 (Strimzi's next free ids, checked before "
                                           "anything moves). At risk: nothing yet; the new pods need their PVCs "
                                           "and resources.")
    assert all(s.compensation for s in steps)


def test_scale_down_drains_the_highest_ids_first_then_patches_with_remove_node_ids() -> None:
    steps = plan(ScaleParams(pool="brokers", replicas=3, throttle="10MiB/s"), FOUR)
    assert shape(steps) == [
        ("preflight", "preflight", False, False),
        ("drain-1", "move-replicas", True, False),
        ("cancel-moves", "cancel-moves", False, True),
        ("clear-throttles", "clear-throttles", False, True),
        ("scale-pool", "patch-node-pool", True, False),
        ("await-scale-down", "await-pool-nodes", False, False),
        ("elect-leaders", "elect-leaders", True, False),
    ]
    by_id = {s.id: s for s in steps}
    moves = by_id["drain-1"].args.model_dump()["moves"]
    assert {(m["topic"], m["partition"]) for m in moves} == {("t", 2), ("t", 3)}  # exactly broker 6's replicas
    assert all(6 in m["old"] and 6 not in m["new"] for m in moves)
    assert by_id["scale-pool"].args.model_dump() == {"kind": "patch-node-pool", "pool": "brokers", "replicas": 3,
                                                     "from_replicas": 4, "remove_ids": (6,)}
    assert by_id["await-scale-down"].args.model_dump() == {"kind": "await-pool-nodes", "pool": "brokers",
                                                           "replicas": 3, "added": (), "removed": (6,), "before": ()}
    assert by_id["scale-pool"].summary == (
        "Strimzi removes brokers 6 (strimzi.io/remove-node-ids [6]) and their pods; they hold no replica after the "
        "drain, so no data goes with them. At risk: the cluster's capacity: 3 brokers remain.")
    assert all(s.compensation for s in steps)


def test_remove_ids_choose_the_leaving_brokers() -> None:
    steps = plan(ScaleParams(pool="brokers", replicas=3, remove_ids=(3,)), FOUR)
    assert {s.id: s for s in steps}["scale-pool"].args.model_dump()["remove_ids"] == (3,)
    assert all(3 not in m.new for s in steps if s.kind == "move-replicas" for m in s.args.moves)  # type: ignore[attr-defined]


def test_strimzis_id_rules() -> None:
    pool = NodePool(name="b", node_ids=(3, 4), annotations={"strimzi.io/next-node-ids": "[10-11]"})
    assert predicted_new_ids([CONTROLLERS, pool], pool, 3) == [5, 10, 11]
    assert predicted_new_ids([CONTROLLERS, NodePool(name="b", node_ids=(3, 4))], pool.model_copy(
        update={"annotations": {}}), 2) == [5, 6]
    assert removed_ids(NodePool(name="b", node_ids=(3, 4, 5, 6)), 2, [4]) == [4, 6]


REFUSALS = [
    (ScaleParams(pool="big", replicas=4), THREE,
     "no node pool big in this cluster; its pools are controllers (controller), brokers (broker)"),
    (ScaleParams(pool="controllers", replicas=4), THREE,
     "pool controllers is controller-only: the controller quorum is static, so only broker-only pools can be "
     "scaled. Pools: controllers (controller), brokers (broker)"),
    (ScaleParams(pool="mixed", replicas=2), cluster((3, 4, 5), THREE.partitions, extra=(DUAL,)),
     "pool mixed is dual-role (broker+controller): the controller quorum is static, so only broker-only pools can "
     "be scaled. Pools: controllers (controller), brokers (broker), mixed (broker+controller)"),
    (ScaleParams(pool="brokers", replicas=3), THREE, "pool brokers already has 3 nodes (3, 4, 5): nothing to change"),
    (ScaleParams(pool="brokers", replicas=1), THREE,
     "1 nodes in pool brokers leave 1 brokers in the cluster, fewer than the largest replication factor (2, topic "
     "t): give at least 2"),
    (ScaleParams(pool="brokers", replicas=3, remove_ids=(9,)), FOUR,
     "--remove-ids 9: not nodes of pool brokers (its nodes are 3, 4, 5, 6)"),
    (ScaleParams(pool="brokers", replicas=3, remove_ids=(5, 6)), FOUR,
     "--remove-ids names 2 nodes, but 4 → 3 removes 1"),
    (ScaleParams(pool="brokers", replicas=4, remove_ids=(3,)), THREE,
     "--remove-ids is for a scale-down: leave it out to add nodes"),
    (ScaleParams(pool="brokers", replicas=4, throttle="0MiB/s"), THREE,
     'a throttle of "0MiB/s" would never move anything: give a rate above 0, e.g. 50MiB/s'),
    (ScaleParams(pool="brokers", replicas=4, throttle="fast"), THREE,
     '"fast" is not a throttle rate: write bytes per second like 50MiB/s, 10MB/s or 52428800 (units B, KB, MB, '
     "GB, KiB, MiB, GiB)"),
    (ScaleParams(pool="brokers", replicas=3), FOUR.model_copy(update={"brokers": tuple(
        b.model_copy(update={"alive": b.id != 6}) for b in FOUR.brokers)}),
     "broker(s) 6 are down and hold replicas: bring them back first"),
    (ScaleParams(pool="brokers", replicas=4), cluster((3, 4, 5), THREE.partitions, racks="abc"),
     "the brokers have racks, and a new broker's rack is only known once it runs, so the fill cannot be planned "
     "in advance: scale the pool, then rebalance"),
]


@pytest.mark.parametrize(("params", "given", "message"), REFUSALS)
def test_each_refusal_says_what_is_wrong_and_what_is_valid(params: ScaleParams, given: ScaleInput,
                                                           message: str) -> None:
    with pytest.raises(PlanRefused) as refused:
        plan(params, given)
    assert str(refused.value) == message
