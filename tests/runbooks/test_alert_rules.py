"""The alert lifecycle as a pure decision (``runbooks.alerting.lifecycle.step``): the `for` window, one post
then edits, resolve, cooldown for flaps, snooze, and the lag growth rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from runbooks.alerting.lifecycle import (
    Action,
    AlertDecision,
    AlertKey,
    AlertRules,
    AlertState,
    Condition,
    LagRule,
    MessageRef,
    Observation,
    Phase,
    alert_id,
    expired,
    lag_grew,
    snooze,
    step,
)

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
KEY = AlertKey(cluster="prod", condition=Condition.UNDER_REPLICATED, subject="broker-2")


def seen(value: float = 3) -> Observation:
    return Observation(key=KEY, value=value, detail=f"{value} partitions")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run(state: AlertState | None, observed: Observation | None, when: float, *, for_s: float = 0,
        cooldown_s: float = 600, update_s: float = 30) -> AlertDecision:
    decision = step(state, observed, now=at(when), for_s=for_s, cooldown_s=cooldown_s, update_interval_s=update_s)
    if decision.action is Action.POST and decision.state is not None:  # what the evaluator does after posting
        return AlertDecision(state=decision.state.model_copy(update={"message": MessageRef(id="m1")}),
                        action=decision.action)
    return decision


def test_a_condition_fires_only_after_its_for_window() -> None:
    """Active but younger than `for`: pending, nothing posted; held long enough: one post."""
    d = run(None, seen(), 0, for_s=10)
    assert d.state is not None and d.state.phase is Phase.PENDING and d.action is Action.NONE
    d = run(d.state, seen(), 9, for_s=10)
    assert d.action is Action.NONE
    d = run(d.state, seen(), 10, for_s=10)
    assert d.state is not None and d.state.phase is Phase.FIRING and d.action is Action.POST
    assert d.state.fired_at == at(10) and d.state.since == at(0) and d.state.occurrence == 1


def test_a_pending_condition_that_clears_is_forgotten() -> None:
    """Nobody was told, so nothing is kept."""
    d = run(None, seen(), 0, for_s=10)
    assert run(d.state, None, 5, for_s=10).state is None


def test_while_firing_the_message_is_edited_not_posted_again() -> None:
    """A changed value edits the same message, at most once per update interval."""
    d = run(None, seen(3), 0)
    d = run(d.state, seen(5), 10)
    assert d.action is Action.NONE  # changed, but within the update interval
    d = run(d.state, seen(5), 31)
    assert d.action is Action.UPDATE and d.state is not None and d.state.value == 5
    assert d.state.trend == "rising" and d.state.peak == 5
    assert run(d.state, seen(5), 90).action is Action.NONE  # unchanged: no edit


def test_small_moves_of_a_measure_do_not_edit() -> None:
    """A stopped consumer's lag grows every poll; the message follows 5 % moves, not every second."""
    lag = AlertKey(cluster="prod", condition=Condition.CONSUMER_LAG, subject="group:g")
    d = step(None, Observation(key=lag, value=1000.0, detail=""), now=at(0), for_s=0, cooldown_s=0,
             update_interval_s=0)
    state = d.state.model_copy(update={"message": MessageRef(id="m")}) if d.state else None
    small = step(state, Observation(key=lag, value=1030.0, detail=""), now=at(5), for_s=0, cooldown_s=0,
                 update_interval_s=0)
    big = step(state, Observation(key=lag, value=1060.0, detail=""), now=at(5), for_s=0, cooldown_s=0,
               update_interval_s=0)
    assert (small.action, big.action) == (Action.NONE, Action.UPDATE)


def test_clearing_resolves_the_message_in_place() -> None:
    """A fired alert that clears edits its message to resolved and is kept for the cooldown."""
    d = run(None, seen(), 0)
    d = run(d.state, None, 60)
    assert d.action is Action.UPDATE and d.state is not None
    assert d.state.phase is Phase.RESOLVED and d.state.resolved_at == at(60)


def test_a_flap_within_the_cooldown_reopens_the_same_message() -> None:
    """Resolved, then active again before the cooldown ends: the old message is edited, never a new post."""
    d = run(None, seen(), 0)
    d = run(d.state, None, 60)
    d = run(d.state, seen(), 120)
    assert d.action is Action.UPDATE and d.state is not None and d.state.phase is Phase.FIRING
    assert d.state.flaps == 1 and d.state.occurrence == 1 and d.state.message == MessageRef(id="m1")


def test_after_the_cooldown_a_new_occurrence_posts_anew() -> None:
    """Once the cooldown has passed, a new occurrence gets a message of its own."""
    d = run(None, seen(), 0)
    d = run(d.state, None, 60)
    d = run(d.state, seen(), 60 + 601)
    assert d.action is Action.POST and d.state is not None and d.state.occurrence == 2 and d.state.flaps == 0


def test_a_snoozed_alert_posts_nothing_then_posts_when_the_snooze_ends() -> None:
    """Snooze mutes: firing while snoozed is recorded only; still firing after the snooze: posted then."""
    d = run(None, seen(), 0, for_s=5)
    assert d.state is not None
    state = snooze(d.state, until=at(100), by="U1")
    d = run(state, seen(), 10, for_s=5)
    assert d.action is Action.NONE and d.state is not None and d.state.phase is Phase.FIRING
    assert run(d.state, seen(), 50, for_s=5).action is Action.NONE
    d = run(d.state, seen(), 101, for_s=5)
    assert d.action is Action.POST and d.state is not None and d.state.snoozed_by is None


