"""The reassignment planner: the fewest replica moves that empty the drained brokers and bring the
filled brokers up to their fair share, and nothing else.

What a plan guarantees (tests/runbooks/test_reassignment*.py hold it to each):

- Every partition keeps its replication factor and never has two replicas on one broker. Drained
  brokers end with no replica; new replicas go only to live brokers that are not drained.
- **Draining moves only the drained brokers' replicas**: a partition with no replica on them is not
  touched, and one with a replica on them keeps its other replicas where they are, in place in its
  replica list. That is P·R/N replicas for a balanced cluster, the lower bound. With fill brokers
  too (a broker replaced by a new one), drained replicas go to the fill brokers below the mean
  first, so each replica is copied once, straight to where it belongs.
- **Filling moves only the fill brokers' fair share**: each gets the floor of (replicas on live
  brokers) / (live brokers left), or, with racks, no more than its rack can hold per broker
  (``_fair_shares``), taken one replica at a time from the broker holding the most bytes that is
  above its own share (never taking it below), choosing the replica whose size keeps the fill
  broker on course for its share of the bytes. From a balanced cluster every broker ends within ±1
  of the mean count, and the fill brokers near their byte share. Nothing moves between the other
  brokers; a fill broker left short (``shortfalls``) is one no replica may still move to.
- **Racks**: where brokers have racks, each new replica goes to a rack its partition does not use
  yet while one is left, so a drained partition spans min(RF, racks) racks when its other replicas
  were already spread; a fill move never narrows a partition's rack spread. A drain that would
  narrow a partition's spread because it takes away the last live broker of a rack is refused.
- **Bytes, not counts**: a drained replica goes to the eligible broker holding the fewest bytes
  (largest partitions placed first, the classic LPT rule), with counts breaking ties.
- **Leaders**: a partition whose preferred leader survives keeps it. When the drained broker was the
  preferred leader, a surviving replica takes that place (the current leader if it survives, else
  the survivor leading the fewest partitions), so no leadership lands on a replica that is still
  catching up; with RF 1 the new replica leads. The exception is a fill broker (a broker replacing
  the drained one) that leads fewer than its share of partitions: it takes the drained leader's
  place, or it would end with almost no leaderships. Fill moves replace in place, so a fill broker
  leads about its share of the partitions it receives, and the planner steers that share to 1/RF.
- Refusals (PlanRefused, nothing planned): see ``check_request``, plus a partition whose RF
  exceeds the live brokers left to it, and a drain that takes a partition's rack spread down.
- Deterministic: the same request gives the same plan (unlike ``kafka-reassign-partitions
  --generate``, whose start index is random).
"""

from __future__ import annotations

from bisect import bisect_left, insort

from runbooks.engine.models import PlanRefused
from runbooks.rules.reassignment import (
    BrokerFlow,
    PartitionMove,
    ReassignmentPlan,
    ReassignmentRequest,
    check_request,
    ids,
    named,
)
from runbooks.rules.reassignment_fill import Layout

# A drain destination's rank, least loaded first: (not a fill broker below the mean, bytes, replicas, id)
_Rank = tuple[bool, int, int, int]


def plan_reassignment(request: ReassignmentRequest) -> ReassignmentPlan:
    """The plan for ``request``, or PlanRefused saying why there is none."""
    check_request(request)
    layout = _Planner(request)
    layout.check_room()
    layout.drain()
    shortfalls = layout.fill()
    return layout.plan(shortfalls)


class _Planner(Layout):
    """The drain, the refusals it needs, and the plan's figures, on the working assignment."""

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
        """Replace each drained replica in place by the least-loaded eligible broker, largest first;
        fill brokers below the mean (in count and bytes) first, as they are to receive replicas anyway."""
        total = sum(self.count[b] for b in self.targets) + sum(self.count[d] for d in self.drained)
        self.mean = total // len(self.targets)
        self.mean_bytes = (sum(self.bytes[b] for b in self.targets)
                           + sum(self.bytes[d] for d in self.drained)) / len(self.targets)
        self.leader_share = len(self.parts) // len(self.targets)
        ranking = sorted(self._rank(b) for b in self.targets)
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

    def _rank(self, b: int) -> _Rank:
        below = b in self.request.fill and self.count[b] < self.mean and self.bytes[b] < self.mean_bytes
        return (not below, self.bytes[b], self.count[b], b)

    def _least_loaded(self, ranking: list[_Rank], members: set[int], used: set[str | None] | None) -> int:
        want_new_rack = used is not None and not self.target_racks <= used
        for _, _, _, broker in ranking:
            if broker in members or (want_new_rack and used is not None and self.rack[broker] in used):
                continue
            return broker
        raise AssertionError("check_room leaves every drained replica a broker")  # pragma: no cover

    def _shift(self, i: int, old: int, new: int, ranking: list[_Rank]) -> None:
        size = self.size[i]
        del ranking[bisect_left(ranking, self._rank(new))]
        self.count[old] -= 1
        self.bytes[old] -= size
        self.count[new] += 1
        self.bytes[new] += size
        insort(ranking, self._rank(new))

    def _keep_a_survivor_first(self, i: int, original: tuple[int, ...]) -> None:
        """The drained preferred leader's place goes to a surviving live replica, not a new one;
        except to a fill broker leading fewer than its share of partitions (a broker replacing
        another gets its leaderships), which keeps the place it was given in the list."""
        reps = self._editable(i)
        survivors = [r for r in original if r not in self.drained and r in self.alive]
        new = reps[0]
        if survivors and not (new in self.request.fill and self.leads[new] < self.leader_share):
            leader = self.parts[i].leader
            chosen = leader if leader in survivors else min(survivors, key=lambda b: (self.leads[b], reps.index(b)))
            k = reps.index(chosen)
            reps[0], reps[k] = reps[k], reps[0]
        self.leads[original[0]] -= 1
        self.leads[reps[0]] += 1
    def plan(self, shortfalls: list[str]) -> ReassignmentPlan:
        moves = []
        for i in self.touched:
            p = self.parts[i]
            new = tuple(self.replicas[i])
            if new != p.replicas:
                assert p.leader is not None  # check_request refuses offline partitions
                # model_construct: the fields are the request's own validated values (a tenth of the
                # planning time at 100,000 partitions went to validating them again)
                moves.append(PartitionMove.model_construct(topic=p.topic, partition=p.partition, old=p.replicas,
                                                           new=new, leader=p.leader, size_bytes=p.size_bytes))
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
            fair_share=self.share.get(b),
        ) for b in sorted(self.rack))

    def _lower_bounds(self) -> dict[str, int]:
        count, nbytes, _ = self.before
        drained_replicas = sum(count[d] for d in self.drained)
        drained_bytes = sum(nbytes[d] for d in self.drained)
        if not self.request.fill:
            return {"lower_bound_replicas": drained_replicas, "lower_bound_bytes": drained_bytes}
        self._fair_shares()
        fill_replicas = sum(max(0, self.share[f] - count[f]) for f in self.request.fill)
        fill_bytes = round(sum(max(0.0, self.byte_share[f] - nbytes[f]) for f in self.request.fill))
        return {"lower_bound_replicas": max(drained_replicas, fill_replicas),
                "lower_bound_bytes": max(drained_bytes, fill_bytes)}
