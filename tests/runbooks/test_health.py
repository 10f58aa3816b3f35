"""Health rules over hand-built snapshots (docs/kafka-ops.md §2 and §4; Strimzi's KafkaAvailability and its
quorum check)."""

from __future__ import annotations

import pytest

from runbooks.rules.health import (
    PartitionInfo,
    QuorumInfo,
    at_min_isr,
    can_restart,
    can_roll_controller,
    offline,
    out_of_isr,
    preflight,
    reassigning,
    restart_order,
    under_min_isr,
    under_replicated,
)

from .builders import part, snapshot, voter


def names(partitions: list[PartitionInfo]) -> list[str]:
    return [p.name for p in partitions]


# -- under-replicated, with the reassignment correction -------------------------------------------

HEALTHY = part("orders", 0, leader=0, replicas=(0, 1, 2), isr=(0, 1, 2))
MOVING_OK = part("orders", 1, leader=0, replicas=(0, 1, 2, 3), isr=(0, 1, 2), adding=(3,), removing=(2,))
MOVING_SICK = part("orders", 2, leader=0, replicas=(0, 1, 2, 3), isr=(0, 1), adding=(3,))
PLAIN_SICK = part("orders", 3, leader=0, replicas=(0, 1, 2), isr=(0, 1))


def test_healthy_partition_is_not_under_replicated() -> None:
    """A partition whose ISR holds every replica is not under-replicated."""
    assert under_replicated(snapshot(HEALTHY)) == []


def test_adding_replicas_outside_isr_are_not_under_replicated() -> None:
    """During a reassignment, replicas still being added and not yet in the ISR do not make a partition URP."""
    assert MOVING_OK.effective_rf == 3
    assert under_replicated(snapshot(MOVING_OK, brokers=(0, 1, 2, 3))) == []


def test_reassigning_partition_missing_a_non_adding_replica_is_under_replicated() -> None:
    """A reassigning partition that also lost one of its existing replicas from the ISR is under-replicated."""
    assert names(under_replicated(snapshot(MOVING_SICK, brokers=(0, 1, 2, 3)))) == ["orders-2"]


def test_plain_missing_replica_is_under_replicated() -> None:
    """A partition with a replica out of its ISR (no reassignment) is under-replicated."""
    snap = snapshot(HEALTHY, MOVING_OK, MOVING_SICK, PLAIN_SICK, brokers=(0, 1, 2, 3))
    assert names(under_replicated(snap)) == ["orders-2", "orders-3"]


def test_reassigning_and_out_of_isr() -> None:
    """reassigning() lists partitions with adding or removing replicas; out_of_isr() those missing a broker."""
    snap = snapshot(HEALTHY, MOVING_OK, MOVING_SICK, PLAIN_SICK, brokers=(0, 1, 2, 3))
    assert names(reassigning(snap)) == ["orders-1", "orders-2"]
    assert names(out_of_isr(snap, 2)) == ["orders-2", "orders-3"]
    assert names(out_of_isr(snap, 3)) == ["orders-1", "orders-2"]
    assert out_of_isr(snap, 0) == []


# -- min ISR and offline --------------------------------------------------------------------------

def test_under_min_isr_includes_leaderless() -> None:
    """Under min ISR: ISR smaller than the topic's min.insync.replicas, or no leader at all."""
    snap = snapshot(
        part("a", 0, leader=0, replicas=(0, 1, 2), isr=(0,)),  # 1 < 2
        part("a", 1, leader=None, replicas=(0, 1, 2), isr=(0, 1, 2)),  # leaderless
        part("a", 2, leader=0, replicas=(0, 1, 2), isr=(0, 1)),  # at min ISR, not under
        part("b", 0, leader=0, replicas=(0, 1, 2), isr=(0, 1)),  # b has min ISR 3
        default_min_isr=2,
        min_isr={"b": 3},
    )
    assert names(under_min_isr(snap)) == ["a-0", "a-1", "b-0"]


def test_at_min_isr() -> None:
    """At min ISR: ISR size equals the topic's min.insync.replicas (one more failure blocks acks=all)."""
    snap = snapshot(
        part("a", 0, leader=0, replicas=(0, 1, 2), isr=(0, 1)),
        part("a", 1, leader=0, replicas=(0, 1, 2), isr=(0, 1, 2)),
        part("a", 2, leader=0, replicas=(0, 1, 2), isr=(0,)),
        part("c", 0, leader=0, replicas=(0, 1, 2), isr=(0,)),
        min_isr={"c": 1},
    )
    assert names(at_min_isr(snap)) == ["a-0", "c-0"]


def test_offline_partitions() -> None:
    """Offline: no leader, or the leader on a fenced broker or on a broker that is not registered."""
    snap = snapshot(
        part("a", 0, leader=None, replicas=(0, 1, 2), isr=()),
        part("a", 1, leader=1, replicas=(0, 1, 2), isr=(1,)),  # broker 1 is fenced
        part("a", 2, leader=7, replicas=(7, 0), isr=(7,)),  # broker 7 is gone
        part("a", 3, leader=0, replicas=(0, 1, 2), isr=(0, 1, 2)),
        fenced=(1,),
    )
    assert names(offline(snap)) == ["a-0", "a-1", "a-2"]
    assert snap.live_broker_ids == frozenset({0, 2})


