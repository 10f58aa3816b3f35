"""The step kinds that move replicas, shared by the replace-broker and scale runbooks: their typed
arguments, the throttle rate as users write it, and the builders of a phase of batches and of the
cleanup steps that always follow one.

A phase (a drain, a move back, a fill) is one ``move-replicas`` step per batch of
``reassignment_batches.batch_moves``: the first asks for approval and shows the whole phase (replicas,
bytes, ETA at the throttle), the others follow without asking, each done only when every partition
of its batch has exactly its target replicas. ``cancel-moves`` and ``clear-throttles`` are cleanup
steps: they run however the run ends (the engine runs them by themselves on abort), so no
reassignment is left in flight and no throttle is left on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from runbooks.catalogue.restart import PreflightArgs
from runbooks.engine.models import PlanRefused, StepArgs, StepSpec
from runbooks.rules.reassignment import PartitionMove, ReassignmentPlan
from runbooks.rules.reassignment_batches import batch_moves, eta_seconds, human_bytes, human_duration, plan_text

# 50 MiB/s: what one broker can send and receive on top of its normal traffic on common hardware
# (a 1 Gbit/s link is ~119 MiB/s) while leaving producers and consumers most of the link; moving
# 100 GiB takes about 35 min at this rate. Raise it on faster networks.
DEFAULT_THROTTLE = "50MiB/s"
MOVE_TIMEOUT_S = 6 * 3600.0  # a batch at the throttle can take hours; the detail shows its ETA meanwhile
_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "kib": 1024, "mib": 1024**2, "gib": 1024**3}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*(?:/s)?\s*$", re.IGNORECASE)


def parse_rate(text: str) -> int:
    """``50MiB/s``, ``10MB/s``, ``52428800`` -> bytes per second; PlanRefused saying what is valid."""
    match = _RATE.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise PlanRefused(f'"{text}" is not a throttle rate: write bytes per second like 50MiB/s, 10MB/s or '
                          "52428800 (units B, KB, MB, GB, KiB, MiB, GiB)")
    rate = int(float(match.group(1)) * _UNITS[unit])
    if rate <= 0:
        raise PlanRefused(f'a throttle of "{text}" would never move anything: give a rate above 0, e.g. '
                          f"{DEFAULT_THROTTLE}")
    return rate


class PartitionTarget(BaseModel):
    """A partition and the replicas the run leaves it with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    topic: str
    partition: int
    replicas: tuple[int, ...]

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"


class MoveReplicasArgs(StepArgs):
    """One batch: each move's target replica list (``new``), what it replaces (``old``), its size."""

    kind: Literal["move-replicas"] = "move-replicas"
    moves: tuple[PartitionMove, ...] = Field(min_length=1)
    throttle_bytes_per_s: int = Field(gt=0)


class CancelMovesArgs(StepArgs):
    """Cleanup: cancel any move in flight of the run's partitions (each with the replicas the run
    meant to leave it with, to say which got there)."""

    kind: Literal["cancel-moves"] = "cancel-moves"
    partitions: tuple[PartitionTarget, ...]


class ClearThrottlesArgs(StepArgs):
    """Cleanup: remove the throttles the run set, on every broker and topic it may have throttled."""

    kind: Literal["clear-throttles"] = "clear-throttles"
    brokers: tuple[int, ...]
    topics: tuple[str, ...]


class CatchUpArgs(StepArgs):
    """A broker that came back empty re-replicates its partitions under a follower throttle: its
    follower rate, and its replicas in each topic's follower throttled-replica list."""

    kind: Literal["catch-up-replicas"] = "catch-up-replicas"
    broker: int
    partitions: tuple[PartitionTarget, ...]
    throttle_bytes_per_s: int = Field(gt=0)


class VerifyReplicasArgs(StepArgs):
    """The end of a run that moved replicas: 0 URP, every ISR complete, ``partitions`` at their replicas."""

    kind: Literal["verify-replicas"] = "verify-replicas"
    partitions: tuple[PartitionTarget, ...]
    broker: int | None = None  # the broker the run was about, for the texts


