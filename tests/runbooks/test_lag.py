"""The lag math: Kafka Lag Exporter's sample table (insert rules, interpolation) without its
extrapolation, the batch form against the one-at-a-time form, and offset lag clamping."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbooks.alerting.lag import (
    UNKNOWN,
    Insert,
    LagLines,
    SampleTable,
    is_unknown,
    offset_lags,
    seconds_from_timestamp,
)


def table(*points: tuple[int, float], capacity: int = 60) -> SampleTable:
    t = SampleTable(capacity)
    for offset, at in points:
        t.add(offset, at)
    return t


# -- insert rules ---------------------------------------------------------------------------------


def test_samples_are_appended_in_order() -> None:
    """New (offset, time) samples go to the end, oldest first."""
    t = SampleTable()
    assert t.add(10, 100.0) is Insert.APPENDED
    assert t.add(20, 105.0) is Insert.APPENDED
    assert (t.offsets, t.times) == ([10, 20], [100.0, 105.0])


def test_an_older_sample_is_dropped_as_out_of_order() -> None:
    """A sample older than the newest one changes nothing."""
    t = table((10, 100.0), (20, 105.0))
    assert t.add(30, 104.0) is Insert.OUT_OF_ORDER
    assert t.offsets == [10, 20]


def test_a_smaller_offset_is_dropped_as_non_monotonic() -> None:
    """A log end that went back (a recreated topic) is refused; the caller resets the table."""
    t = table((10, 100.0), (20, 105.0))
    assert t.add(15, 110.0) is Insert.NON_MONOTONIC
    assert t.offsets == [10, 20]


def test_an_idle_stretch_costs_two_slots() -> None:
    """A third sample at the same offset moves the newest one's time instead of appending."""
    t = table((10, 100.0), (20, 105.0), (20, 110.0))
    assert t.add(20, 115.0) is Insert.UPDATED
    assert t.add(20, 120.0) is Insert.UPDATED
    assert (t.offsets, t.times) == ([10, 20, 20], [100.0, 105.0, 120.0])


def test_read_every_second_a_table_keeps_samples_spaced_and_its_newest_fresh() -> None:
    """With a spacing, reads closer than it to the previous kept sample move the newest sample
    (so 60 slots still span 60 lag-poll intervals), and a read that far from it is kept."""
    t = SampleTable()
    for second in range(31):  # a topic writing 10 records a second, read every second, spacing 15 s
        t.add(1000 + 10 * second, 100.0 + second, spacing_s=15.0)
    assert (t.offsets, t.times) == ([1000, 1150, 1300], [100.0, 115.0, 130.0])
    assert t.lag_seconds(1155, now=130.0) == pytest.approx(14.5)  # exact: the line holds everywhere


def test_read_every_second_a_log_end_that_stands_keeps_the_time_it_got_there() -> None:
    """Within the spacing, a read at the newest sample's offset changes nothing (the log end was
    there since that sample: moving its time would make consumers look less behind); past the
    spacing it starts an idle stretch."""
    t = SampleTable()
    assert t.add(1000, 100.0, spacing_s=15.0) is Insert.APPENDED
    assert t.add(1100, 101.0, spacing_s=15.0) is Insert.APPENDED
    assert t.add(1200, 102.0, spacing_s=15.0) is Insert.FOLLOWED
    assert t.add(1200, 110.0, spacing_s=15.0) is Insert.KEPT
    assert (t.offsets, t.times) == ([1000, 1200], [100.0, 102.0])
    assert t.add(1200, 116.0, spacing_s=15.0) is Insert.APPENDED
    assert t.add(1200, 117.0, spacing_s=15.0) is Insert.UPDATED
    assert (t.offsets, t.times) == ([1000, 1200, 1200], [100.0, 102.0, 117.0])


def test_the_table_keeps_its_capacity_dropping_the_oldest() -> None:
    """Beyond capacity the oldest sample goes."""
    t = table(*((i * 10, float(i)) for i in range(5)), capacity=3)
    assert t.offsets == [20, 30, 40]


def test_a_table_needs_room_for_a_line() -> None:
    """Fewer than two slots could never interpolate."""
    with pytest.raises(ValueError, match="at least two"):
        SampleTable(1)


# -- lookups --------------------------------------------------------------------------------------


def test_a_committed_offset_is_placed_on_the_line_between_its_neighbours() -> None:
    """Halfway between two samples is halfway in time."""
    t = table((100, 1000.0), (200, 1010.0), (400, 1020.0))
    assert t.time_of(150) == pytest.approx(1005.0)
    assert t.time_of(300) == pytest.approx(1015.0)
    assert t.lag_seconds(300, now=1020.0) == pytest.approx(5.0)


def test_caught_up_is_zero_lag() -> None:
    """At (or past) the newest sample's offset the consumer is not behind."""
    t = table((100, 1000.0), (200, 1010.0))
    assert t.lag_seconds(200, now=1010.0) == 0.0
    assert t.lag_seconds(250, now=1010.0) == 0.0


