"""Consumer lag in offsets and in seconds: the pure math (docs/kafka-ops.md §1.1, §1.4).

Offsets: ``lag = end - committed``, clamped at 0. The committed offsets are read *before* the end
offsets, so a consumer that commits between the two reads can only make the lag look larger,
never negative; the clamp hides what is left of that race (and a log truncated under a group).

Seconds, as Kafka Lag Exporter computes it: each partition keeps a table of (log-end offset, poll
time) samples, and the committed offset is placed on that line: the time at which the log end was
where the consumer is now is about when the consumer's next record was written, so ``lag_seconds
= now - that time``. Lag Exporter's insert rules are kept exactly (a sample older than the newest
or with a smaller offset is dropped; a third sample at the same offset moves the newest one's time
instead of appending, so an idle stretch costs two slots). Unlike Lag Exporter, the table never
*extrapolates*: when the committed offset is older than the oldest sample (a consumer far behind,
an idle topic, a table just started), the answer is "cannot tell" (NaN), and the caller asks Kafka
for the timestamp of the record at the committed offset instead, which is exact where
extrapolation explodes (Lag Exporter issues #32, #111, #496).

Many groups read the same partition, so the batch form (``LagLines``) turns a table into its line
segments once per poll (``lag = intercept - slope * committed`` per segment), then places every
group's committed offset in one list comprehension: a consumer at the log end costs one comparison,
one inside the newest segment (where a healthy consumer is) one multiply, and only one further
behind pays for a ``bisect`` over the segments. That, not a per-pair function call, is what makes
a million pairs affordable in pure Python (BENCHMARKS.md, "Alerts and lag").
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_TABLE_SIZE = 60  # Lag Exporter's lookup-table.memory.size
UNKNOWN = math.nan  # "the table cannot tell": fetch the record's timestamp instead
CAUGHT_UP = math.inf  # a "born" time for a consumer at the log end: ``now - born`` is never positive


class Insert(StrEnum):
    """What ``SampleTable.add`` did with a sample (Lag Exporter's names)."""

    APPENDED = "appended"
    UPDATED = "updated"  # same offset as the last two samples: the newest one's time moved forward
    FOLLOWED = "followed"  # within the spacing: the newest sample moved to this (offset, time)
    KEPT = "kept"  # within the spacing, at the newest sample's offset: it keeps the time it got there
    OUT_OF_ORDER = "out_of_order"  # older than the newest sample: dropped
    NON_MONOTONIC = "non_monotonic"  # a smaller log end (a truncated or recreated log): dropped


class SampleTable:
    """One partition's (log-end offset, time) samples, oldest first; times are epoch seconds. Kept
    in flat arrays (16 bytes a sample: a monitor holds up to 60 for every partition a group reads)."""

    __slots__ = ("_offsets", "_times", "capacity")

    def __init__(self, capacity: int = DEFAULT_TABLE_SIZE) -> None:
        if capacity < 2:
            raise ValueError("a sample table needs room for at least two samples to draw a line")
        self.capacity = capacity
        self._offsets: array[int] = array("q")
        self._times: array[float] = array("d")

    @property
    def offsets(self) -> list[int]:
        """The samples' offsets, oldest first (a copy)."""
        return self._offsets.tolist()

    @property
    def times(self) -> list[float]:
        """The samples' times, oldest first (a copy)."""
        return self._times.tolist()

    def __len__(self) -> int:
        return len(self._offsets)

    def add(self, offset: int, at: float, *, spacing_s: float = 0.0) -> Insert:
        """``spacing_s``: the samples' spacing when the log end is read more often than the table
        should fill (every second, for a table meant to span 60 samples of the lag poll interval):
        the newest sample then follows the log end, and becomes a kept sample once it is
        ``spacing_s`` after the one before it. Interpolation stays exact up to the newest read."""
        offsets, times = self._offsets, self._times
        if offsets:
            if at < times[-1]:
                return Insert.OUT_OF_ORDER
            if offset < offsets[-1]:
                return Insert.NON_MONOTONIC
            if len(offsets) >= 2 and offset == offsets[-1] == offsets[-2]:
                times[-1] = at
                return Insert.UPDATED
            if spacing_s > 0 and len(offsets) >= 2 and at - times[-2] <= spacing_s:
                if offset == offsets[-1]:  # the log end stood: it was there since times[-1]
                    return Insert.KEPT
                offsets[-1], times[-1] = offset, at
                return Insert.FOLLOWED
        offsets.append(offset)
        times.append(at)
        if len(offsets) > self.capacity:
            del offsets[0], times[0]
        return Insert.APPENDED

    def reset(self) -> None:
        """Forget every sample (the partition was recreated: its offsets started again)."""
        del self._offsets[:], self._times[:]

    def time_of(self, committed: int) -> float | None:
        """When the log end was at ``committed``; None when the table cannot tell. A committed
        offset at or past the newest sample is "now" for the caller (lag 0), returned as the newest
        sample's time."""
        offsets, times = self._offsets, self._times
        if not offsets:
            return None
        if committed >= offsets[-1]:
            return times[-1]
        index = bisect_right(offsets, committed)
        if index == 0:
            return None  # older than the oldest sample: never extrapolate
        o0, o1, t0, t1 = offsets[index - 1], offsets[index], times[index - 1], times[index]
        return t0 + (committed - o0) * (t1 - t0) / (o1 - o0)

    def lag_seconds(self, committed: int, now: float) -> float:
        """Seconds behind for one committed offset, or ``UNKNOWN`` (NaN)."""
        predicted = self.time_of(committed)
        if predicted is None:
            return UNKNOWN
        if committed >= self._offsets[-1]:
            return 0.0
        return max(0.0, now - predicted)

    def lines(self, now: float) -> LagLines:
        return LagLines.from_samples(self._offsets, self._times, now)


@dataclass(frozen=True, slots=True)
class LagLines:
    """A table as line segments for one poll: segment ``i`` (``breakpoints[i-1] <= c <
    breakpoints[i]``) gives ``lag = intercepts[i] - slopes[i] * c``. Segment 0 (older than the table)
    is NaN; segment ``len(breakpoints)`` (caught up) is 0. The subtraction cancels about
    ``c * slope * 2e-16`` seconds of precision (``slope`` in seconds per record): at offset 1e12 a
    topic writing a record a second loses 0.2 ms, one writing a record a minute about 10 ms."""

    breakpoints: list[int]
    intercepts: list[float]
    slopes: list[float]
    now: float = 0.0  # the time the intercepts were drawn at (``born`` takes it back out)

    @classmethod
    def from_samples(cls, offsets: Sequence[int], times: Sequence[float], now: float) -> LagLines:
        if not offsets:
            return cls(breakpoints=[], intercepts=[UNKNOWN], slopes=[0.0], now=now)
        now = max(now, times[-1])  # a clock that stepped back must not make lag negative
        # o1 == o0 is an idle stretch: bisect_right never lands a committed offset inside it.
        slopes = [(t1 - t0) / (o1 - o0) if o1 != o0 else 0.0
                  for o0, o1, t0, t1 in zip(offsets, offsets[1:], times, times[1:], strict=False)]
        # one slope per segment, so zip stops at the last segment's start (the newest sample has none)
        intercepts = [now - t0 + o0 * slope for o0, t0, slope in zip(offsets, times, slopes, strict=False)]
        return cls(breakpoints=list(offsets), intercepts=[UNKNOWN, *intercepts, 0.0], slopes=[0.0, *slopes, 0.0],
                   now=now)

    def lag_seconds(self, committed: Sequence[int]) -> list[float]:
        """Seconds behind for each committed offset; NaN where the table cannot tell."""
        points, intercepts, slopes = self.breakpoints, self.intercepts, self.slopes
        if len(points) < 2:
            caught_up = points[0] if points else None
            return [0.0 if caught_up is not None and c >= caught_up else UNKNOWN for c in committed]
        last, newest = points[-1], len(points) - 1  # the newest segment: points[-2] <= c < points[-1]
        floor, intercept, slope = points[-2], intercepts[newest], slopes[newest]
        return [
            0.0 if c >= last
            else intercept - slope * c if c >= floor
            else intercepts[(i := bisect_right(points, c))] - slopes[i] * c
            for c in committed
        ]

    def born(self, committed: Sequence[int]) -> list[float]:
        """For each committed offset, when the log end was there (epoch seconds): the consumer's
        lag in seconds is ``now - born`` at any later ``now`` while the table does not change, so a
        partition nothing moved on needs no new computation. NaN where the table cannot tell; +inf
        at or past the newest sample (caught up: 0 s)."""
        points, intercepts, slopes = self.breakpoints, self.intercepts, self.slopes
        if len(points) < 2:
            caught_up = points[0] if points else None
            return [CAUGHT_UP if caught_up is not None and c >= caught_up else UNKNOWN for c in committed]
        # intercept - slope * c is (now - born): born = now - intercept + slope * c, with ``now`` the
        # one the lines were drawn at.
        last, newest = points[-1], len(points) - 1
        floor, now = points[-2], self.now
        base, slope = now - intercepts[newest], slopes[newest]
        return [
            CAUGHT_UP if c >= last
            else base + slope * c if c >= floor
            else now - intercepts[(i := bisect_right(points, c))] + slopes[i] * c
            for c in committed
        ]

    def answers_all(self, committed: Sequence[int]) -> bool:
        """True when no committed offset is older than the table (so no NaN comes back)."""
        return bool(self.breakpoints) and (not committed or min(committed) >= self.breakpoints[0])


def offset_lags(end: int, committed: Sequence[int]) -> list[int]:
    """``end - committed`` for each group, clamped at 0."""
    lags = [end - c for c in committed]
    if lags and min(lags) < 0:
        lags = [lag if lag > 0 else 0 for lag in lags]
    return lags


def seconds_from_timestamp(record_timestamp_ms: int, now: float) -> float:
    """Seconds behind from the record at the committed offset: its age, never negative (a
    producer's clock ahead of ours must not make a consumer look ahead of time)."""
    return max(0.0, now - record_timestamp_ms / 1000.0)


def is_unknown(seconds: float) -> bool:
    return seconds != seconds  # NaN is the only float not equal to itself
