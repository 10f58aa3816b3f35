"""The reassignment planner: the fewest replica moves that empty the drained brokers and bring the
filled brokers up to their fair share, and nothing else.

What a plan guarantees (tests/runbooks/test_reassignment*.py hold it to each):

- Every partition keeps its replication factor and never has two replicas on one broker. Drained
  brokers end with no replica; new replicas go only to live brokers that are not drained.
- **Draining moves only the drained brokers' replicas**: a partition with no replica on them is not
  touched, and one with a replica on them keeps its other replicas where they are, in place in its
  replica list. That is P·R/N replicas for a balanced cluster, the lower bound.
- **Filling moves only the fill brokers' fair share**: each gets the floor of (replicas on live
  brokers) / (live brokers left), taken one replica at a time from the broker holding the most
  bytes that is above that floor (never taking it below), choosing the replica whose size keeps
  the fill broker on course for its share of the bytes. From a balanced cluster every broker ends
  within ±1 of the mean count, and the fill brokers near their byte share. Nothing moves between
  the other brokers; a fill broker left short (``shortfalls``) is one no replica may still move to.
- **Racks**: where brokers have racks, each new replica goes to a rack its partition does not use
  yet while one is left, so a drained partition spans min(RF, racks) racks when its other replicas
  were already spread; a fill move never narrows a partition's rack spread. A drain that would
  narrow a partition's spread because it takes away the last live broker of a rack is refused.
- **Bytes, not counts**: a drained replica goes to the eligible broker holding the fewest bytes
  (largest partitions placed first, the classic LPT rule), with counts breaking ties.
- **Leaders**: a partition whose preferred leader survives keeps it. When the drained broker was the
  preferred leader, a surviving replica takes that place (the current leader if it survives, else
  the survivor leading the fewest partitions), so no leadership lands on a replica that is still
  catching up; with RF 1 the new replica leads. Fill moves replace in place, so a fill broker leads
  about its share of the partitions it receives, and the planner steers that share to 1/RF.
- Refusals (PlanRefused, nothing planned): see ``check_request``, plus a partition whose RF
  exceeds the live brokers left to it, and a drain that takes a partition's rack spread down.
- Deterministic: the same request gives the same plan (unlike ``kafka-reassign-partitions
  --generate``, whose start index is random).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Sequence

from runbooks.rules.reassignment import (
    BrokerFlow,
    PartitionMove,
    ReassignmentPlan,
    ReassignmentRequest,
    check_request,
    ids,
    named,
)
from runbooks.rules.rolls import PlanRefused

SOURCE_SCAN = 64  # replicas tried per source before the slower search over every source
CLOSE_ENOUGH = 0.25  # a fill pick this far (relative) from the size wanted looks at MORE_SOURCES more sources
MORE_SOURCES = 3

# A fill candidate: (distance from the size wanted, position in its size list, the list, source broker)
_Pick = tuple[float, int, list[tuple[int, int]], int]


def plan_reassignment(request: ReassignmentRequest) -> ReassignmentPlan:
    """The plan for ``request``, or PlanRefused saying why there is none."""
    check_request(request)
    layout = _Layout(request)
    layout.check_room()
    layout.drain()
    shortfalls = layout.fill()
    return layout.plan(shortfalls)


class _Layout:
    """The working assignment: replica lists by partition index, and per-broker loads kept in step."""

    def __init__(self, request: ReassignmentRequest) -> None:
        self.request = request
        self.parts = request.partitions
        self.drained = request.drain
        self.rack = {b.id: b.rack for b in request.brokers}
        self.racked = any(r is not None for r in self.rack.values())
        self.alive = {b.id for b in request.brokers if b.alive}
        self.targets = sorted(b for b in self.alive if b not in self.drained)
        self.target_racks = {self.rack[b] for b in self.targets}
        self.replicas: list[Sequence[int]] = [p.replicas for p in self.parts]  # a list once edited
        self.size = [p.size_bytes for p in self.parts]
        self.count = dict.fromkeys(self.rack, 0)
        self.bytes = dict.fromkeys(self.rack, 0)
        self.leads = dict.fromkeys(self.rack, 0)
        self.on_drained: list[int] = []
        self.leads.update(Counter(p.replicas[0] for p in self.parts))
        drained = self.drained
        count, nbytes = self.count, self.bytes
        for i, p in enumerate(self.parts):
            size = p.size_bytes
            replicas = p.replicas
            for r in replicas:
                count[r] += 1
                nbytes[r] += size
            if drained and not drained.isdisjoint(replicas):
                self.on_drained.append(i)
        self.before = (dict(count), dict(nbytes), dict(self.leads))
        self.touched: set[int] = set(self.on_drained)
        self.sources: list[tuple[int, int, int]] = []  # fill's source brokers, richest first
        self.by_source: dict[int, tuple[list[tuple[int, int]], list[tuple[int, int]]]] = {}

    def check_room(self) -> None:
        """Refuse a drain that leaves a partition too few live brokers, or too few racks."""
        too_few: list[str] = []
        narrower: list[str] = []
        targets = set(self.targets)
        for i in self.on_drained:
            reps = self.replicas[i]
            kept = [r for r in reps if r not in self.drained]
            needed = len(reps) - len(kept)
            if len(targets.difference(kept)) < needed:
                too_few.append(f"{self.parts[i].name} (RF {len(reps)})")
            elif self.racked:
                now = len({self.rack[r] for r in reps})
                possible = len({self.rack[r] for r in kept} | self.target_racks)
                if possible < now:
                    narrower.append(f"{self.parts[i].name} ({now} racks now, {possible} after)")
        drain = ids(self.drained)
        if too_few:
            raise PlanRefused(
                f"emptying broker(s) {drain} leaves {len(self.targets)} live broker(s) ({ids(self.targets)}), "
                f"too few for the replication factor of {named(too_few, 'partitions')}. "
                "Add brokers first, or empty fewer")
        if narrower:
            before = {self.rack[b] for b in self.alive}
            lost = sorted(r for r in before - self.target_racks if r is not None)
            raise PlanRefused(
                f"emptying broker(s) {drain} takes away the last live broker of rack(s) {', '.join(lost)}: "
                f"{named(narrower, 'partitions')} would span fewer racks. "
                "Add a broker to that rack first, or empty fewer brokers")

    def drain(self) -> None:
        """Replace each drained replica in place by the least-loaded eligible broker, largest first."""
        ranking = sorted((self.bytes[b], self.count[b], b) for b in self.targets)
        for i in sorted(self.on_drained, key=lambda i: (-self.size[i], i)):
            original = self.parts[i].replicas
            reps = self.replicas[i] = list(original)
            members = set(reps)
            used = {self.rack[r] for r in reps if r not in self.drained} if self.racked else None
            for k, old in enumerate(original):
                if old not in self.drained:
                    continue
                new = self._least_loaded(ranking, members, used)
                reps[k] = new
                members.add(new)
                if used is not None:
                    used.add(self.rack[new])
                self._shift(i, old, new, ranking)
            if original[0] in self.drained:
                self._keep_a_survivor_first(i, original)

    def _least_loaded(self, ranking: list[tuple[int, int, int]], members: set[int],
                      used: set[str | None] | None) -> int:
        want_new_rack = used is not None and not self.target_racks <= used
        for _, _, broker in ranking:
            if broker in members or (want_new_rack and used is not None and self.rack[broker] in used):
                continue
            return broker
        raise AssertionError("check_room leaves every drained replica a broker")  # pragma: no cover

    def _shift(self, i: int, old: int, new: int, ranking: list[tuple[int, int, int]]) -> None:
        size = self.size[i]
        key = (self.bytes[new], self.count[new], new)
        del ranking[bisect_left(ranking, key)]
        self.count[old] -= 1
        self.bytes[old] -= size
        self.count[new] += 1
        self.bytes[new] += size
        insort(ranking, (self.bytes[new], self.count[new], new))

    def _keep_a_survivor_first(self, i: int, original: tuple[int, ...]) -> None:
        """The drained preferred leader's place goes to a surviving live replica, not a new one."""
        reps = self._editable(i)
        survivors = [r for r in original if r not in self.drained and r in self.alive]
        if survivors:
            leader = self.parts[i].leader
            chosen = leader if leader in survivors else min(survivors, key=lambda b: (self.leads[b], reps.index(b)))
            k = reps.index(chosen)
            reps[0], reps[k] = reps[k], reps[0]
        self.leads[original[0]] -= 1
        self.leads[reps[0]] += 1

    def fill(self) -> list[str]:
        """Bring each fill broker to the floor of the fair share, one replica per broker per round."""
        floor, share = self._fair_share()
        need = {f: floor - self.count[f] for f in sorted(self.request.fill) if self.count[f] < floor}
        if not need:
            return []
        leader_ratio = sum(self.leads[b] for b in self.targets) / sum(self.count[b] for b in self.targets)
        sources = [b for b in self.targets if b not in need]  # a fill broker above its share gives too
        self._index_sources(sources)
        self.sources = sorted((-self.bytes[b], -self.count[b], b) for b in sources)
        shortfalls = []
        while need:
            for f in list(need):
                taken = self._take_one(f, need[f], floor, share, leader_ratio)
                if taken is None:
                    got = self.count[f] - self.before[0][f]
                    shortfalls.append(
                        f"broker {f} gets {got} of the {got + need.pop(f)} replicas of its fair share: no other "
                        "replica can move to it without two replicas of a partition on one broker, a narrower rack "
                        "spread, or taking a broker below its own share")
                    continue
                need[f] -= 1
                if not need[f]:
                    del need[f]
        return shortfalls

    def _fair_share(self) -> tuple[int, float]:
        """Each live non-drained broker's share: the floor of the replicas, and the bytes. The replicas
        of dead brokers that are not drained stay where they are and count for no one."""
        n = len(self.targets)
        on_drained = sum(self.before[0][d] for d in self.drained), sum(self.before[1][d] for d in self.drained)
        replicas = sum(self.before[0][b] for b in self.targets) + on_drained[0]
        nbytes = sum(self.before[1][b] for b in self.targets) + on_drained[1]
        return replicas // n, nbytes / n

    def _index_sources(self, sources: list[int]) -> None:
        """Per source broker, its replicas by size: [followers, preferred leaders], for nearest-size picks."""
        lists: dict[int, tuple[list[tuple[int, int]], list[tuple[int, int]]]] = {s: ([], []) for s in sources}
        for i, reps in enumerate(self.replicas):
            entry = (self.size[i], i)
            held = lists.get(reps[0])
            if held is not None:
                held[1].append(entry)
            for r in reps[1:]:
                held = lists.get(r)
                if held is not None:
                    held[0].append(entry)
        for followers, leaders in lists.values():
            followers.sort()
            leaders.sort()
        self.by_source = lists

    def _take_one(self, f: int, need: int, floor: int, share: float, leader_ratio: float) -> int | None:
        """Move one replica to ``f``; its partition index, or None when no replica may move to it.

        The source is the richest broker above the floor (first the richest in ``f``'s rack, whose
        replicas can always move without narrowing a rack spread); the replica is the one nearest
        the size that keeps ``f`` on course for its byte share, a preferred leader or not as ``f``'s
        leader share asks, and of a partition the plan does not move yet (one replica moved per
        partition is the gentler change). Wider searches follow only when those find nothing."""
        ranking = self.sources
        while ranking and self.count[ranking[0][2]] <= floor:
            del ranking[0]  # the richest is down to the floor: counts only fall, it stays out
        if not ranking:
            return None
        desired = max(0.0, share - self.bytes[f]) / need
        want_leader = self.leads[f] < (self.count[f] + 1) * leader_ratio
        above = [s for _, _, s in ranking if self.count[s] > floor]
        first = [s for s in above if self.rack[s] == self.rack[f]][:1] if self.racked else []
        first += [s for s in above[:1] if s not in first]
        best = self._nearest_of(first, f, desired, want_leader, SOURCE_SCAN)
        if best is None or best[0] > desired * CLOSE_ENOUGH:
            best = min(filter(None, (best, self._nearest_of(above[1:1 + MORE_SOURCES], f, desired, want_leader,
                                                            SOURCE_SCAN))), default=None)
        for limit in (SOURCE_SCAN, None):
            for s in above if best is None else ():
                best = self._nearest(s, f, desired, want_leader, limit)
                if best is not None:
                    break
        if best is None:
            return self._take_from_moving_partition(f, desired, floor)
        _, at, replicas, s = best
        i = replicas.pop(at)[1]
        self._move(i, s, f)
        return i

    def _nearest_of(self, sources: list[int], f: int, desired: float, want_leader: bool, limit: int) -> _Pick | None:
        return min(filter(None, (self._nearest(s, f, desired, want_leader, limit) for s in sources)), default=None)

    def _nearest(self, s: int, f: int, desired: float, want_leader: bool, limit: int | None) -> _Pick | None:
        """The replica of ``s`` nearest ``desired`` bytes that may move to ``f``, among at most ``limit``
        tried, preferably a preferred leader or not as ``want_leader`` says. Replicas of partitions
        the plan already moves leave the size lists as they are met (``_take_from_moving_partition``
        is their way out)."""
        held = self.by_source[s]
        for replicas in (held[want_leader], held[not want_leader]):
            lo = bisect_left(replicas, (desired,)) - 1
            hi = lo + 1
            tried = 0
            while (lo >= 0 or hi < len(replicas)) and (limit is None or tried < limit):
                upward = hi < len(replicas) and (lo < 0 or replicas[hi][0] - desired <= desired - replicas[lo][0])
                at = hi if upward else lo
                size, i = replicas[at]
                if i in self.touched:
                    del replicas[at]
                    if not upward:
                        lo, hi = lo - 1, hi - 1
                    continue
                if upward:
                    hi += 1
                else:
                    lo -= 1
                tried += 1
                if self._may_move(i, s, f):
                    return abs(size - desired), at, replicas, s
        return None

    def _take_from_moving_partition(self, f: int, desired: float, floor: int) -> int | None:
        """The last resort: a second replica of a partition the plan already moves."""
        best: tuple[float, int, int] | None = None
        for i in sorted(self.touched):
            for s in self.replicas[i]:
                if s in self.by_source and self.count[s] > floor and self._may_move(i, s, f):
                    candidate = (abs(self.size[i] - desired), i, s)
                    best = candidate if best is None or candidate < best else best
        if best is None:
            return None
        _, i, s = best
        self._move(i, s, f)
        return i

    def _may_move(self, i: int, s: int, f: int) -> bool:
        reps = self.replicas[i]
        if f in reps:
            return False
        if not self.racked or self.rack[s] == self.rack[f]:
            return True
        others = {self.rack[r] for r in reps if r != s}
        return self.rack[f] not in others or self.rack[s] in others

    def _editable(self, i: int) -> list[int]:
        reps = self.replicas[i]
        if not isinstance(reps, list):
            reps = self.replicas[i] = list(reps)
        return reps

    def _move(self, i: int, s: int, f: int) -> None:
        reps = self._editable(i)
        k = reps.index(s)
        reps[k] = f
        size = self.size[i]
        del self.sources[bisect_left(self.sources, (-self.bytes[s], -self.count[s], s))]
        self.count[s] -= 1
        self.bytes[s] -= size
        insort(self.sources, (-self.bytes[s], -self.count[s], s))
        self.count[f] += 1
        self.bytes[f] += size
        if k == 0:
            self.leads[s] -= 1
            self.leads[f] += 1
        self.touched.add(i)

    def plan(self, shortfalls: list[str]) -> ReassignmentPlan:
        moves = []
        for i in self.touched:
            p = self.parts[i]
            new = tuple(self.replicas[i])
            if new != p.replicas:
                assert p.leader is not None  # check_request refuses offline partitions
                moves.append(PartitionMove(topic=p.topic, partition=p.partition, old=p.replicas, new=new,
                                           leader=p.leader, size_bytes=p.size_bytes))
        moves.sort(key=lambda m: (m.topic, m.partition))
        return ReassignmentPlan(drain=self.drained, fill=self.request.fill, moves=tuple(moves),
                                brokers=self._flows(moves), shortfalls=tuple(shortfalls),
                                **self._lower_bounds())

    def _flows(self, moves: list[PartitionMove]) -> tuple[BrokerFlow, ...]:
        into = dict.fromkeys(self.rack, 0)
        out = dict.fromkeys(self.rack, 0)
        bytes_in = dict.fromkeys(self.rack, 0)
        bytes_out = dict.fromkeys(self.rack, 0)
        for m in moves:
            for b in m.adding:
                into[b] += 1
                bytes_in[b] += m.size_bytes
            for b in m.removing:
                out[b] += 1
                bytes_out[b] += m.size_bytes
        count, nbytes, leads = self.before
        return tuple(BrokerFlow(
            broker=b, replicas_before=count[b], replicas_after=self.count[b], bytes_before=nbytes[b],
            bytes_after=self.bytes[b], leaders_before=leads[b], leaders_after=self.leads[b],
            replicas_in=into[b], bytes_in=bytes_in[b], replicas_out=out[b], bytes_out=bytes_out[b],
        ) for b in sorted(self.rack))

    def _lower_bounds(self) -> dict[str, int]:
        count, nbytes, _ = self.before
        drained_replicas = sum(count[d] for d in self.drained)
        drained_bytes = sum(nbytes[d] for d in self.drained)
        floor, share = self._fair_share()
        fill_replicas = sum(max(0, floor - count[f]) for f in self.request.fill)
        fill_bytes = round(sum(max(0.0, share - nbytes[f]) for f in self.request.fill))
        return {"lower_bound_replicas": max(drained_replicas, fill_replicas),
                "lower_bound_bytes": max(drained_bytes, fill_bytes)}
