"""The working assignment the reassignment planner edits (replica lists by partition index, and
per-broker counts, bytes and preferred leaderships kept in step), and the fill: bringing the fill
brokers up to their fair share. The drain and the plan are in ``reassignment_plan.py``, whose
docstring states what a plan guarantees.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Iterator, Sequence
from itertools import islice

from runbooks.rules.reassignment import ReassignmentRequest

SOURCE_SCAN = 64  # replicas tried per source before the slower search over every source
# A fill pick this far (relative) from the size wanted looks at MORE_SOURCES more sources; tighter for
# the last ENDGAME picks of a broker, whose error no later pick corrects.
CLOSE_ENOUGH, CLOSE_ENOUGH_AT_THE_END, ENDGAME = 0.5, 0.05, 8
MORE_SOURCES = 3

# A fill candidate: (distance from the size wanted, position in its size list, the list, source broker)
_Pick = tuple[float, int, list[int], int]


class Layout:
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
        self.share: dict[int, int] = {}
        self.mean, self.mean_bytes, self.leader_share = 0, 0.0, 0
        self.byte_share: dict[int, float] = {}
        self.by_source: dict[int, tuple[list[int], list[int]]] = {}
        self.key_base = 1

    def fill(self) -> list[str]:
        """Bring each fill broker to the floor of the fair share, one replica per broker per round."""
        self._fair_shares()
        share = self.share
        need = {f: share[f] - self.count[f] for f in sorted(self.request.fill) if self.count[f] < share[f]}
        if not need:
            return []
        leader_ratio = sum(self.leads[b] for b in self.targets) / sum(self.count[b] for b in self.targets)
        sources = [b for b in self.targets if b not in need]  # a fill broker above its share gives too
        self._index_sources(sources)
        self.sources = sorted((-self.bytes[b], -self.count[b], b) for b in sources)
        shortfalls = []
        while need:
            for f in list(need):
                taken = self._take_one(f, need[f], leader_ratio)
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

    def _fair_shares(self) -> None:
        """Each live non-drained broker's fair share of the replicas (``share``) and of the bytes
        (``byte_share``), on the layout after the drain. Without racks: the floor of the mean. With
        racks, no more than its rack can hold per broker: a rack's capacity is, summed over the
        partitions, the replicas each could have there without a narrower rack spread (so with RF 3
        over 3 racks a rack keeps one replica of each partition, however many brokers it has). The
        replicas of dead brokers that are not drained stay where they are and count for no one."""
        if self.share:
            return
        replicas = sum(self.count[b] for b in self.targets)
        floor = replicas // len(self.targets)
        self.share = dict.fromkeys(self.targets, floor)
        if self.racked:
            per_rack = Counter(self.rack[b] for b in self.targets)
            capacity = self._rack_capacity(per_rack)
            for b in self.targets:
                self.share[b] = min(floor, capacity[self.rack[b]] // per_rack[self.rack[b]])
        size = sum(self.bytes[b] for b in self.targets) / replicas if replicas else 0.0
        self.byte_share = {b: share * size for b, share in self.share.items()}

    def _rack_capacity(self, per_rack: Counter[str | None]) -> Counter[str | None]:
        layouts = Counter(tuple(sorted(str(self.rack[r]) for r in reps)) for reps in self.replicas)
        capacity: Counter[str | None] = Counter()
        for layout, partitions in layouts.items():
            on = Counter(layout)
            for rack, brokers in per_rack.items():
                here = on.get(str(rack), 0)
                spare = sum(k - 1 for r, k in on.items() if r != str(rack))  # a rack's second replica may leave
                singleton = here == 0 and any(k == 1 for k in on.values())  # one may move to a rack not used
                capacity[rack] += partitions * min(brokers, here + spare + singleton)
        return capacity

    def _index_sources(self, sources: list[int]) -> None:
        """Per source broker, its replicas by size: [followers, preferred leaders], for nearest-size
        picks. An entry is one int, size × (partition count) + partition index: ints sort and
        bisect several times faster than (size, index) tuples, which counts at 100,000 partitions."""
        base = self.key_base = max(1, len(self.parts))
        lists: dict[int, tuple[list[int], list[int]]] = {s: ([], []) for s in sources}
        for i, reps in enumerate(self.replicas):
            entry = self.size[i] * base + i
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

    def _above_share(self) -> Iterator[int]:
        """The sources still above their share, richest first."""
        return (s for _, _, s in self.sources if self.count[s] > self.share[s])

    def _take_one(self, f: int, need: int, leader_ratio: float) -> int | None:
        """Move one replica to ``f``; its partition index, or None when no replica may move to it.

        The source is the richest broker above its share (first the richest in ``f``'s rack, whose
        replicas can always move without narrowing a rack spread); the replica is the one nearest
        the size that keeps ``f`` on course for its byte share, a preferred leader or not as ``f``'s
        leader share asks, and of a partition the plan does not move yet (one replica moved per
        partition is the gentler change). Wider searches follow only when those find nothing."""
        ranking, share = self.sources, self.share
        while ranking and self.count[ranking[0][2]] <= share[ranking[0][2]]:
            del ranking[0]  # the richest is down to its share: counts only fall, it stays out
        if not ranking:
            return None
        desired = max(0.0, self.byte_share[f] - self.bytes[f]) / need
        want_leader = self.leads[f] < (self.count[f] + 1) * leader_ratio
        tolerance = CLOSE_ENOUGH if need > ENDGAME else CLOSE_ENOUGH_AT_THE_END
        first = [ranking[0][2]]
        if self.racked and self.rack[first[0]] != self.rack[f]:
            first += [s for s in self._above_share() if self.rack[s] == self.rack[f]][:1]
        best = self._nearest_of(first, f, desired, want_leader, tolerance)
        if best is None or best[0] > desired * tolerance:
            more = [s for s in islice(self._above_share(), 1 + MORE_SOURCES) if s not in first]
            best = min(filter(None, (best, self._nearest_of(more, f, desired, want_leader, tolerance))),
                       default=None)
        for limit in (SOURCE_SCAN, None):
            for s in self._above_share() if best is None else ():
                best = self._nearest(s, f, desired, want_leader, limit)
                if best is not None:
                    break
        if best is None:
            return self._take_from_moving_partition(f, desired)
        _, at, replicas, s = best
        i = replicas.pop(at) % self.key_base
        self._move(i, s, f)
        return i

    def _nearest_of(self, sources: list[int], f: int, desired: float, want_leader: bool,
                    tolerance: float) -> _Pick | None:
        picks = (self._nearest(s, f, desired, want_leader, SOURCE_SCAN, tolerance) for s in sources)
        return min(filter(None, picks), default=None)

    def _nearest(self, s: int, f: int, desired: float, want_leader: bool, limit: int | None,
                 tolerance: float = 0.0) -> _Pick | None:
        """The replica of ``s`` nearest ``desired`` bytes that may move to ``f``, among at most ``limit``
        tried per list: a preferred leader or not as ``want_leader`` says, unless the other kind is
        nearer while the wanted one is off by more than ``tolerance`` (relative). Replicas of
        partitions the plan already moves leave the size lists as they are met
        (``_take_from_moving_partition`` is their way out)."""
        held = self.by_source[s]
        best = self._nearest_in(held[want_leader], s, f, desired, limit)
        if best is None or best[0] > desired * tolerance:
            other = self._nearest_in(held[not want_leader], s, f, desired, limit)
            if other is not None and (best is None or other[0] < best[0]):
                return other
        return best

    def _nearest_in(self, replicas: list[int], s: int, f: int, desired: float, limit: int | None) -> _Pick | None:
        base, touched = self.key_base, self.touched
        lo = bisect_left(replicas, int(desired) * base) - 1
        hi = lo + 1
        tried = 0
        while (lo >= 0 or hi < len(replicas)) and (limit is None or tried < limit):
            upward = hi < len(replicas) and (lo < 0 or replicas[hi] // base - desired <= desired - replicas[lo] // base)
            at = hi if upward else lo
            size, i = divmod(replicas[at], base)
            if i in touched:
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

    def _take_from_moving_partition(self, f: int, desired: float) -> int | None:
        """The last resort: a second replica of a partition the plan already moves."""
        best: tuple[float, int, int] | None = None
        for i in sorted(self.touched):
            for s in self.replicas[i]:
                if s in self.by_source and self.count[s] > self.share[s] and self._may_move(i, s, f):
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
