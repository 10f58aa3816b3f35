"""KafkaNodePools as the scale runbook sees them, and Strimzi's rules for which node ids a scale adds
or removes (its ``NodeIdAssignor``): pure.

Scale-up takes ids from the pool's ``strimzi.io/next-node-ids`` annotation when it names free ones,
else the lowest id free in the whole cluster (every pool's nodes, controllers included); scale-down
removes the ids of ``strimzi.io/remove-node-ids`` first, then the highest ids of the pool. The plan
of a scale-up moves replicas onto ids that do not exist yet, so it is made against these predicted
ids, and the run checks that Strimzi created exactly them before any replica moves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

NEXT_NODE_IDS = "strimzi.io/next-node-ids"
REMOVE_NODE_IDS = "strimzi.io/remove-node-ids"
SCALE_DOWN_WARNING = "ScaleDownPreventionCheck"


class NodePool(BaseModel):
    """One KafkaNodePool: its roles, spec.replicas, status.nodeIds and annotations."""

    model_config = ConfigDict(frozen=True)

    name: str
    roles: tuple[str, ...] = ("broker",)
    replicas: int = 0
    node_ids: tuple[int, ...] = ()
    annotations: dict[str, str] = Field(default_factory=dict)

    @property
    def brokers_only(self) -> bool:
        return "broker" in self.roles and "controller" not in self.roles

    @property
    def role_text(self) -> str:
        return "+".join(sorted(self.roles)) or "no role"


def parse_id_ranges(text: str) -> list[int]:
    """``[0, 1, 10-12]`` -> [0, 1, 10, 11, 12]; ValueError on anything else (Strimzi's format)."""
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise ValueError(f"{text!r} is not a list of node ids like [0, 1, 10-20]")
    out: list[int] = []
    for item in (i.strip() for i in body[1:-1].split(",")):
        if not item:
            continue
        lo, _, hi = item.partition("-")
        first, last = int(lo), int(hi or lo)
        if first < 0 or last < first:
            raise ValueError(f"bad node id range {item!r} in {text!r}")
        out.extend(range(first, last + 1))
    return out


def id_list(ids: Iterable[int]) -> str:
    """The annotation's format: ``[3, 4]``."""
    return "[" + ", ".join(str(i) for i in sorted(ids)) + "]"


def predicted_new_ids(pools: Sequence[NodePool], pool: NodePool, count: int, in_use: Iterable[int] = ()) -> list[int]:
    """The ids Strimzi gives ``count`` new nodes of ``pool``; ValueError if its next-node-ids is unreadable."""
    used = set(in_use) | {i for p in pools for i in p.node_ids}
    preferred = parse_id_ranges(pool.annotations[NEXT_NODE_IDS]) if NEXT_NODE_IDS in pool.annotations else []
    added: list[int] = []
    for _ in range(count):
        nid = next((i for i in preferred if i not in used), None)
        if nid is None:
            nid = next(i for i in range(len(used) + 1) if i not in used)
        used.add(nid)
        added.append(nid)
    return sorted(added)


def removed_ids(pool: NodePool, count: int, preferred: Sequence[int]) -> list[int]:
    """The ids a scale-down by ``count`` removes: ``preferred`` first, then the pool's highest."""
    rest = [i for i in sorted(pool.node_ids, reverse=True) if i not in preferred]
    return sorted([*preferred, *rest][:count])
