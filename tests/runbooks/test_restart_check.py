"""can_restart looks at every partition the broker hosts, wherever it sits in the metadata; the
go/no-go report counts partitions at min ISR and names fragile topics by their own min ISR."""

from __future__ import annotations

from runbooks.rules.health import assess, can_restart, rf_at_or_below_min_isr

from .builders import part, snapshot


def test_a_partition_the_broker_does_not_host_does_not_end_the_check() -> None:
    """The first partition is on other brokers; the one after it is at min ISR on broker 3: not safe."""
    snap = snapshot(part("a", 0, leader=0, replicas=(0, 1, 2), isr=(0, 1, 2)),
                    part("b", 0, leader=3, replicas=(1, 2, 3), isr=(2, 3)), brokers=(0, 1, 2, 3))
    check = can_restart(snap, 3)
    assert not check.ok
    assert [r.partition for r in check.at_risk] == ["b-0"]


def test_assess_counts_led_partitions_at_min_isr_only() -> None:
    """At min ISR: a leader and exactly min ISR in sync; a leaderless one is under min ISR instead."""
    snap = snapshot(part("t", 0, leader=0, replicas=(0, 1, 2), isr=(0, 1)),
                    part("t", 1, leader=1, replicas=(0, 1, 2), isr=(1, 2)),
                    part("t", 2, leader=0, replicas=(0, 1, 2), isr=(0, 1, 2)),
                    part("t", 3, leader=None, replicas=(0, 1, 2), isr=(0, 1)), default_min_isr=2)
    report = assess(snap, expected_brokers=(0, 1, 2))
    assert (report.at_min_isr, report.under_min_isr) == (2, 1)


def test_fragile_topics_are_judged_by_their_own_min_isr() -> None:
    """RF 3 with min ISR 3 (its override) is fragile; RF 3 under the default 2 is not; six are listed as five."""
    snap = snapshot(part("strict", 0, leader=0, replicas=(0, 1, 2), isr=(0, 1, 2)),
                    part("plain", 0, leader=0, replicas=(0, 1, 2), isr=(0, 1, 2)),
                    min_isr={"strict": 3}, default_min_isr=2)
    assert rf_at_or_below_min_isr(snap) == ["strict"]
    six = snapshot(*(part(f"t{n}", 0, leader=0, replicas=(0,), isr=(0,)) for n in range(6)), default_min_isr=1)
    [warning] = assess(six, expected_brokers=(0, 1, 2)).warnings
    assert warning.endswith("acks=all producers): t0, t1, t2, t3, t4")


def test_missing_brokers_are_listed_readably() -> None:
    report = assess(snapshot(brokers=(0,)), expected_brokers=(0, 1, 2))
    assert report.problems == ("brokers missing: 1, 2",)
