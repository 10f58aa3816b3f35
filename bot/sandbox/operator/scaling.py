"""KafkaNodePool scaling: new nodes, and the scale-down check that reverts and warns.

Scale-up creates pods for the new ids (``nodepools.assign_node_ids``), formatted at the cluster's
current metadata level. Scale-down first asks Kafka whether the leaving brokers still hold partition
replicas (``BrokersInUseCheck``); if they do, every scaling-down pool is reverted in memory and
gets Strimzi's ``ScaleDownPreventionCheck`` warning, and the reconciliation goes on with the old
node set. Only after the rolling update are the leaving pods removed (``KafkaReconciler.scaleDown``)
and their registrations dropped from KRaft (``KafkaNodeUnregistration``).

Static quorum (Strimzi's KRaft mode): the voter set is fixed when the cluster is created. New nodes
of a pool with both roles therefore run broker-only (Strimzi would add them as controllers, which a
static quorum cannot take; a broker-only pool is the faithful way to add brokers). Removing a voter
is refused (``InvalidResourceException``), adding a controller-only node too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.sandbox.operator import names
from bot.sandbox.operator import status as st
from bot.sandbox.operator.cluster import ClusterRuntime, pod_revision
from bot.sandbox.operator.nodepools import PoolRequest, assign_node_ids, parse_id_ranges
from bot.sandbox.operator.pods import BrokerPod

log = logging.getLogger(__name__)


def pool_roles(pool: dict[str, Any]) -> frozenset[str]:
    roles = (pool.get("spec") or {}).get("roles") or [names.ROLE_BROKER]
    return frozenset(str(r) for r in roles)


@dataclass(frozen=True)
class Removal:
    pod: BrokerPod
    delete_claim: bool


class NodePoolScaler:
    def __init__(self, runtime: ClusterRuntime, kafka: dict[str, Any], pools: list[dict[str, Any]], *,
                 ready_timeout_s: float) -> None:
        self.runtime = runtime
        self.kafka = kafka
        self.pools = {p["metadata"]["name"]: p for p in pools}
        self.ready_timeout_s = ready_timeout_s

    def _requests(self, warnings: list[dict[str, Any]]) -> list[PoolRequest]:
        requests = []
        for name, pool in sorted(self.pools.items()):
            annotations = pool["metadata"].get("annotations") or {}
            requests.append(PoolRequest(
                name=name,
                replicas=int((pool.get("spec") or {}).get("replicas") or 0),
                current_ids=tuple(p.node_id for p in self.runtime.pool_pods(name)),
                next_ids=tuple(self.ids_annotation(annotations, names.ANNO_NEXT_NODE_IDS, name, warnings)),
                remove_ids=tuple(self.ids_annotation(annotations, names.ANNO_REMOVE_NODE_IDS, name, warnings)),
            ))
        for gone in sorted(self.runtime.pools() - set(self.pools)):  # a deleted pool scales to zero
            requests.append(PoolRequest(gone, 0, tuple(p.node_id for p in self.runtime.pool_pods(gone))))
        return requests

    @staticmethod
    def ids_annotation(annotations: dict[str, str], key: str, pool: str, warnings: list[dict[str, Any]]) -> list[int]:
        raw = annotations.get(key)
        if not raw:
            return []
        try:
            return parse_id_ranges(raw)
        except ValueError as e:
            warnings.append(st.warning("InvalidAnnotation", f"KafkaNodePool {pool}: annotation {key} ignored: {e}"))
            return []

    async def scale_up_and_check_down(
        self, *, version: str, metadata_version: str, state_warnings: list[dict[str, Any]],
        config_for: Callable[[BrokerPod], dict[str, str]],
    ) -> list[Removal]:
        requests = self._requests(state_warnings)
        assignment = assign_node_ids(requests)
        leaving = sorted(nid for a in assignment.values() for nid in a.removed)
        if leaving and not names.is_true(self.kafka["metadata"].get("annotations"), names.ANNO_SKIP_SCALEDOWN_CHECK):
            in_use = await self._brokers_with_replicas(set(leaving))
            if in_use:
                log.warning("Cannot scale down brokers %s because %s have assigned partition-replicas",
                            leaving, in_use)
                reverted = [r for r in requests if r.replicas < len(r.current_ids)]
                for r in reverted:
                    state_warnings.append(st.warning(
                        "ScaleDownPreventionCheck",
                        f"Reverting scale-down of KafkaNodePool {r.name} by changing number of replicas to "
                        f"{len(r.current_ids)}"))
                requests = [PoolRequest(r.name, len(r.current_ids), r.current_ids, r.next_ids, r.remove_ids)
                            if r in reverted else r for r in requests]
                assignment = assign_node_ids(requests)
                leaving = []
        voters_leaving = sorted(set(leaving) & self.runtime.voter_ids)
        if voters_leaving:
            raise st.ReconcileFailure(
                "InvalidResourceException",
                f"Cannot remove KRaft controller node(s) {voters_leaving}: the controller quorum is static, "
                "controllers cannot be added or removed (scale a broker-only node pool instead)")
        await self._add(assignment, version=version, metadata_version=metadata_version, config_for=config_for)
        removals = []
        for a in assignment.values():
            pool = self.pools.get(a.name)
            delete_claim = _delete_claim(pool) if pool else True
            removals += [Removal(self.runtime.pods[nid], delete_claim) for nid in a.removed]
        return removals

    async def _brokers_with_replicas(self, ids: set[int]) -> list[int]:
        partitions = await self.runtime.admin.partitions()
        return sorted({r for p in partitions for r in p.replicas} & ids)

    async def _add(self, assignment: dict[str, Any], *, version: str, metadata_version: str,
                   config_for: Callable[[BrokerPod], dict[str, str]]) -> None:
        new_pods: list[BrokerPod] = []
        for a in assignment.values():
            if not a.added:
                continue
            roles = pool_roles(self.pools[a.name])
            if names.ROLE_CONTROLLER in roles:
                if names.ROLE_BROKER not in roles:
                    raise st.ReconcileFailure(
                        "InvalidResourceException",
                        f"KafkaNodePool {a.name} cannot add controller nodes {list(a.added)}: the controller "
                        "quorum is static")
                roles = frozenset({names.ROLE_BROKER})  # see the module docstring
            desired = {p.node_id: (p.version, p.roles) for p in self.runtime.pool_pods(a.name)}
            desired.update({nid: (version, roles) for nid in a.added})
            self.runtime.apply_podset(a.name, desired)
            for nid in a.added:
                log.info("scaling up KafkaNodePool %s: new node %d (%s)", a.name, nid, ",".join(sorted(roles)))
                new_pods.append(self.runtime.new_pod(a.name, nid, roles))
        if not new_pods:
            return
        await asyncio.gather(*(
            p.create(version=version, config=config_for(p), revision=pod_revision(version, p.roles),
                     metadata_version=metadata_version, owner=self.runtime.podset_owner(p.pool))
            for p in new_pods))
        for p in new_pods:
            if not await p.wait_ready(self.ready_timeout_s):
                raise st.ReconcileFailure("FatalProblem", f"New pod {p.name} did not become ready; {p.log_excerpt()}")

    async def scale_down(self, removals: list[Removal], *, version: str) -> None:
        for r in removals:
            pod = r.pod
            log.info("scaling down KafkaNodePool %s: removing node %d", pod.pool, pod.node_id)
            await pod.remove(delete_claim=r.delete_claim)
            self.runtime.pods.pop(pod.node_id, None)
            if pod.is_broker:
                await self.runtime.unregister_broker(pod.node_id, version)
            remaining = self.runtime.pool_pods(pod.pool)
            if remaining or pod.pool in self.pools:
                self.runtime.apply_podset(pod.pool, {p.node_id: (p.version, p.roles) for p in remaining})
            else:
                self.runtime.delete_podset(pod.pool)


def _delete_claim(pool: dict[str, Any]) -> bool:
    storage = (pool.get("spec") or {}).get("storage") or {}
    if storage.get("type") == "ephemeral":
        return True
    if storage.get("type") == "jbod":
        return all(bool(v.get("deleteClaim")) for v in storage.get("volumes") or [{}])
    return bool(storage.get("deleteClaim"))