def test_snoozing_a_posted_alert_keeps_editing_it_but_a_flap_posts_nothing() -> None:
    """Edits notify nobody, so a posted message still follows; a snoozed re-fire after the cooldown does not post."""
    d = run(None, seen(), 0)
    assert d.state is not None
    state = snooze(d.state, until=at(3600), by="U1")
    d = run(state, None, 60)
    assert d.action is Action.UPDATE  # resolved in place
    d = run(d.state, seen(), 60 + 601)
    assert d.action is Action.NONE and d.state is not None and d.state.phase is Phase.FIRING


def test_a_snoozed_pending_alert_keeps_its_snooze_when_it_clears() -> None:
    """The snooze must outlive a blip, or the next blip would post."""
    d = run(None, seen(), 0, for_s=60)
    assert d.state is not None
    d = run(snooze(d.state, until=at(600), by="U1"), None, 10, for_s=60)
    assert d.state is not None and d.state.snoozed_by == "U1"


def test_resolved_alerts_expire_after_their_cooldown_and_a_day() -> None:
    """History is kept a day (or the cooldown, or a snooze, if longer), then forgotten."""
    d = run(None, seen(), 0)
    d = run(d.state, None, 10)
    assert d.state is not None
    assert not expired(d.state, at(3600), cooldown_s=600)
    assert expired(d.state, at(10 + 86400), cooldown_s=600)
    assert not expired(snooze(d.state, until=at(10 + 90000), by="U1"), at(10 + 86400), cooldown_s=600)


def test_alert_ids_are_stable_short_and_distinct() -> None:
    """The same key always has the same id; different keys differ."""
    assert KEY.id == alert_id("prod", Condition.UNDER_REPLICATED, "broker-2")
    assert KEY.id.startswith("a-") and len(KEY.id) == 10
    assert KEY.id != alert_id("prod", Condition.UNDER_REPLICATED, "broker-3")


def test_health_windows_lengthen_while_a_runbook_runs() -> None:
    """A roll takes brokers down on purpose: health alerts then wait `during_run_for` first."""
    rules = AlertRules()
    assert rules.for_window(Condition.UNDER_REPLICATED, run_active=False) == 0
    assert rules.for_window(Condition.UNDER_REPLICATED, run_active=True) == rules.during_run_for_s
    assert rules.for_window(Condition.STRIMZI_RESTART, run_active=True) == rules.during_run_for_s
    assert rules.for_window(Condition.CONSUMER_LAG, run_active=True) == rules.consumer_lag.for_s


def test_lag_growth_rule_needs_both_the_increase_and_the_factor() -> None:
    """A spike: grew by min_increase and by factor over the window's smallest value."""
    rule = LagRule(growth_window_s=60, growth_min_increase=1000, growth_factor=3)
    assert lag_grew([(0, 100), (30, 50), (60, 1500)], 60, rule)
    assert not lag_grew([(0, 10_000), (60, 12_000)], 60, rule)  # +2000 but only 1.2x
    assert not lag_grew([(0, 10), (60, 500)], 60, rule)  # 50x but only +490
    assert not lag_grew([(0, 0), (200, 5000)], 200, rule)  # the low point left the window
    assert not lag_grew([(0, 0), (60, 5000)], 60, LagRule(growth_min_increase=None))


# -- properties over any history --------------------------------------------------------------------

MICROSECOND = 1e-6
_events = st.lists(st.tuples(st.booleans(), st.floats(0.5, 400)), min_size=1, max_size=40)


@settings(max_examples=300, deadline=None)
@given(_events, st.sampled_from([0.0, 5.0, 30.0]), st.sampled_from([0.0, 60.0, 600.0]))
def test_posts_follow_the_rules_over_any_history(
    events: list[tuple[bool, float]], for_s: float, cooldown_s: float,
) -> None:
    """Whatever the sequence: a post only after `for_s` of continuous activity, never two posts
    without a resolve in between, and a new post after a resolve only once the cooldown passed."""
    state: AlertState | None = None
    clock = 0.0
    active_since: float | None = None
    last_resolve: float | None = None
    posted_since_resolve = False
    for active, gap in events:
        clock += gap
        if active and active_since is None:
            active_since = clock
        if not active:
            active_since = None
        d = run(state, seen() if active else None, clock, for_s=for_s, cooldown_s=cooldown_s)
        if d.action is Action.POST:
            # The rules measure in datetimes (microseconds), this model in float seconds: a sum of
            # gaps may land a rounding below the bound that the datetimes reached exactly.
            assert active_since is not None and clock - active_since >= for_s - MICROSECOND
            assert not posted_since_resolve
            assert last_resolve is None or clock - last_resolve >= cooldown_s - MICROSECOND
            posted_since_resolve = True
        if d.state is not None and d.state.phase is Phase.RESOLVED and (state is None or state.phase is Phase.FIRING):
            last_resolve = clock
            posted_since_resolve = False
        if d.action is Action.UPDATE:
            assert d.state is not None and d.state.message is not None
        state = d.state
