"""Node id assignment for KafkaNodePool scaling (Strimzi's ``NodeIdAssignor``), pure.

Scale-up takes ids from ``strimzi.io/next-node-ids`` when given, else the lowest id free in the
whole cluster; scale-down removes ids from ``strimzi.io/remove-node-ids`` when given, else the
highest ids of the pool (docs/strimzi.md §6). Ids are cluster-wide, never reused while in use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


def parse_id_ranges(text: str) -> list[int]:
    """``"[0, 1, 10-12]"`` -> [0, 1, 10, 11, 12]; raises ValueError on anything else."""
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise ValueError(f"{text!r} is not a list of node ids like [0, 1, 10-20]")
    out: list[int] = []
    for item in body[1:-1].split(","):
        item = item.strip()
        if not item:
            continue
        if "-" in item:
            lo_s, hi_s = (p.strip() for p in item.split("-", 1))
            lo, hi = int(lo_s), int(hi_s)
            if lo < 0 or hi < lo:
                raise ValueError(f"bad node id range {item!r} in {text!r}")
            out.extend(range(lo, hi + 1))
        else:
            value = int(item)
            if value < 0:
                raise ValueError(f"negative node id in {text!r}")
            out.append(value)
    return out


@dataclass(frozen=True)
class PoolRequest:
    name: str
    replicas: int
    current_ids: tuple[int, ...]
    next_ids: tuple[int, ...] = ()
    remove_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class PoolAssignment:
    name: str
    node_ids: tuple[int, ...]  # desired, sorted
    added: tuple[int, ...]
    removed: tuple[int, ...]


def assign_node_ids(pools: Iterable[PoolRequest], *, reserved: Iterable[int] = ()) -> dict[str, PoolAssignment]:
    """Desired node ids per pool. ``reserved``: ids in use outside these pools (never handed out)."""
    pools = sorted(pools, key=lambda p: p.name)
    used = set(reserved)
    for p in pools:
        used.update(p.current_ids)
    result: dict[str, PoolAssignment] = {}
    for p in pools:
        current = sorted(set(p.current_ids))
        removed: list[int] = []
        added: list[int] = []
        if p.replicas < len(current):
            count = len(current) - p.replicas
            preferred = [i for i in p.remove_ids if i in current]
            rest = [i for i in sorted(current, reverse=True) if i not in preferred]
            removed = (preferred + rest)[:count]
        elif p.replicas > len(current):
            for _ in range(p.replicas - len(current)):
                nid = next((i for i in p.next_ids if i not in used), None)
                if nid is None:
                    nid = next(i for i in range(len(used) + 1) if i not in used)
                used.add(nid)
                added.append(nid)
        ids = tuple(sorted((set(current) - set(removed)) | set(added)))
        result[p.name] = PoolAssignment(p.name, ids, tuple(sorted(added)), tuple(sorted(removed)))
    return result
