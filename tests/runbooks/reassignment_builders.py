"""Clusters for the reassignment planner's example tests: brokers, partitions, a balanced layout."""

from __future__ import annotations

from runbooks.rules.reassignment import (
    PartitionPlacement,
    ReassignmentBroker,
    ReassignmentPlan,
    ReassignmentRequest,
)
from runbooks.rules.reassignment_plan import plan_reassignment

GiB = 1024**3
MiB = 1024**2


def brokers(n: int, *, racks: str = "", dead: tuple[int, ...] = ()) -> tuple[ReassignmentBroker, ...]:
    """Brokers 0..n-1; ``racks="aabbc"`` gives broker i the rack racks[i]."""
    return tuple(ReassignmentBroker(id=b, rack=racks[b] if racks else None, alive=b not in dead) for b in range(n))


def part(name: str, replicas: tuple[int, ...], *, leader: int | None = -1, size: int = GiB) -> PartitionPlacement:
    topic, number = name.rsplit("-", 1)
    return PartitionPlacement(topic=topic, partition=int(number), replicas=replicas,
                              leader=replicas[0] if leader == -1 else leader, size_bytes=size)


def round_robin(n: int, count: int, rf: int = 3, size: int = GiB) -> tuple[PartitionPlacement, ...]:
    """A balanced layout the way Kafka creates topics: first replica round-robin, the others shifted."""
    parts = []
    for i in range(count):
        first, shift = i % n, (i // n) % (n - 1)
        replicas = (first, *((first + 1 + (shift + j) % (n - 1)) % n for j in range(rf - 1)))
        parts.append(part(f"t-{i}", replicas, size=size))
    return tuple(parts)


def plan(bs: tuple[ReassignmentBroker, ...], ps: tuple[PartitionPlacement, ...], *,
         drain: tuple[int, ...] = (), fill: tuple[int, ...] = ()) -> ReassignmentPlan:
    return plan_reassignment(ReassignmentRequest(brokers=bs, partitions=ps, drain=frozenset(drain),
                                                 fill=frozenset(fill)))


def new_replicas(p: ReassignmentPlan, name: str) -> tuple[int, ...]:
    return next(m.new for m in p.moves if m.name == name)
