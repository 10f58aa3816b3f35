"""The pure lag computation for 1,000,000 group-partition pairs (``make bench`` / ``python -m
tests.bench lag-math``): offset lag and seconds lag for every pair, the per-partition line
segments included, as the lag poll runs it (``runbooks.alerting.lag``). CPU time (``process_time``),
best and median of several runs, because the machine is shared.

Two shapes of the same size, 2,000 partitions x 500 groups, 60-sample tables:

- ``uniform``: every committed offset uniformly anywhere in its table. The worst case for the
  algorithm: every pair needs the bisect. Real clusters never look like this.
- ``typical``: 60 % of pairs caught up, 25 % inside the newest segment (a healthy consumer a poll
  behind), 10 % within the last ten samples, 5 % anywhere (stopped consumers).

Plus the baseline: the per-pair loop one writes first (a dict lookup of the partition's table and
``SampleTable.lag_seconds`` per pair), on 100,000 pairs, scaled.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from runbooks.alerting.lag import SampleTable, offset_lags

PARTITIONS, GROUPS, SAMPLES = 2000, 500, 60
RUNS = 7


def tables(seed: int) -> tuple[list[SampleTable], float]:
    rng = random.Random(seed)
    built = []
    at = 1.7e9
    for _ in range(PARTITIONS):
        table, offset, at = SampleTable(SAMPLES), rng.randint(0, 10**9), 1.7e9
        for _ in range(SAMPLES):
            offset += rng.randint(0, 1000)
            at += 5.0
            table.add(offset, at)
        built.append(table)
    return built, at


def committed(table: SampleTable, rng: random.Random, shape: str) -> list[int]:
    o = table.offsets
    if shape == "uniform":
        return [rng.randint(o[0], o[-1]) for _ in range(GROUPS)]
    out = []
    for _ in range(GROUPS):
        draw = rng.random()
        if draw < 0.60:
            out.append(o[-1])
        elif draw < 0.85:
            out.append(rng.randint(o[-2], o[-1] - 1) if o[-1] > o[-2] else o[-1])
        elif draw < 0.95:
            out.append(rng.randint(o[-10], o[-1]))
        else:
            out.append(rng.randint(o[0], o[-1]))
    return out


def compute(built: list[SampleTable], commits: list[list[int]], now: float) -> int:
    pairs = 0
    for table, offsets in zip(built, commits, strict=True):
        lags = offset_lags(table.offsets[-1], offsets)
        seconds = table.lines(now).lag_seconds(offsets)
        pairs += len(lags) + len(seconds) - len(offsets)
    return pairs


def cpu(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def naive(built: list[SampleTable], commits: list[list[int]], now: float, groups: int) -> float:
    """The first loop one writes: per group, per partition, look the table up and ask it."""
    by_key = {("topic", p): t for p, t in enumerate(built)}
    per_group = [{("topic", p): commits[p][g] for p in range(len(built))} for g in range(groups)]
    start = time.process_time()
    for offsets in per_group:
        result = {}
        for key, c in offsets.items():
            table = by_key[key]
            result[key] = (max(0, table.offsets[-1] - c), table.lag_seconds(c, now))
    return time.process_time() - start


def main() -> dict[str, Any]:
    built, now = tables(seed=1)
    figures: dict[str, Any] = {"pairs": PARTITIONS * GROUPS, "partitions": PARTITIONS, "groups": GROUPS,
                               "samples_per_table": SAMPLES}
    for shape in ("uniform", "typical"):
        rng = random.Random(2)
        commits = [committed(t, rng, shape) for t in built]
        runs = [cpu(lambda commits=commits: compute(built, commits, now)) for _ in range(RUNS)]  # type: ignore[misc]
        figures[f"{shape}_cpu_s_best"] = round(min(runs), 3)
        figures[f"{shape}_cpu_s_median"] = round(statistics.median(runs), 3)
    rng = random.Random(2)
    commits = [committed(t, rng, "uniform") for t in built]
    figures["naive_loop_cpu_s_per_1m_pairs"] = round(naive(built, commits, now, groups=50) * GROUPS / 50, 2)
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