# -- can_restart: Strimzi's KafkaAvailability.canRoll ---------------------------------------------

def test_can_restart_ignores_topics_with_rf_at_or_below_min_isr() -> None:
    """Partitions with RF <= minISR can never be rolled safely, so they are reported as ignored, not blocking."""
    snap = snapshot(
        part("rf2", 0, leader=1, replicas=(1, 2), isr=(1,)),  # RF 2, min ISR 2, even under min ISR
        part("rf1", 0, leader=1, replicas=(1,), isr=(1,)),
    )
    check = can_restart(snap, 1)
    assert check.ok
    assert check.at_risk == ()
    assert check.ignored == ("rf2-0", "rf1-0")
    assert check.summary() == "At risk: none."


def test_isr_at_min_with_broker_in_isr_blocks() -> None:
    """ISR == minISR with the broker in the ISR blocks its restart (acks=all producers would stall)."""
    snap = snapshot(part("orders", 0, leader=1, replicas=(0, 1, 2), isr=(1, 2)))
    check = can_restart(snap, 1)
    assert not check.ok
    assert [r.partition for r in check.at_risk] == ["orders-0"]
    assert "at min ISR" in check.at_risk[0].reason
    assert "orders-0" in check.summary()


def test_isr_at_min_with_broker_outside_isr_is_ok() -> None:
    """ISR == minISR without the broker in it is safe: restarting it cannot shrink the ISR."""
    snap = snapshot(part("orders", 0, leader=0, replicas=(0, 1, 2), isr=(0, 2)))
    assert can_restart(snap, 1).ok


def test_isr_below_min_with_broker_as_replica_blocks() -> None:
    """ISR < minISR blocks the restart of any broker hosting a replica, in the ISR or not."""
    snap = snapshot(part("orders", 0, leader=0, replicas=(0, 1, 2), isr=(0,)))
    for broker in (0, 1):
        check = can_restart(snap, broker)
        assert not check.ok
        assert "already under min ISR" in check.at_risk[0].reason


def test_broker_not_hosting_the_partition_is_ok() -> None:
    """A broker that hosts none of the at-risk partitions may restart."""
    snap = snapshot(part("orders", 0, leader=0, replicas=(0, 1, 2), isr=(0,)), brokers=(0, 1, 2, 3))
    check = can_restart(snap, 3)
    assert check.ok and check.at_risk == () and check.ignored == ()


def test_healthy_cluster_allows_every_restart() -> None:
    """With every ISR full every broker may restart."""
    snap = snapshot(*[part("t", i, leader=i % 3, replicas=(0, 1, 2), isr=(0, 1, 2)) for i in range(6)])
    assert all(can_restart(snap, b).ok for b in (0, 1, 2))


def test_per_topic_min_isr_is_used() -> None:
    """can_restart uses the topic's own min.insync.replicas, not only the default."""
    p = part("strict", 0, leader=0, replicas=(0, 1, 2, 3), isr=(0, 1, 2))
    assert can_restart(snapshot(p, brokers=(0, 1, 2, 3), default_min_isr=2), 1).ok
    assert not can_restart(snapshot(p, brokers=(0, 1, 2, 3), min_isr={"strict": 3}), 1).ok


def test_restart_summary_is_capped() -> None:
    """The at-risk summary shows five partitions and counts the rest."""
    snap = snapshot(*[part("t", i, leader=1, replicas=(0, 1, 2), isr=(1, 2)) for i in range(8)])
    check = can_restart(snap, 1)
    assert len(check.at_risk) == 8
    assert check.summary().endswith("and 3 more.")
    assert "t-4" in check.summary() and "t-5" not in check.summary()


# -- the KRaft quorum check: Strimzi's KafkaQuorumCheck -------------------------------------------

LEADER_AT = 100_000
LAGGING_QUORUM = QuorumInfo(
    leader_id=0, voters=(voter(0, LEADER_AT), voter(1, LEADER_AT - 500), voter(2, LEADER_AT - 60_000)))


def test_quorum_without_leader_blocks() -> None:
    """No quorum leader: no controller may roll."""
    quorum = QuorumInfo(leader_id=None, voters=(voter(0, 1), voter(1, 1), voter(2, 1)))
    ok, reason = can_roll_controller(quorum, 0)
    assert not ok and "no leader" in reason


def test_single_voter_quorum_may_roll() -> None:
    """A single-voter quorum may roll its only controller (with a warning in the reason)."""
    ok, reason = can_roll_controller(QuorumInfo(leader_id=0, voters=(voter(0, LEADER_AT),)), 0)
    assert ok and "single-voter" in reason


