"""The reassignment planner's vocabulary: what it is asked (a cluster's brokers and partitions, the
brokers to empty and the brokers to fill), what it answers (a plan of partition moves), and the
checks that refuse a request no plan can serve.

The algorithm is in ``reassignment_plan.py``, the batches, ETA and the approver's text in
``reassignment_batches.py``. Everything here is pure: the handler builds the request from Kafka's
answers (DescribeCluster for brokers and racks, the topic metadata for replicas and leaders,
DescribeLogDirs for sizes) and hands the plan to the executor.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from runbooks.engine.models import PlanRefused

TopicPartition = tuple[str, int]
MAX_NAMED = 5  # a refusal names this many offenders, then counts the rest


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ReassignmentBroker(_Frozen):
    """A broker as the planner sees it. ``alive``: registered and unfenced; a dead broker keeps the
    replicas it has unless it is drained, and never receives new ones."""

    id: int = Field(ge=0)
    rack: str | None = None
    alive: bool = True


class PartitionPlacement(_Frozen):
    """One partition's replicas in Kafka's order (the first is the preferred leader), its current
    leader (None when offline), and its size in bytes: the leader's log size as DescribeLogDirs
    reports it, which is what each new replica has to copy."""

    topic: str = Field(min_length=1)
    partition: int = Field(ge=0)
    replicas: tuple[int, ...] = Field(min_length=1)
    leader: int | None
    size_bytes: int = Field(default=0, ge=0)

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"


class ReassignmentRequest(_Frozen):
    """Empty the ``drain`` brokers and/or bring the ``fill`` brokers up to their fair share."""

    brokers: tuple[ReassignmentBroker, ...]
    partitions: tuple[PartitionPlacement, ...]
    drain: frozenset[int] = frozenset()
    fill: frozenset[int] = frozenset()


class PartitionMove(_Frozen):
    """One partition's change: its replica list before and after (the order of ``new`` is what
    AlterPartitionReassignments gets: its first broker becomes the preferred leader). ``leader`` is
    the leader when the plan was made: the broker every added replica copies from."""

    topic: str
    partition: int
    old: tuple[int, ...]
    new: tuple[int, ...]
    leader: int
    size_bytes: int

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"

    @property
    def adding(self) -> tuple[int, ...]:
        return tuple(b for b in self.new if b not in self.old)

    @property
    def removing(self) -> tuple[int, ...]:
        return tuple(b for b in self.old if b not in self.new)

    @property
    def involved(self) -> frozenset[int]:
        """The brokers that gain or lose a replica: what the per-broker concurrency bound counts."""
        return frozenset(self.new).symmetric_difference(self.old)

    @property
    def bytes_to_copy(self) -> int:
        return self.size_bytes * len(self.adding)


class BrokerFlow(_Frozen):
    """One broker before and after the plan: replicas, bytes and preferred leaderships, and what
    moves in and out of it. ``fair_share``: the replicas a fill aims to leave it (None: no fill, or
    not a broker that stays)."""

    broker: int
    replicas_before: int
    replicas_after: int
    bytes_before: int
    bytes_after: int
    leaders_before: int
    leaders_after: int
    replicas_in: int = 0
    bytes_in: int = 0
    replicas_out: int = 0
    bytes_out: int = 0
    fair_share: int | None = None


class ReassignmentPlan(_Frozen):
    """The moves that serve a request, and what they cost.

    ``lower_bound_replicas``: no plan for this request moves fewer replicas: every replica on a
    drained broker must move, and the fill brokers must each reach the floor of the fair share of
    replicas (a move can serve both at once, hence the larger of the two). ``lower_bound_bytes``:
    the drained brokers' bytes, or the fill brokers' fair share of the bytes if larger (for a fill it
    is the ideal share, which whole partitions can only approach). ``shortfalls``: the fill brokers
    the rules (no two replicas on a broker, no narrower rack spread) kept below their share, and why.
    """

    drain: frozenset[int]
    fill: frozenset[int]
    moves: tuple[PartitionMove, ...]
    brokers: tuple[BrokerFlow, ...]
    lower_bound_replicas: int
    lower_bound_bytes: int
    shortfalls: tuple[str, ...] = ()

    @property
    def replicas_moved(self) -> int:
        return sum(len(m.adding) for m in self.moves)

    @property
    def bytes_to_copy(self) -> int:
        return sum(m.bytes_to_copy for m in self.moves)

    @property
    def preferred_leaders_changed(self) -> int:
        return sum(1 for m in self.moves if m.new[0] != m.old[0])

    def target_assignment(self, partitions: Iterable[PartitionPlacement]) -> dict[TopicPartition, tuple[int, ...]]:
        """Every partition's replicas once the plan is done: the request's, with the moves applied."""
        target = {(p.topic, p.partition): p.replicas for p in partitions}
        for move in self.moves:
            target[(move.topic, move.partition)] = move.new
        return target


def named(items: Sequence[str], what: str) -> str:
    """``orders-1, orders-2 and 3 more partitions``: a refusal names a few and counts the rest."""
    head = ", ".join(items[:MAX_NAMED])
    rest = len(items) - MAX_NAMED
    return f"{head} and {rest} more {what}" if rest > 0 else head


def ids(brokers: Iterable[int]) -> str:
    return ", ".join(str(b) for b in sorted(brokers))


def check_request(request: ReassignmentRequest) -> None:
    """Refuse (PlanRefused) a request that names unknown or dead brokers, asks for nothing or for
    everything, mixes brokers with and without racks, or describes partitions that cannot be moved:
    replicas on unknown brokers, a broker twice in one partition, or no leader / no live replica."""
    _check_brokers(request)
    _check_partitions(request.partitions, {b.id: b for b in request.brokers})


def _check_brokers(request: ReassignmentRequest) -> None:
    by_id = {b.id: b for b in request.brokers}
    if len(by_id) != len(request.brokers):
        twice = sorted(i for i, n in Counter(b.id for b in request.brokers).items() if n > 1)
        raise PlanRefused(f"broker id(s) {ids(twice)} appear more than once in the cluster's broker list")
    known = f"the cluster's brokers are {ids(by_id)}"
    unknown = (request.drain | request.fill) - by_id.keys()
    if unknown:
        raise PlanRefused(f"unknown broker id(s) {ids(unknown)}: {known}")
    if not request.drain and not request.fill:
        raise PlanRefused("nothing to plan: name the brokers to empty (drain) or to fill")
    both = request.drain & request.fill
    if both:
        raise PlanRefused(f"broker(s) {ids(both)} cannot be both emptied and filled")
    dead_fill = sorted(b for b in request.fill if not by_id[b].alive)
    if dead_fill:
        raise PlanRefused(f"broker(s) {ids(dead_fill)} are not alive: replicas cannot be moved onto them. "
                          f"Live brokers: {ids(b.id for b in request.brokers if b.alive)}")
    remaining = [b.id for b in request.brokers if b.alive and b.id not in request.drain]
    if not remaining:
        raise PlanRefused(f"emptying broker(s) {ids(request.drain)} leaves no live broker to hold the replicas: "
                          "empty fewer brokers, or add brokers first")
    racked = [b.id for b in request.brokers if b.rack is not None]
    if racked and len(racked) != len(request.brokers):
        rackless = [b.id for b in request.brokers if b.rack is None]
        raise PlanRefused(f"broker(s) {ids(rackless)} have no rack while broker(s) {ids(racked)} have one: "
                          "set broker.rack on every broker or on none, so that replicas can be spread over racks")


def _check_partitions(partitions: Sequence[PartitionPlacement], brokers: Mapping[int, ReassignmentBroker]) -> None:
    known = brokers.keys()
    alive = {b for b, broker in brokers.items() if broker.alive}
    seen: set[TopicPartition] = set()
    duplicated: list[str] = []
    unknown: list[str] = []
    colocated: list[str] = []
    stray_leader: list[str] = []
    offline: list[str] = []
    for p in partitions:
        key = (p.topic, p.partition)
        if key in seen:
            duplicated.append(p.name)
        seen.add(key)
        replicas = p.replicas
        members = set(replicas)
        if not members <= known:
            unknown.append(f"{p.name} on {list(replicas)}")
            continue
        if len(members) != len(replicas):
            colocated.append(f"{p.name} on {list(replicas)}")
        leader = p.leader
        if leader is not None and leader not in members:
            stray_leader.append(f"{p.name} (leader {leader}, replicas {list(replicas)})")
        elif leader not in alive:
            offline.append(p.name)
    if duplicated:
        raise PlanRefused(f"partition(s) listed twice: {named(duplicated, 'partitions')}")
    if unknown:
        raise PlanRefused(f"partition(s) with replicas on unknown brokers: {named(unknown, 'partitions')}; "
                          f"the cluster's brokers are {ids(brokers)}")
    if colocated:
        raise PlanRefused(f"partition(s) with two replicas on one broker: {named(colocated, 'partitions')}")
    if stray_leader:
        raise PlanRefused(f"partition(s) led by a broker outside their replicas: {named(stray_leader, 'partitions')}")
    if offline:
        raise PlanRefused(f"partition(s) offline (no live leader, so no replica to copy from): "
                          f"{named(offline, 'partitions')}. Bring their brokers back before moving replicas")
