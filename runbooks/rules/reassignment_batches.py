"""A reassignment plan cut into batches, its ETA at a throttle, and the text the approver reads.

**Batches.** At most ``max_moves_per_broker`` moves in one batch involve any one broker (a broker is
involved in a move when it gains or loses a replica of the partition): Cruise Control's
``num.concurrent.partition.movements.per.broker``, whose default is 5 (docs/kafka-ops.md §3.5).
Moves are placed largest first, each in the earliest batch with room on every broker it involves,
so moves of similar size run together and a batch is not held up by one large straggler.

**The ETA model.** Batches run one after another: the executor submits a batch and waits until all
of its moves are done (docs/kafka-ops.md §3.2 for the throttle semantics). Within a batch, every
added replica copies the partition's size from its current leader; a broker's replication
throttle (the same rate ``T`` as leader and follower rate) is shared by everything it does in the
batch, so a batch lasts max over brokers of (bytes it receives as a new follower, bytes it sends as
a leader) / T, and the plan lasts the sum of its batches. Not modelled: what producers write
during the move (a partition written faster than T never catches up), the few seconds each batch
spends being submitted and joining the ISR, and the leader moves at the end.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from runbooks.engine.models import PlanRefused
from runbooks.rules.reassignment import PartitionMove, ReassignmentPlan, ids

DEFAULT_MOVES_PER_BROKER = 5
PER_BROKER_LINES = 12  # the approver's text lists this many busiest brokers, then sums the rest


class MoveBatch(BaseModel):
    """Moves submitted together in one AlterPartitionReassignments call."""

    model_config = ConfigDict(frozen=True)

    index: int
    moves: tuple[PartitionMove, ...]

    @property
    def bytes_to_copy(self) -> int:
        return sum(m.bytes_to_copy for m in self.moves)

    def seconds_at(self, throttle_bytes_per_s: float) -> float:
        """How long the batch takes when each broker replicates at ``throttle_bytes_per_s`` (the model above)."""
        received: defaultdict[int, int] = defaultdict(int)
        sent: defaultdict[int, int] = defaultdict(int)
        for move in self.moves:
            adding = move.adding
            for broker in adding:
                received[broker] += move.size_bytes
            sent[move.leader] += move.size_bytes * len(adding)
        busiest = max([*received.values(), *sent.values()], default=0)
        return busiest / throttle_bytes_per_s


def batch_moves(moves: Sequence[PartitionMove], max_moves_per_broker: int = DEFAULT_MOVES_PER_BROKER
                ) -> tuple[MoveBatch, ...]:
    """The moves in ordered batches, no broker involved in more than ``max_moves_per_broker`` moves of
    one batch; together the batches hold every move exactly once."""
    if max_moves_per_broker < 1:
        raise PlanRefused(f"at most {max_moves_per_broker} moves per broker at a time would never move anything: "
                          "give 1 or more")
    batches: list[list[PartitionMove]] = []
    load: list[dict[int, int]] = []  # per batch: moves involving each broker
    first_open: dict[int, int] = {}  # per broker: the earliest batch that may still have room for it
    for move in sorted(moves, key=lambda m: (-m.bytes_to_copy, m.topic, m.partition)):
        involved = move.involved
        at = max((first_open.get(b, 0) for b in involved), default=0)
        while at < len(batches) and any(load[at].get(b, 0) >= max_moves_per_broker for b in involved):
            at += 1
        if at == len(batches):
            batches.append([])
            load.append({})
        batches[at].append(move)
        used = load[at]
        for broker in involved:
            used[broker] = used.get(broker, 0) + 1
            if used[broker] >= max_moves_per_broker:
                k = first_open.get(broker, 0)
                while k < len(load) and load[k].get(broker, 0) >= max_moves_per_broker:
                    k += 1
                first_open[broker] = k
    return tuple(MoveBatch(index=k, moves=tuple(batch)) for k, batch in enumerate(batches))


def eta_seconds(batches: Sequence[MoveBatch], throttle_bytes_per_s: float) -> float:
    """The whole plan's duration at the throttle: the batches one after another."""
    if not throttle_bytes_per_s > 0:
        raise PlanRefused(f"a throttle of {throttle_bytes_per_s} bytes/s would never finish: give a rate above 0, "
                          "e.g. 50MiB/s")
    return sum(batch.seconds_at(throttle_bytes_per_s) for batch in batches)


def human_bytes(n: float) -> str:
    """``48.2 GiB``: binary units, three significant figures."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def human_duration(seconds: float) -> str:
    """``4 h 12 min``: the two largest units, rounded up (an ETA should not promise too little)."""
    s = int(-(-seconds // 1))
    if s < 60:
        return f"{s} s"
    minutes = -(-s // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def plan_text(plan: ReassignmentPlan, batches: Sequence[MoveBatch], throttle_bytes_per_s: float,
              max_moves_per_broker: int = DEFAULT_MOVES_PER_BROKER) -> str:
    """What the approver reads: what moves, how much data, how long at the throttle, per broker."""
    asked = []
    if plan.drain:
        asked.append(f"empty broker(s) {ids(plan.drain)}")
    if plan.fill:
        asked.append(f"fill broker(s) {ids(plan.fill)}")
    if not plan.moves:
        return f"To {' and '.join(asked)}: nothing to move (already done)."
    minimum = ("the minimum" if plan.replicas_moved == plan.lower_bound_replicas
               else f"the minimum is {plan.lower_bound_replicas:,}")
    eta = eta_seconds(batches, throttle_bytes_per_s)
    lines = [
        f"To {' and '.join(asked)}: move {plan.replicas_moved:,} replicas of {len(plan.moves):,} partitions "
        f"({minimum}), {human_bytes(plan.bytes_to_copy)} to copy.",
        f"{len(batches):,} batches, at most {max_moves_per_broker} moves per broker at a time; "
        f"ETA at {human_bytes(throttle_bytes_per_s)}/s: about {human_duration(eta)} "
        "(more if producers write to the moving partitions meanwhile).",
        f"Preferred leaders changed: {plan.preferred_leaders_changed:,}.",
    ]
    lines.extend(f"Short of the fair share: {s}" for s in plan.shortfalls)
    moving = sorted((f for f in plan.brokers if f.replicas_in or f.replicas_out),
                    key=lambda f: (-(f.bytes_in + f.bytes_out), f.broker))
    lines.append("Per broker:")
    for f in moving[:PER_BROKER_LINES]:
        flows = [f"in {f.replicas_in:,} ({human_bytes(f.bytes_in)})" if f.replicas_in else "",
                 f"out {f.replicas_out:,} ({human_bytes(f.bytes_out)})" if f.replicas_out else ""]
        lines.append(f"  broker {f.broker}: {', '.join(x for x in flows if x)}; "
                     f"{f.replicas_before:,} → {f.replicas_after:,} replicas")
    rest = moving[PER_BROKER_LINES:]
    if rest:
        lines.append(f"  and {len(rest)} more brokers: in {sum(f.replicas_in for f in rest):,}, "
                     f"out {sum(f.replicas_out for f in rest):,} replicas")
    return "\n".join(lines)
