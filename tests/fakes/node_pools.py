"""KafkaNodePools and ``strimzi.io/delete-pod-and-pvc`` in memory: the node-pool half of the
``ClusterGateway`` port, mixed into FakeStrimzi.

Written from Strimzi's documented behaviour (docs/strimzi.md §6-§7), not from the bot's rules:

- a pool's new nodes take the ids of its ``strimzi.io/next-node-ids`` annotation that are free,
  else the lowest id free in the whole cluster; a scale-down removes the ids of
  ``strimzi.io/remove-node-ids`` first, then the pool's highest ids;
- a scale-down of brokers that still hold a replica (or a move in flight to or from them) is
  reverted: the nodes stay, status.nodeIds is unchanged and the Kafka resource carries the
  ``ScaleDownPreventionCheck`` warning;
- a pool with the controller role cannot add or remove nodes (static quorum): its patch is applied
  and its nodes stay, with an ``InvalidResourceException`` warning, as the operator reports it;
- ``delete-pod-and-pvc`` on a pod with the expected uid gives the node a new pod (new uid, Ready)
  and an empty disk: each of its replicas copies its leader's log again, out of the ISR meanwhile.

The operator acts on each patch at once (no reconciliation delay): the fast tests wait for no one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from handlers.ports import ClusterRef, PatchRejected
from runbooks.rules.node_pools import NEXT_NODE_IDS, REMOVE_NODE_IDS, NodePool, parse_id_ranges


@dataclass
class FakePool:
    name: str
    roles: tuple[str, ...]
    replicas: int
    node_ids: list[int]
    annotations: dict[str, str] = field(default_factory=dict)


class NodePools:
    """The host class provides the pods (``add_node``, ``remove_node``, ``replace_node``, ``pod_uid``)
    and says which brokers hold replicas (``brokers_in_use``)."""

    pools: dict[str, FakePool]
    scale_warnings: list[str]
    replacements: dict[int, int]  # node -> delete-pod-and-pvc replacements done

    def init_node_pools(self, broker_ids: list[int]) -> None:
        self.pools = {"brokers": FakePool("brokers", ("broker",), len(broker_ids), list(broker_ids))}
        self.scale_warnings, self.replacements = [], {}

    def add_pool(self, name: str, roles: tuple[str, ...], node_ids: list[int]) -> None:
        """A pool whose nodes are not broker pods of this fake (controllers), or that takes over ``node_ids``."""
        for pool in self.pools.values():
            pool.node_ids = [n for n in pool.node_ids if n not in node_ids]
            pool.replicas = len(pool.node_ids)
        self.pools = {k: p for k, p in self.pools.items() if p.node_ids}
        self.pools[name] = FakePool(name, roles, len(node_ids), list(node_ids))

    # -- the host's -----------------------------------------------------------------------------
    def add_node(self, node: int) -> None:
        raise NotImplementedError

    def remove_node(self, node: int) -> None:
        raise NotImplementedError

    def replace_node(self, node: int) -> None:
        raise NotImplementedError

    def pod_uid(self, pod_name: str) -> tuple[int, str] | None:
        raise NotImplementedError

    def brokers_in_use(self) -> set[int]:
        raise NotImplementedError

    # -- the port -------------------------------------------------------------------------------
    async def node_pools(self, cluster: ClusterRef) -> list[NodePool]:
        return [NodePool(name=p.name, roles=p.roles, replicas=p.replicas, node_ids=tuple(sorted(p.node_ids)),
                         annotations=dict(p.annotations)) for p in sorted(self.pools.values(), key=lambda p: p.name)]

    async def patch_node_pool(self, cluster: ClusterRef, pool: str, *, replicas: int, expected_replicas: int,
                              annotations: Mapping[str, str | None] | None = None) -> None:
        found = self.pools.get(pool)
        if found is None:
            raise PatchRejected(f"KafkaNodePool {pool} not found")
        if found.replicas not in (expected_replicas, replicas):
            raise PatchRejected(f"KafkaNodePool {pool} has {found.replicas} replicas, not {expected_replicas}")
        for key, value in (annotations or {}).items():
            if value is None:
                found.annotations.pop(key, None)
            else:
                found.annotations[key] = value
        found.replicas = replicas
        self._reconcile_pool(found)

    async def request_pod_and_pvc_replacement(self, cluster: ClusterRef, pod_name: str, expected_uid: str) -> bool:
        found = self.pod_uid(pod_name)
        if found is None or found[1] != expected_uid:
            return False
        self.replacements[found[0]] = self.replacements.get(found[0], 0) + 1
        self.replace_node(found[0])
        return True

    # -- the operator ---------------------------------------------------------------------------
    def _reconcile_pool(self, pool: FakePool) -> None:
        current = sorted(pool.node_ids)
        if pool.replicas != len(current) and "controller" in pool.roles:
            self.scale_warnings.append(f"InvalidResourceException: KafkaNodePool {pool.name} cannot add or remove "
                                       "controller nodes: the controller quorum is static")
            return
        if pool.replicas > len(current):
            used = {n for p in self.pools.values() for n in p.node_ids}
            preferred = parse_id_ranges(pool.annotations[NEXT_NODE_IDS]) if NEXT_NODE_IDS in pool.annotations else []
            for _ in range(pool.replicas - len(current)):
                nid = next((i for i in preferred if i not in used), None)
                if nid is None:
                    nid = next(i for i in range(len(used) + 1) if i not in used)
                used.add(nid)
                pool.node_ids.append(nid)
                self.add_node(nid)
        elif pool.replicas < len(current):
            named = pool.annotations.get(REMOVE_NODE_IDS)
            preferred = parse_id_ranges(named) if named else []
            first = [i for i in preferred if i in current]
            leaving = (first + [i for i in reversed(current) if i not in first])[:len(current) - pool.replicas]
            if set(leaving) & self.brokers_in_use():
                self.scale_warnings.append(f"ScaleDownPreventionCheck: Reverting scale-down of KafkaNodePool "
                                           f"{pool.name} by changing number of replicas to {len(current)}")
                return
            for nid in leaving:
                pool.node_ids.remove(nid)
                self.remove_node(nid)