@pytest.mark.parametrize(("node", "expected"), [(2, True), (1, False), (0, False)],
                         ids=["the-lagging-one", "the-caught-up-follower", "the-leader"])
def test_three_voters_one_lagging(node: int, expected: bool) -> None:
    """3 voters, one lagging: only the lagging voter may roll; rolling another leaves no caught-up majority."""
    ok, _ = can_roll_controller(LAGGING_QUORUM, node)
    assert ok is expected


def test_three_voters_all_caught_up() -> None:
    """3 caught-up voters: any one of them may roll."""
    quorum = QuorumInfo(leader_id=1, voters=tuple(voter(n, LEADER_AT - 10 * n) for n in range(3)))
    assert all(can_roll_controller(quorum, n)[0] for n in range(3))


def test_caught_up_is_strictly_within_the_fetch_timeout() -> None:
    """A voter exactly fetch-timeout behind the leader is not caught up."""
    quorum = QuorumInfo(leader_id=0, voters=(voter(0, LEADER_AT), voter(1, LEADER_AT - 2000), voter(2, LEADER_AT)))
    assert not can_roll_controller(quorum, 2)[0]
    assert can_roll_controller(quorum, 2, fetch_timeout_ms=2001)[0]


def test_leader_without_catch_up_time_blocks() -> None:
    """If the leader reports no catch-up time nothing can be judged: not safe."""
    quorum = QuorumInfo(leader_id=0, voters=(voter(0, None), voter(1, 5), voter(2, 5)))
    assert not can_roll_controller(quorum, 1)[0]


def test_non_controller_node_may_roll() -> None:
    """A node that is not a voter is not judged by the quorum rule."""
    assert can_roll_controller(LAGGING_QUORUM, 5)[0]


# -- restart order and preflight ------------------------------------------------------------------

def test_restart_order_puts_the_active_controller_last() -> None:
    """Non-controller brokers restart first in ascending order; the active (quorum leader) controller last."""
    snap = snapshot(brokers=(0, 1, 2, 3), quorum=QuorumInfo(leader_id=2, voters=(voter(2, 1),)), controller=0)
    assert restart_order(snap, [2, 0, 3, 1]) == [0, 1, 3, 2]
    assert restart_order(snap, [3, 1]) == [1, 3]


def test_restart_order_falls_back_to_the_controller_id() -> None:
    """Without quorum information the reported controller id is the one restarted last."""
    assert restart_order(snapshot(controller=0), [0, 1, 2]) == [1, 2, 0]
    assert restart_order(snapshot(), [2, 1, 0]) == [0, 1, 2]


def test_preflight_healthy_cluster() -> None:
    """A Ready cluster with no URP, offline partitions, reassignments or fenced brokers passes pre-flight."""
    report = preflight(snapshot(HEALTHY, quorum=LAGGING_QUORUM), kafka_ready=True)
    assert report.ok
    assert report.problems == ()
    assert "3 brokers" in report.summary and "0 URP" in report.summary


def test_preflight_lists_every_problem() -> None:
    """Pre-flight names each problem: not Ready, then every problem of the shared go/no-go (``assess``):
    fenced brokers, URP, under min ISR, offline, reassignment, no quorum leader."""
    snap = snapshot(
        HEALTHY, MOVING_OK, PLAIN_SICK,
        part("gone", 0, leader=None, replicas=(0, 1, 2), isr=()),
        brokers=(0, 1, 2, 3),
        fenced=(3,),
        quorum=QuorumInfo(leader_id=None),
    )
    report = preflight(snap, kafka_ready=False, kafka_reason="NotReady: rolling")
    assert not report.ok
    assert report.problems == (
        "the Kafka resource is not Ready: NotReady: rolling",
        "brokers fenced: 3",
        "2 under-replicated partitions (e.g. orders-3, gone-0)",
        "1 partitions under min ISR (e.g. gone-0)",
        "1 offline partitions (e.g. gone-0)",
        "1 partition reassignments in flight",
        "the KRaft quorum has no leader",
    )
    assert report.summary == "; ".join(report.problems)


def test_preflight_names_a_missing_broker_and_partitions_under_min_isr() -> None:
    """The restart's pre-flight has the checks upgrade and config have: a broker Strimzi runs that
    Kafka does not know (not registered) and a partition under its min ISR each block it."""
    snap = snapshot(part("thin", 0, leader=0, replicas=(0, 1, 2), isr=(0,)), brokers=(0, 1, 2), default_min_isr=2)
    report = preflight(snap, kafka_ready=True, expected_brokers=(0, 1, 2, 3))
    assert report.problems == (
        "brokers missing: 3",
        "1 under-replicated partitions (e.g. thin-0)",
        "1 partitions under min ISR (e.g. thin-0)",
    )


def test_preflight_does_not_count_a_clean_reassignment_as_urp() -> None:
    """A reassignment in flight is reported as such, not as under-replicated partitions."""
    report = preflight(snapshot(MOVING_OK, brokers=(0, 1, 2, 3)), kafka_ready=True)
    assert report.problems == ("1 partition reassignments in flight",)
