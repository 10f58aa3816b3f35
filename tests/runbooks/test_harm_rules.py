"""The pause rules of runbooks/rules/harm.py on their own: the operator's fatal verdicts, the restart
allowance derived from the brokers' own start-up times, and its boundary."""

from __future__ import annotations

import pytest

from runbooks.rules.harm import NO_SAMPLE_S, RESTART_FLOOR_S, Allowance, fatal_condition, overdue, restart_allowance

pytestmark = pytest.mark.timeout(5)


@pytest.mark.parametrize("reason", ["FatalProblem", "TimeoutException", "InvalidResourceException",
                                    "KafkaUpgradeException", "UnsupportedKafkaVersionException"])
def test_a_fatal_notready_on_the_latest_generation_is_harm(reason: str) -> None:
    """NotReady with a reason the operator does not retry its way out of, for the generation that
    holds the change: the sentence names the generation, the reason and the operator's message."""
    text = fatal_condition(ready=False, reason=reason, message="Error while waiting for restarted pod c-kafka-1 "
                           "to become ready", generation=7, observed_generation=7)
    assert text == (f"the Kafka resource is NotReady at generation 7: {reason}: Error while waiting for restarted "
                    "pod c-kafka-1 to become ready")


def test_a_notready_older_than_the_change_or_a_retried_problem_is_not_harm() -> None:
    """A verdict on an older generation says nothing about the change (the status is written when a
    reconciliation ends); UnforceableProblem is the operator waiting for canRoll; Ready is fine."""
    assert fatal_condition(ready=False, reason="FatalProblem", message="x", generation=8, observed_generation=7) is None
    assert fatal_condition(ready=False, reason="UnforceableProblem", message="Pod c-kafka-2 cannot be updated right "
                           "now.", generation=7, observed_generation=7) is None
    assert fatal_condition(ready=True, reason="FatalProblem", message="x", generation=7, observed_generation=7) is None


def test_a_crash_loop_named_in_any_notready_message_is_harm() -> None:
    """Whatever the reason, a message saying a container is in CrashLoopBackOff is a crash loop."""
    text = fatal_condition(ready=False, reason="KafkaRollerException", message="pod c-kafka-1 is in CrashLoopBackOff",
                           generation=3, observed_generation=3)
    assert text is not None and "CrashLoopBackOff" in text


def test_a_long_operator_message_is_cut_in_the_pause_reason() -> None:
    """The sandbox operator appends a broker log excerpt: the reason keeps its start only."""
    text = fatal_condition(ready=False, reason="FatalProblem", message="Pod x did not become ready; " + "log " * 500,
                           generation=1, observed_generation=1)
    assert text is not None and len(text) < 500 and text.endswith("…")


def test_the_allowance_is_three_times_the_slowest_start_with_a_floor() -> None:
    """Brokers that started in 10 s and 30 s allow 90 s, naming the slowest; fast starts allow the
    60 s floor; no broker reporting a start-up time falls back to Strimzi's 300 s."""
    allowance = restart_allowance({0: 10.0, 2: 30.0})
    assert allowance.seconds == 90.0
    assert "30 s, broker 2" in allowance.basis and "3 x" in allowance.basis
    assert restart_allowance({0: 4.0, 1: 12.0}).seconds == RESTART_FLOOR_S
    fallback = restart_allowance({})
    assert fallback.seconds == NO_SAMPLE_S and "no broker pod reports" in fallback.basis


def test_overdue_is_strictly_past_the_allowance() -> None:
    """At the allowance exactly a restart is still in time; a moment later it is not."""
    allowance = Allowance(90.0, "test")
    assert not overdue(89.9, allowance)
    assert not overdue(90.0, allowance)
    assert overdue(90.001, allowance)
