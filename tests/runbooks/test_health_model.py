"""The rest of the health model on hand-built snapshots: liveness, effective min ISR, RF <= min ISR
topics, leaderless partitions, reassignments in flight, the quorum as a whole, and ``assess``."""

from __future__ import annotations

from runbooks.rules.health import (
    Liveness,
    QuorumInfo,
    assess,
    broker_liveness,
    can_restart,
    degraded_besides,
    effective_min_isr,
    offline,
    offline_replicas,
    quorum_health,
    rf_at_or_below_min_isr,
    under_min_isr,
)

from .builders import part, snapshot, voter

FULL = (0, 1, 2)


def names(partitions: list) -> list[str]:  # type: ignore[type-arg]
    return [p.name for p in partitions]


def test_liveness_tells_live_fenced_and_missing_brokers_apart() -> None:
    """Expected brokers are live, fenced (registered, no heartbeat) or missing (not registered); strays show too."""
    snap = snapshot(brokers=(0, 1, 5), fenced=(1,))
    assert broker_liveness(snap, [0, 1, 2]) == {0: Liveness.LIVE, 1: Liveness.FENCED, 2: Liveness.MISSING,
                                                5: Liveness.LIVE}


def test_offline_replicas_are_those_on_fenced_or_unknown_brokers() -> None:
    """A replica on a fenced or unregistered broker is offline, per partition."""
    snap = snapshot(part("a", 0, leader=0, replicas=(0, 1, 2), isr=(0,)), part("a", 1, leader=0, replicas=(0, 3),
                                                                                isr=(0,)), fenced=(1,))
    assert offline_replicas(snap) == {"a-0": (1,), "a-1": (3,)}


def test_effective_min_isr_is_capped_by_the_replication_factor() -> None:
    """min(min.insync.replicas, RF): what Kafka's UnderMinIsr/AtMinIsr gauges compare with."""
    snap = snapshot(part("rf1", 0, leader=0, replicas=(0,), isr=(0,)), part("rf3", 0, leader=0, replicas=FULL,
                                                                             isr=FULL), default_min_isr=2)
    assert [effective_min_isr(snap, p) for p in snap.partitions] == [1, 2]


def test_rf_at_or_below_min_isr_topics_are_a_warning_not_a_problem() -> None:
    """Topics whose RF <= min ISR can never survive a restart: listed, ignored by can_restart, not "sick"."""
    snap = snapshot(
        part("fragile", 0, leader=0, replicas=(0, 1), isr=(0, 1)),
        part("single", 0, leader=1, replicas=(1,), isr=(1,)),
        part("safe", 0, leader=2, replicas=FULL, isr=FULL),
        default_min_isr=2,
    )
    assert rf_at_or_below_min_isr(snap) == ["fragile", "single"]
    assert can_restart(snap, 0).ignored == ("fragile-0",)
    report = assess(snap, expected_brokers=FULL)
    assert report.ok and report.under_min_isr == 0
    assert report.warnings and "fragile, single" in report.warnings[0]


def test_leaderless_partitions_are_offline_under_min_isr_and_a_problem() -> None:
    """No leader: offline and under min ISR (even with a full ISR), and assess refuses the cluster."""
    leaderless = part("orders", 0, leader=None, replicas=FULL, isr=FULL)
    snap = snapshot(leaderless)
    assert names(offline(snap)) == names(under_min_isr(snap)) == ["orders-0"]
    report = assess(snap, expected_brokers=FULL)
    assert not report.ok
    assert "1 offline partitions (e.g. orders-0)" in report.problems


def test_degraded_besides_ignores_only_the_broker_being_rolled() -> None:
    """While broker 1 restarts, its absence from ISRs is the roll; any other missing replica is sickness."""
    snap = snapshot(
        part("a", 0, leader=0, replicas=FULL, isr=(0, 2)),  # only 1 missing: the roll
        part("a", 1, leader=2, replicas=FULL, isr=(2,)),  # 0 missing too: sick
        part("a", 2, leader=None, replicas=(1,), isr=()),  # RF 1 on broker 1: leaderless because of the roll
        part("a", 3, leader=None, replicas=(1, 2), isr=(2,)),  # leaderless although 2 could lead: sick
    )
    assert names(degraded_besides(snap, 1)) == ["a-1", "a-3"]


def test_reassignment_in_flight_is_reported_but_its_adding_replicas_are_not_missing() -> None:
    """Adding replicas outside the ISR are neither URP nor "sick besides"; the reassignment itself blocks a roll."""
    moving = part("orders", 0, leader=0, replicas=(0, 1, 2, 3), isr=FULL, adding=(3,), removing=(2,))
    snap = snapshot(moving, brokers=(0, 1, 2, 3))
    assert degraded_besides(snap, 1) == []
    report = assess(snap, expected_brokers=(0, 1, 2, 3))
    assert report.under_replicated == 0 and report.reassigning == 1
    assert report.problems == ("1 partition reassignments in flight",)


def test_quorum_health_needs_a_leader_and_a_caught_up_majority() -> None:
    """The quorum is healthy with a leader and a majority (leader included) caught up within the fetch timeout."""
    assert not quorum_health(QuorumInfo(leader_id=None, voters=(voter(0, 100),))).ok
    good = QuorumInfo(leader_id=0, voters=(voter(0, 10_000), voter(1, 9_500), voter(2, 1_000)))
    assert quorum_health(good).ok and quorum_health(good).caught_up == 2
    bad = QuorumInfo(leader_id=0, voters=(voter(0, 10_000), voter(1, 5_000), voter(2, None)))
    report = quorum_health(bad)
    assert not report.ok and report.reason == "only 1 of 3 controllers are caught up; 2 needed"


def test_assess_names_every_problem_and_summarises_a_healthy_cluster() -> None:
    """assess: missing and fenced brokers, URP, under min ISR, quorum; a clean cluster gets a one-line summary."""
    sick = snapshot(part("a", 0, leader=0, replicas=FULL, isr=(0,)), brokers=(0, 1), fenced=(1,),
                    quorum=QuorumInfo(leader_id=None))
    report = assess(sick, expected_brokers=FULL)
    assert report.problems == (
        "brokers missing: 2", "brokers fenced: 1", "1 under-replicated partitions (e.g. a-0)",
        "1 partitions under min ISR (e.g. a-0)", "the KRaft quorum has no leader")
    healthy = snapshot(part("a", 0, leader=0, replicas=FULL, isr=FULL),
                       quorum=QuorumInfo(leader_id=0, voters=(voter(0, 5), voter(1, 5), voter(2, 5))))
    summary = assess(healthy, expected_brokers=FULL).summary()
    assert summary.startswith("3 brokers live, 0 URP, 0 under min ISR, 0 offline, no reassignment, quorum leader 0")