def phase_steps(moves: Sequence[PartitionMove], *, prefix: str, what: str, rate: int, plan: ReassignmentPlan | None,
                risk: str, compensation: str) -> list[StepSpec]:
    """One ``move-replicas`` step per batch: ``<prefix>-1``... The first asks for approval and shows
    the phase's plan (``plan``'s text, else the moves' count, bytes and ETA)."""
    batches = batch_moves(moves)
    if not batches:
        return []
    if plan is not None:
        shown = plan_text(plan, batches, rate)
    else:
        total = sum(m.bytes_to_copy for m in moves)
        shown = (f"Move {sum(len(m.adding) for m in moves):,} replicas of {len(moves):,} partitions, "
                 f"{human_bytes(total)} to copy, {len(batches):,} batches; ETA at {human_bytes(rate)}/s: about "
                 f"{human_duration(eta_seconds(batches, rate))}.")
    steps = []
    for batch in batches:
        n = batch.index + 1
        first = batch.index == 0
        involved = sorted({b for m in batch.moves for b in m.involved})
        steps.append(StepSpec(
            id=f"{prefix}-{n}", title=f"{what}: batch {n} of {len(batches)} ({len(batch.moves)} partitions, "
            f"{human_bytes(batch.bytes_to_copy)})",
            args=MoveReplicasArgs(moves=batch.moves, throttle_bytes_per_s=rate), needs_approval=first,
            interruptible=True,  # an abort need not wait for the batch: cancel-moves cancels it
            timeout_s=max(MOVE_TIMEOUT_S, 4 * batch.seconds_at(rate)),
            compensation=compensation,
            summary=(f"{shown}\nAt risk: {risk} Brokers {', '.join(map(str, involved))} replicate at up to "
                     f"{human_bytes(rate)}/s each on top of their traffic; the batches after this one follow "
                     "without asking. Abort cancels the moves in flight and clears the throttles."
                     if first else ""),
        ))
    return steps


def cleanup_steps(targets: Iterable[PartitionTarget], moves: Iterable[PartitionMove], *,
                  extra_brokers: Iterable[int] = ()) -> list[StepSpec]:
    """``cancel-moves`` then ``clear-throttles``, both cleanup: they run however the run ends."""
    moved = list(moves)
    brokers = sorted({b for m in moved for b in (*m.old, *m.new)} | set(extra_brokers))
    topics = sorted({m.topic for m in moved} | {t.topic for t in targets})
    by_name = {t.name: t for t in targets}
    return [
        StepSpec(id="cancel-moves", title="Cancel any move of this run still in flight",
                 args=CancelMovesArgs(partitions=tuple(by_name[k] for k in sorted(by_name))),
                 needs_approval=False, cleanup=True, timeout_s=300.0,
                 compensation="None: a cancelled move is planned again by a new run.",
                 summary="Runs however the run ends: a move still in flight is cancelled (its partition goes back "
                 "to its replicas before that move)."),
        clear_throttles_step(brokers, topics),
    ]


def clear_throttles_step(brokers: Sequence[int], topics: Sequence[str]) -> StepSpec:
    return StepSpec(id="clear-throttles", title="Remove the replication throttles",
                    args=ClearThrottlesArgs(brokers=tuple(brokers), topics=tuple(topics)),
                    needs_approval=False, cleanup=True, timeout_s=300.0,
                    compensation="None: a throttle is only ever needed while replicas move.",
                    summary="Runs however the run ends: a throttle left on slows every later recovery.")


def preflight_step() -> StepSpec:
    return StepSpec(id="preflight", title="Pre-flight: Kafka Ready, 0 URP, 0 offline, no reassignment",
                    args=PreflightArgs(throttled_moves=True), needs_approval=False, timeout_s=120.0,
                    compensation="None needed: it only reads.")


def targets_after(moves: Iterable[PartitionMove]) -> list[PartitionTarget]:
    """Each moved partition with its replicas after the last of ``moves`` that touches it."""
    last: dict[tuple[str, int], tuple[int, ...]] = {}
    for m in moves:
        last[(m.topic, m.partition)] = m.new
    return [PartitionTarget(topic=t, partition=p, replicas=r) for (t, p), r in sorted(last.items())]
