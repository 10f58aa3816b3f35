"""What the health rules say when they refuse: the pre-flight problems, the go/no-go report and the
at-risk summary name at most a few examples, joined readably, and say what is not Ready even without
a reason from the operator."""

from __future__ import annotations

from runbooks.rules.health import PartitionRisk, RestartCheck, assess, preflight

from .builders import part, snapshot

# Four partitions of each kind, so the "e.g." lists show their limit of three.
FOUR_URP = tuple(part("urp", n, leader=0, replicas=(0, 1, 2), isr=(0, 1)) for n in range(4))
FOUR_OFFLINE = tuple(part("gone", n, leader=None, replicas=(0, 1, 2), isr=(0, 1, 2)) for n in range(4))


def test_preflight_names_three_examples_and_every_fenced_broker() -> None:
    """Not Ready without a reason, 4 URP and 4 offline partitions (three named each), two fenced brokers."""
    snap = snapshot(*FOUR_URP, *FOUR_OFFLINE, brokers=(0, 1, 2, 3, 4), fenced=(3, 4))
    report = preflight(snap, kafka_ready=False)
    assert report.problems == (
        "the Kafka resource is not Ready",
        "brokers fenced: 3, 4",
        "4 under-replicated partitions (e.g. urp-0, urp-1, urp-2)",
        "4 partitions under min ISR (e.g. gone-0, gone-1, gone-2)",
        "4 offline partitions (e.g. gone-0, gone-1, gone-2)",
    )
    assert report.summary == "; ".join(report.problems)


def test_assess_names_three_examples_of_each_problem() -> None:
    """The go/no-go report lists three examples of under-replicated, under-min-ISR and offline partitions."""
    report = assess(snapshot(*FOUR_URP, *FOUR_OFFLINE, default_min_isr=3), expected_brokers=(0, 1, 2))
    assert report.problems == (
        "4 under-replicated partitions (e.g. urp-0, urp-1, urp-2)",
        "8 partitions under min ISR (e.g. urp-0, urp-1, urp-2)",
        "4 offline partitions (e.g. gone-0, gone-1, gone-2)",
    )


def _risks(n: int) -> RestartCheck:
    return RestartCheck(broker=1, ok=False, at_risk=tuple(
        PartitionRisk(partition=f"t-{i}", reason="at min ISR") for i in range(n)))


def test_the_at_risk_summary_names_five_and_counts_the_rest() -> None:
    """Up to five partitions are named; beyond that, how many more."""
    assert RestartCheck(broker=1, ok=True).summary() == "At risk: none."
    assert _risks(5).summary() == ("At risk: t-0 (at min ISR), t-1 (at min ISR), t-2 (at min ISR), "
                                   "t-3 (at min ISR), t-4 (at min ISR).")
    assert _risks(6).summary().endswith("t-4 (at min ISR) and 1 more.")
    assert _risks(7).summary() == ("At risk: t-0 (at min ISR), t-1 (at min ISR), t-2 (at min ISR), "
                                   "t-3 (at min ISR), t-4 (at min ISR) and 2 more.")