def test_older_than_the_table_is_unknown_never_extrapolated() -> None:
    """Lag Exporter would extrapolate over the whole window (its issue #496); this says 'cannot tell'."""
    t = table((100, 1000.0), (200, 1010.0))
    assert t.time_of(50) is None
    assert is_unknown(t.lag_seconds(50, now=1010.0))


def test_a_single_sample_only_answers_caught_up() -> None:
    """The first poll after a start cannot place a lagging consumer."""
    t = table((100, 1000.0))
    assert t.lag_seconds(100, now=1000.0) == 0.0
    assert is_unknown(t.lag_seconds(99, now=1000.0))
    assert is_unknown(SampleTable().lag_seconds(0, now=1.0))


def test_an_idle_topic_with_an_old_commit_is_unknown_not_huge() -> None:
    """Idle log end (two equal samples) and a commit behind it: the table cannot tell, so the
    caller reads the record's timestamp instead of a value growing with the idle time."""
    t = table((500, 1000.0), (500, 1005.0))
    t.add(500, 5000.0)
    assert is_unknown(t.lag_seconds(400, now=5000.0))


def test_inside_an_idle_stretch_the_latest_time_at_that_offset_is_used() -> None:
    """Log end still at 500 until t=1005, then it moved: the record at 500 was written after 1005."""
    t = table((500, 1000.0), (500, 1005.0), (600, 1010.0))
    assert t.time_of(500) == pytest.approx(1005.0)


def test_reset_forgets_every_sample() -> None:
    """A recreated partition starts a new table."""
    t = table((100, 1.0), (200, 2.0))
    t.reset()
    assert len(t) == 0


def test_record_timestamp_seconds_are_never_negative() -> None:
    """A producer clock ahead of ours must not make a consumer look ahead of time."""
    assert seconds_from_timestamp(2_000_000, now=1000.0) == 0.0
    assert seconds_from_timestamp(990_000, now=1000.0) == pytest.approx(10.0)


def test_offset_lag_is_clamped_at_zero() -> None:
    """A commit past the end read (a truncated log, a race) is lag 0, not negative."""
    assert offset_lags(100, [90, 100, 120]) == [10, 0, 0]
    assert offset_lags(100, []) == []


# -- the batch form agrees with the one-at-a-time form -----------------------------------------


@st.composite
def tables_and_commits(draw: st.DrawFn) -> tuple[SampleTable, list[int], float]:
    t = SampleTable(draw(st.integers(2, 12)))
    offset, at = draw(st.integers(0, 10**12)), draw(st.floats(1e9, 2e9))
    for _ in range(draw(st.integers(0, 20))):
        offset += draw(st.sampled_from([0, 0, 1, 7, 1000, 10**6]))
        at += draw(st.floats(0.5, 60))
        t.add(offset, at)
    low = t.offsets[0] - 10 if t.offsets else 0
    high = t.offsets[-1] + 10 if t.offsets else 10
    commits = draw(st.lists(st.integers(max(0, low), high), max_size=30))
    return t, commits, at + draw(st.floats(0, 5))


@settings(max_examples=300, deadline=None)
@given(tables_and_commits())
def test_batch_lines_agree_with_the_scalar_lookup(case: tuple[SampleTable, list[int], float]) -> None:
    """LagLines (the vectorised form) gives what SampleTable.lag_seconds gives, pair by pair."""
    t, commits, now = case
    lines = t.lines(now)
    batch = lines.lag_seconds(commits)
    steepest = max(lines.slopes, default=0.0)
    assert len(batch) == len(commits)
    for committed, value in zip(commits, batch, strict=True):
        expected = t.lag_seconds(committed, now)
        if is_unknown(expected):
            assert is_unknown(value)
        else:
            # The batch form computes intercept - slope * offset, which cancels about
            # offset * slope * 2e-16 s (LagLines' docstring); allow a few times that.
            tolerance = 1e-6 + committed * steepest * 1e-15
            assert value == pytest.approx(expected, rel=1e-9, abs=tolerance)
            assert value >= -tolerance


@settings(max_examples=200, deadline=None)
@given(tables_and_commits())
def test_lag_never_grows_as_a_consumer_advances(case: tuple[SampleTable, list[int], float]) -> None:
    """Further along the log is never further behind in time."""
    t, commits, now = case
    lines = t.lines(now)
    known = sorted((c, s) for c, s in zip(commits, lines.lag_seconds(commits), strict=True) if not is_unknown(s))
    steepest = max(lines.slopes, default=0.0)
    for (committed, earlier), (_, later) in itertools.pairwise(known):
        assert later <= earlier + 1e-6 + committed * steepest * 1e-15


def test_answers_all_says_whether_any_pair_needs_a_record() -> None:
    """The poller skips its per-pair fallback when no committed offset is older than the table."""
    lines = LagLines.from_samples([100, 200], [1.0, 2.0], now=2.0)
    assert lines.answers_all([100, 150, 300])
    assert not lines.answers_all([99])
    assert not LagLines.from_samples([], [], now=1.0).answers_all([1])
    assert math.isnan(UNKNOWN)
