"""The reassignment planner's guarantees over random clusters (hypothesis): 3 to 30 brokers, no racks
or up to 5, some brokers dead, up to 300 partitions of RF 1 to 4, sizes from 0 to a few GiB, and a
request to empty brokers, fill brokers, or both.

Every request is either refused, exactly when a rule says no plan exists (an offline partition, no
live broker left, a partition's RF above the live brokers left to it, a drain that takes away a
rack a partition needs), or planned, and then the plan keeps every partition's RF, never puts two
replicas on a broker, empties the drained brokers and only them, moves nothing a drain need not
move, never narrows a rack spread, keeps surviving preferred leaders, and its batches hold every
move once within the per-broker bound.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from runbooks.engine.models import PlanRefused
from runbooks.rules.reassignment import (
    PartitionPlacement,
    ReassignmentBroker,
    ReassignmentPlan,
    ReassignmentRequest,
)
from runbooks.rules.reassignment_batches import batch_moves, eta_seconds
from runbooks.rules.reassignment_plan import plan_reassignment

GiB = 1024**3
SETTINGS = settings(deadline=None, max_examples=150)


@dataclass(frozen=True)
class Scenario:
    request: ReassignmentRequest

    @property
    def rack(self) -> dict[int, str | None]:
        return {b.id: b.rack for b in self.request.brokers}

    @property
    def targets(self) -> set[int]:
        return {b.id for b in self.request.brokers if b.alive and b.id not in self.request.drain}

    def spread(self, replicas: tuple[int, ...] | list[int]) -> int:
        return len({self.rack[r] for r in replicas})

    @property
    def racked(self) -> bool:
        return any(b.rack is not None for b in self.request.brokers)


@st.composite
def scenarios(draw: st.DrawFn, mode: str | None = None) -> Scenario:
    rnd = random.Random(draw(st.integers(0, 2**32)))  # hypothesis' own randoms() costs a draw per call: too slow
    n = draw(st.integers(3, 30))
    racks = draw(st.integers(0, 5))
    rack_names = [f"r{k}" for k in range(racks)]
    rack = {b: rnd.choice(rack_names) if racks else None for b in range(n)}
    dead = set(rnd.sample(range(n), rnd.choice((0, 0, 0, 1, 2))))
    mode = mode or draw(st.sampled_from(["drain", "fill", "both"]))
    added = list(range(n, n + draw(st.integers(1, 3)))) if mode != "drain" else []
    for b in added:
        rack[b] = rnd.choice(rack_names) if racks else None
    partitions = []
    spread_layout = rnd.random() < 0.6  # most clusters were created rack-aware
    for t in range(draw(st.integers(1, 12))):
        rf = rnd.randint(1, min(4, n))
        sizes = rnd.choice(((0,), (GiB,), (1, 10, 100, 5 * GiB)))
        for number in range(rnd.randint(1, 25)):
            replicas = _replicas(rnd, n, rf, rack, spread_layout)
            live = [r for r in replicas if r not in dead]
            leader = rnd.choice(live) if live else None
            partitions.append(PartitionPlacement(topic=f"topic{t}", partition=number, replicas=tuple(replicas),
                                                 leader=leader, size_bytes=rnd.choice(sizes) * rnd.randint(1, 3)))
    drain: set[int] = set()
    if mode != "fill":
        drain = set(rnd.sample(range(n), rnd.choice((1, 1, 1, 2, 3))))
    fill = set(added)
    if mode != "drain" and rnd.random() < 0.3:
        fill |= {b for b in rnd.sample(range(n), 1) if b not in dead and b not in drain}
    brokers = tuple(ReassignmentBroker(id=b, rack=rack[b], alive=b not in dead) for b in range(n + len(added)))
    return Scenario(ReassignmentRequest(brokers=brokers, partitions=tuple(partitions), drain=frozenset(drain),
                                        fill=frozenset(fill)))


def _replicas(rnd: random.Random, n: int, rf: int, rack: dict[int, str | None], spread: bool) -> list[int]:
    if not spread:
        return rnd.sample(range(n), rf)
    by_rack: dict[str | None, list[int]] = {}
    for b in rnd.sample(range(n), n):
        by_rack.setdefault(rack[b], []).append(b)
    replicas: list[int] = []
    while len(replicas) < rf:  # one broker per rack in turn: as many racks as min(RF, racks)
        for brokers in by_rack.values():
            if brokers and len(replicas) < rf:
                replicas.append(brokers.pop())
    return replicas


def must_refuse(s: Scenario) -> bool:
    """The rules, restated: when no plan can serve the request."""
    req = s.request
    if any(p.leader is None for p in req.partitions) or not s.targets:
        return True
    for p in req.partitions:
        kept = [r for r in p.replicas if r not in req.drain]
        if len(kept) == len(p.replicas):
            continue
        if len(s.targets - set(kept)) < len(p.replicas) - len(kept):
            return True
        if s.racked and len({s.rack[r] for r in kept} | {s.rack[b] for b in s.targets}) < s.spread(p.replicas):
            return True
    return False


def planned(s: Scenario) -> ReassignmentPlan | None:
    try:
        plan = plan_reassignment(s.request)
    except PlanRefused:
        assert must_refuse(s), "refused a request a plan can serve"
        return None
    assert not must_refuse(s), "planned a request the rules refuse"
    return plan


def replica_counts(assignment: dict[tuple[str, int], tuple[int, ...]]) -> Counter[int]:
    return Counter(b for replicas in assignment.values() for b in replicas)


def no_replica_may_still_move(s: Scenario, plan: ReassignmentPlan) -> bool:
    """A fill broker short of its share: no replica of a broker above its share may move to it
    without co-locating or narrowing a rack spread (the shortfall is the rules', not the search's)."""
    target = plan.target_assignment(s.request.partitions)
    share = {f.broker: f.fair_share for f in plan.brokers}
    after = replica_counts(target)
    for f in s.request.fill:
        for replicas in target.values() if after[f] < (share[f] or 0) else ():
            for source in replicas:
                if f in replicas or source not in s.targets or after[source] <= (share[source] or 0):
                    continue
                others = {s.rack[r] for r in replicas if r != source}
                if s.rack[f] not in others or s.rack[source] in others:
                    return False
    return True


@SETTINGS
@given(scenarios())
def test_every_plan_keeps_rf_never_colocates_and_empties_exactly_the_drained_brokers(s: Scenario) -> None:
    plan = planned(s)
    if plan is None:
        return
    req = s.request
    target = plan.target_assignment(req.partitions)
    before = {(p.topic, p.partition): p.replicas for p in req.partitions}
    assert target.keys() == before.keys()
    for key, replicas in target.items():
        assert len(replicas) == len(before[key]) and len(set(replicas)) == len(replicas)
        assert not set(replicas) & req.drain
    for move in plan.moves:
        assert set(move.adding) <= s.targets  # new replicas only on live brokers that stay
        assert move.new != move.old
    after, was = replica_counts(target), replica_counts(before)
    emptied = {b for b in was if was[b] and not after[b]}
    assert emptied == {b for b in req.drain if was[b]}  # the drained brokers, and only them
    assert plan.replicas_moved >= plan.lower_bound_replicas or plan.shortfalls
    size = {(p.topic, p.partition): p.size_bytes for p in req.partitions}
    for f in plan.brokers:  # each broker's figures are those of the target assignment
        assert f.replicas_before == was[f.broker] and f.replicas_after == after[f.broker]
        assert f.bytes_after == sum(size[k] for k, replicas in target.items() if f.broker in replicas)
        assert f.leaders_after == sum(1 for replicas in target.values() if replicas[0] == f.broker)
        assert f.replicas_after - f.replicas_before == f.replicas_in - f.replicas_out
        assert f.bytes_after - f.bytes_before == f.bytes_in - f.bytes_out
    if plan.shortfalls:
        assert no_replica_may_still_move(s, plan)
    assert plan == plan_reassignment(req)  # deterministic


@SETTINGS
@given(scenarios("drain"))
def test_a_drain_moves_only_the_drained_replicas_and_keeps_surviving_leaders(s: Scenario) -> None:
    plan = planned(s)
    if plan is None:
        return
    req = s.request
    on_drained = [p for p in req.partitions if set(p.replicas) & req.drain]
    assert {m.name for m in plan.moves} == {p.name for p in on_drained}
    assert plan.replicas_moved == plan.lower_bound_replicas == sum(len(set(p.replicas) & req.drain)
                                                                   for p in on_drained)
    alive = {b.id for b in req.brokers if b.alive}
    for move in plan.moves:
        survivors = [r for r in move.old if r not in req.drain]
        assert [r for r in move.new if r in survivors] == survivors or move.new[0] != move.old[0]
        assert set(survivors) <= set(move.new)
        if move.old[0] not in req.drain:
            assert move.new == tuple(r if r not in req.drain else move.new[k] for k, r in enumerate(move.old))
        elif any(r in alive for r in survivors):
            assert move.new[0] in survivors and move.new[0] in alive
            if move.leader in survivors:
                assert move.new[0] == move.leader


@SETTINGS
@given(scenarios())
def test_racks_a_plan_never_narrows_a_spread_and_spreads_each_drained_partition_as_far_as_it_can(
        s: Scenario) -> None:
    plan = planned(s)
    if plan is None or not s.racked:
        return
    req = s.request
    target_racks = {s.rack[b] for b in s.targets}
    for move in plan.moves:
        assert s.spread(move.new) >= s.spread(move.old)
        kept = [r for r in move.old if r not in req.drain]
        needed = len(move.old) - len(kept)
        if needed and set(kept) <= set(move.new):  # a drained partition the fill did not touch again
            kept_racks = {s.rack[r] for r in kept}
            assert s.spread(move.new) == min(len(kept_racks) + needed, len(kept_racks | target_racks))


@SETTINGS
@given(scenarios("fill"))
def test_a_fill_moves_only_the_fair_share_onto_the_fill_brokers(s: Scenario) -> None:
    plan = planned(s)
    if plan is None:
        return
    req = s.request
    flows = {f.broker: f for f in plan.brokers}
    floor = sum(flows[b].replicas_before for b in s.targets) // len(s.targets)
    for f in flows.values():
        if f.broker not in s.targets:
            assert f.fair_share is None and f.replicas_after == f.replicas_before
            continue
        share = f.fair_share
        assert share is not None
        assert share == floor if not s.racked else share <= floor  # racks may hold a broker below the mean
        if f.broker not in req.fill or f.replicas_before >= share:
            assert f.replicas_in == 0  # nothing moves between the other brokers
            assert f.replicas_after >= min(f.replicas_before, share)  # no broker is taken below its share
    short = 0
    for b in req.fill:
        share = flows[b].fair_share or 0
        assert flows[b].replicas_after <= max(share, flows[b].replicas_before)
        short += max(0, share - flows[b].replicas_after)
    assert bool(short) == bool(plan.shortfalls)
    assert plan.replicas_moved + short == plan.lower_bound_replicas  # exactly the share, nothing more
    for move in plan.moves:
        if move.old[0] in move.new:
            assert move.new[0] == move.old[0]


@SETTINGS
@given(scenarios(), st.integers(1, 6), st.sampled_from([1, 1024**2, 50 * 1024**2]))
def test_batches_hold_every_move_once_within_the_per_broker_bound(s: Scenario, bound: int, throttle: int) -> None:
    plan = planned(s)
    if plan is None:
        return
    batches = batch_moves(plan.moves, max_moves_per_broker=bound)
    assert Counter(m.name for b in batches for m in b.moves) == Counter(m.name for m in plan.moves)
    assert sum(len(b.moves) for b in batches) == len(plan.moves)
    assert sum(b.bytes_to_copy for b in batches) == plan.bytes_to_copy
    assert [b.index for b in batches] == list(range(len(batches)))
    for batch in batches:
        assert batch.moves
        involved = Counter(broker for m in batch.moves for broker in m.involved)
        assert max(involved.values(), default=0) <= bound
    eta = eta_seconds(batches, throttle)
    biggest = max((m.size_bytes * len(m.adding) for m in plan.moves), default=0)
    assert biggest / throttle <= eta + 1e-9  # no plan is faster than its largest copy
    assert eta <= plan.bytes_to_copy / throttle + 1e-6  # nor slower than copying everything one by one
