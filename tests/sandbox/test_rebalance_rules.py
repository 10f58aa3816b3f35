"""The Cruise Control twin's pure parts (no brokers): its proposals, the executor's batches, the
KafkaRebalance resources the sandbox applies."""

from __future__ import annotations

from collections import Counter

import pytest

from bot.sandbox.daemon import kafka_resources
from bot.sandbox.operator.cluster import zone_of
from bot.sandbox.operator.rebalance_executor import batches
from bot.sandbox.operator.rebalance_proposal import PartitionLoad, ProposalError, balancedness, propose

pytestmark = pytest.mark.timeout(20)

NO_RACKS: dict[int, str | None] = {0: None, 1: None, 2: None, 3: None}


def layout(count: int, brokers: int, rf: int = 3, size: int = 1000) -> list[PartitionLoad]:
    """``count`` partitions placed round-robin over brokers 0..brokers-1 (what Kafka does at creation)."""
    return [PartitionLoad("t", p, tuple((p + i) % brokers for i in range(rf)), size) for p in range(count)]


def replica_counts(parts: list[PartitionLoad], targets: dict[tuple[str, int], tuple[int, ...]]) -> Counter[int]:
    return Counter(b for p in parts for b in targets.get((p.topic, p.partition), p.replicas))


def test_remove_brokers_moves_only_the_leaving_brokers_replicas_and_keeps_a_surviving_leader() -> None:
    """Draining 3 of a 4-broker cluster: exactly its replicas move, RF kept, no co-location, leader survives."""
    parts = layout(12, 4)
    proposal = propose("remove-brokers", [3], NO_RACKS, parts)
    on_3 = [p for p in parts if 3 in p.replicas]
    assert proposal.num_replica_movements == len(on_3) == 9
    assert set(proposal.targets) == {(p.topic, p.partition) for p in on_3}
    for p in on_3:
        target = proposal.targets[(p.topic, p.partition)]
        assert 3 not in target and len(set(target)) == 3
        survivors = [r for r in p.replicas if r != 3]
        assert target[0] == survivors[0], "the preferred leader is a replica that was already there"
    assert replica_counts(parts, proposal.targets)[3] == 0
    assert proposal.data_to_move_bytes == 9 * 1000
    assert proposal.num_leader_movements == sum(1 for p in on_3 if p.replicas[0] == 3)
    result = proposal.optimization_result(load_config_map="drain-3")
    assert result["numReplicaMovements"] == 9 and result["dataToMoveMB"] == 1
    assert result["onDemandBalancednessScoreAfter"] == 100.0 > result["onDemandBalancednessScoreBefore"]


def test_add_brokers_fills_the_new_broker_to_its_fair_share_only() -> None:
    """A new empty broker 3 gets total/4 replicas, taken from the others; nothing else moves."""
    parts = layout(12, 3)  # 36 replicas on 0..2
    proposal = propose("add-brokers", [3], NO_RACKS, parts)
    counts = replica_counts(parts, proposal.targets)
    assert counts[3] == 9 and proposal.num_replica_movements == 9
    assert sorted(counts.values()) == [9, 9, 9, 9]
    assert all(len(set(t)) == 3 for t in proposal.targets.values())


def test_full_evens_out_replica_counts() -> None:
    """full: the counts end at most one apart; an already even cluster gets an empty proposal."""
    parts = layout(8, 4) + [PartitionLoad("u", p, (0, 1, 2)) for p in range(6)]  # 3 gets none of "u"
    assert sorted(replica_counts(parts, {}).values()) == [6, 12, 12, 12]
    proposal = propose("full", [], NO_RACKS, parts)
    counts = replica_counts(parts, proposal.targets)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert proposal.num_replica_movements == counts[3] - 6, "only moves onto the emptiest broker were needed"
    assert propose("full", [], NO_RACKS, layout(8, 4)).num_replica_movements == 0


def test_moves_never_lower_the_racks_a_partition_spans() -> None:
    """With racks, a drained replica goes to a rack the partition does not use yet."""
    racks: dict[int, str | None] = {0: "zone-0", 1: "zone-1", 2: "zone-2", 3: "zone-0"}
    parts = [PartitionLoad("t", 0, (1, 2, 3)), PartitionLoad("t", 1, (3, 1, 2))]
    proposal = propose("remove-brokers", [3], racks, parts)
    assert proposal.targets[("t", 0)] == (1, 2, 0)
    assert proposal.targets[("t", 1)] == (1, 2, 0)


@pytest.mark.parametrize(("mode", "brokers", "reason", "words"), [
    ("remove-brokers", [], "InvalidResourceException", "brokers list is mandatory"),
    ("add-brokers", [7], "CruiseControlRestException", "[7] do not exist"),
    ("remove-disks", [], "InvalidResourceException", "valid modes: full, add-brokers, remove-brokers"),
    ("remove-brokers", [1, 2], "CruiseControlRestException", "Not enough brokers"),
])
def test_impossible_requests_are_refused_with_the_reason(mode: str, brokers: list[int], reason: str,
                                                         words: str) -> None:
    with pytest.raises(ProposalError) as refused:
        propose(mode, brokers, NO_RACKS, layout(4, 4))
    assert refused.value.reason == reason
    assert words in str(refused.value)


def test_balancedness_is_100_when_even_and_falls_with_skew() -> None:
    assert balancedness({0: 3, 1: 3, 2: 3}, [0, 1, 2]) == 100.0
    assert balancedness({0: 9, 1: 0, 2: 0}, [0, 1, 2]) < balancedness({0: 5, 1: 2, 2: 2}, [0, 1, 2]) < 100.0


def test_batches_bound_the_moves_per_broker() -> None:
    """Five moves off broker 3 with at most 2 per broker: three batches, none touching a broker thrice."""
    moves = [(("t", p), (0, 3), (0, 1 + p % 2)) for p in range(5)]
    out = batches(moves, 2)
    assert [len(b) for b in out] == [2, 2, 1]
    for batch in out:
        touched = Counter(b for _, before, after in batch for b in set(before) ^ set(after))
        assert max(touched.values()) <= 2


def test_sandbox_resources_add_a_broker_pool_racks_and_cruise_control() -> None:
    """up --brokers 3 --broker-only 0 --racks 3 --cruise-control: the shapes the bot will read."""
    pool, brokers, kafka = kafka_resources(name="c", namespace="k", brokers=3, version="4.3.1", broker_only=0,
                                           racks=3, cruise_control=True)
    assert pool["metadata"]["name"] == "dual-role" and pool["spec"]["replicas"] == 3
    assert brokers["metadata"]["name"] == "brokers" and brokers["spec"] == {
        "replicas": 0, "roles": ["broker"],
        "storage": {"type": "persistent-claim", "size": "1Gi", "deleteClaim": True}}
    assert brokers["metadata"]["annotations"]["strimzi.io/next-node-ids"] == "[3-99]"
    assert kafka["spec"]["kafka"]["rack"] == {"topologyKey": "topology.kubernetes.io/zone"}
    assert kafka["spec"]["cruiseControl"] == {}
    plain = kafka_resources(name="c", namespace="k", brokers=3, version="4.3.1")
    assert [r["kind"] for r in plain] == ["KafkaNodePool", "Kafka"]
    assert "rack" not in plain[1]["spec"]["kafka"] and "cruiseControl" not in plain[1]["spec"]
    assert [zone_of(i, 3) for i in range(5)] == ["zone-0", "zone-1", "zone-2", "zone-0", "zone-1"]
