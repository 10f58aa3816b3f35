"""The Cruise Control twin's proposals: which replicas a KafkaRebalance moves, pure.

Not Cruise Control's goal optimizer: a small, deterministic planner of its own (it must not share
code with the bot's planner, so a bug in one cannot hide behind the same bug in the other):

- ``remove-brokers``: every replica on the listed brokers goes to a remaining broker (fewest replicas
  first, a rack the partition does not use yet preferred); the surviving replicas keep their order,
  so a partition led from a leaving broker gets a surviving replica as its preferred leader.
- ``add-brokers``: the listed brokers take replicas from the fullest other brokers until each holds
  its fair share (total replicas / brokers, rounded down).
- ``full``: replicas move from the fullest to the emptiest broker until counts differ by at most one.

A move never puts two replicas of a partition on one broker, and in ``add-brokers``/``full`` never
lowers the number of racks a partition spans. The summary has the fields Strimzi copies from Cruise
Control into ``status.optimizationResult``; the balancedness score is the twin's own measure
(100 = every broker holds the mean replica count; it goes down with the total deviation from it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MODES = ("full", "add-brokers", "remove-brokers")
MB = 1024 * 1024


class ProposalError(Exception):
    """Cruise Control cannot make a proposal; ``reason`` becomes the NotReady condition's reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class PartitionLoad:
    topic: str
    partition: int
    replicas: tuple[int, ...]  # the first is the preferred leader
    size_bytes: int = 0  # the partition's size on its leader


@dataclass(frozen=True)
class Proposal:
    mode: str
    brokers: tuple[int, ...]  # spec.brokers (empty for full)
    targets: dict[tuple[str, int], tuple[int, ...]] = field(default_factory=dict)  # changed partitions only
    sizes: dict[tuple[str, int], int] = field(default_factory=dict)
    num_replica_movements: int = 0
    num_leader_movements: int = 0
    data_to_move_bytes: int = 0
    balancedness_before: float = 100.0
    balancedness_after: float = 100.0

    @property
    def data_to_move_mb(self) -> int:
        return math.ceil(self.data_to_move_bytes / MB)

    def optimization_result(self, *, load_config_map: str) -> dict[str, Any]:
        """``status.optimizationResult`` with the keys Cruise Control's summary has."""
        return {
            "numIntraBrokerReplicaMovements": 0,
            "numReplicaMovements": self.num_replica_movements,
            "onDemandBalancednessScoreAfter": self.balancedness_after,
            "afterBeforeLoadConfigMap": load_config_map,
            "intraBrokerDataToMoveMB": 0,
            "monitoredPartitionsPercentage": 100.0,
            "provisionRecommendation": "",
            "excludedBrokersForReplicaMove": [],
            "excludedBrokersForLeadership": [],
            "provisionStatus": "RIGHT_SIZED",
            "onDemandBalancednessScoreBefore": self.balancedness_before,
            "recentWindows": 1,
            "dataToMoveMB": self.data_to_move_mb,
            "excludedTopics": [],
            "numLeaderMovements": self.num_leader_movements,
        }


def propose(mode: str, brokers: Sequence[int], racks: Mapping[int, str | None],
            partitions: Iterable[PartitionLoad]) -> Proposal:
    """A proposal for ``mode`` on the cluster whose live brokers (id -> rack) are ``racks``."""
    if mode not in MODES:
        raise ProposalError("InvalidResourceException",
                            f"Unknown rebalance mode {mode!r}; valid modes: {', '.join(MODES)} "
                            "(remove-disks is not modelled by the sandbox)")
    listed = tuple(sorted(set(int(b) for b in brokers)))
    if mode != "full" and not listed:
        raise ProposalError("InvalidResourceException",
                            f"The brokers list is mandatory when using the {mode} rebalancing mode")
    unknown = [b for b in listed if b not in racks]
    if unknown:
        raise ProposalError("CruiseControlRestException",
                            f"Error processing POST request: broker(s) {unknown} do not exist or are not alive "
                            f"(alive brokers: {sorted(racks)})")
    parts = sorted(partitions, key=lambda p: (p.topic, p.partition))
    layout = {(p.topic, p.partition): list(p.replicas) for p in parts}
    counts = {b: 0 for b in racks}
    for replicas in layout.values():
        for r in replicas:
            counts[r] = counts.get(r, 0) + 1
    staying = [b for b in racks if mode != "remove-brokers" or b not in listed]
    before = balancedness(counts, staying)  # judged against the brokers that are to hold the data
    if mode == "remove-brokers":
        _remove(layout, counts, set(listed), staying, racks)
    elif mode == "add-brokers":
        _fill(layout, counts, listed, racks)
    else:
        _even_out(layout, counts, racks)
    return _summary(mode, listed, parts, layout, before, balancedness(counts, staying))


def balancedness(counts: Mapping[int, int], brokers: Sequence[int]) -> float:
    """100 when each of ``brokers`` holds the mean; 0 when one holds everything (replicas elsewhere count too)."""
    total = sum(counts.values())
    if not brokers or total == 0:
        return 100.0
    mean = total / len(brokers)
    off = sum(abs(counts.get(b, 0) - mean) for b in brokers) + sum(c for b, c in counts.items() if b not in brokers)
    return round(max(0.0, 100.0 * (1 - off / (2 * total))), 3)


def _rack_count(replicas: Sequence[int], racks: Mapping[int, str | None]) -> int:
    return len({racks.get(r) or f"broker-{r}" for r in replicas})


def _remove(layout: dict[tuple[str, int], list[int]], counts: dict[int, int], leaving: set[int],
            staying: Sequence[int], racks: Mapping[int, str | None]) -> None:
    for key, replicas in layout.items():
        gone = [r for r in replicas if r in leaving]
        if not gone:
            continue
        kept = [r for r in replicas if r not in leaving]
        added: list[int] = []
        for r in gone:
            used = kept + added
            used_racks = {racks.get(b) for b in used}
            candidates = [b for b in staying if b not in used]
            if not candidates:
                raise ProposalError(
                    "CruiseControlRestException",
                    f"Not enough brokers to remove {sorted(leaving)}: partition {key[0]}-{key[1]} has "
                    f"{len(replicas)} replicas and only {len(staying)} broker(s) would remain")
            target = min(candidates, key=lambda b: (racks.get(b) in used_racks and racks.get(b) is not None,
                                                    counts.get(b, 0), b))
            added.append(target)
            counts[r] -= 1
            counts[target] = counts.get(target, 0) + 1
        layout[key] = kept + added


def _move_one(layout: dict[tuple[str, int], list[int]], counts: dict[int, int], source: int, target: int,
              racks: Mapping[int, str | None]) -> bool:
    """Move one replica from ``source`` to ``target``; followers before leaders. False if none can move."""
    best: tuple[int, tuple[str, int], int] | None = None
    for key, replicas in layout.items():
        if source not in replicas or target in replicas:
            continue
        index = replicas.index(source)
        after = [target if r == source else r for r in replicas]
        if _rack_count(after, racks) < _rack_count(replicas, racks):
            continue
        rank = 1 if index == 0 else 0
        if best is None or rank < best[0]:
            best = (rank, key, index)
            if rank == 0:
                break
    if best is None:
        return False
    _, key, index = best
    layout[key][index] = target
    counts[source] -= 1
    counts[target] = counts.get(target, 0) + 1
    return True


def _fill(layout: dict[tuple[str, int], list[int]], counts: dict[int, int], new: Sequence[int],
          racks: Mapping[int, str | None]) -> None:
    fair = sum(counts.values()) // max(1, len(counts))
    for target in new:
        donors_exhausted: set[int] = set()
        while counts.get(target, 0) < fair:
            donors = [b for b in counts if b not in new and b not in donors_exhausted and counts[b] > fair]
            if not donors:
                break
            donor = max(donors, key=lambda b: (counts[b], -b))
            if not _move_one(layout, counts, donor, target, racks):
                donors_exhausted.add(donor)


def _even_out(layout: dict[tuple[str, int], list[int]], counts: dict[int, int],
              racks: Mapping[int, str | None]) -> None:
    stuck: set[tuple[int, int]] = set()
    for _ in range(sum(counts.values()) + 1):
        order = sorted(counts, key=lambda b: (counts[b], b))
        pairs = [(hi, lo) for hi in reversed(order) for lo in order
                 if counts[hi] - counts[lo] > 1 and (hi, lo) not in stuck]
        if not pairs:
            return
        hi, lo = pairs[0]
        if not _move_one(layout, counts, hi, lo, racks):
            stuck.add((hi, lo))


def _summary(mode: str, listed: tuple[int, ...], parts: Sequence[PartitionLoad],
             layout: Mapping[tuple[str, int], list[int]], before: float, after: float) -> Proposal:
    targets: dict[tuple[str, int], tuple[int, ...]] = {}
    sizes: dict[tuple[str, int], int] = {}
    moves = leaders = data = 0
    for p in parts:
        key = (p.topic, p.partition)
        new = tuple(layout[key])
        if new == p.replicas:
            continue
        targets[key] = new
        sizes[key] = p.size_bytes
        added = len(set(new) - set(p.replicas))
        moves += added
        data += added * p.size_bytes
        if new[:1] != p.replicas[:1]:
            leaders += 1
    return Proposal(mode=mode, brokers=listed, targets=targets, sizes=sizes, num_replica_movements=moves,
                    num_leader_movements=leaders, data_to_move_bytes=data, balancedness_before=before,
                    balancedness_after=after)
