"""Writing a Kafka cluster's status, and its KafkaNodePools', as a reconciliation of it ends (or,
for the pause and the first pass, as it starts); ``ReconcileState`` is what the final status is
made of.

Strimzi writes the whole Kafka status with one PUT and only when it changed (``StatusDiff``), and
each pool's status next to it (docs/strimzi.md §1). The documents themselves are shaped in
``status``; these writers are apart from ``reconciler`` to keep that module to the reconciliation's
steps and within the project's size limit. The other resources' operators (``topics``, ``users``,
``mirrormaker2``) write their own, simpler, statuses.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.kube.store import ApiError, ObjectStore
from bot.sandbox.operator import names
from bot.sandbox.operator import status as st
from bot.sandbox.operator.cluster import ClusterRuntime
from bot.sandbox.operator.scaling import pool_roles

log = logging.getLogger(__name__)


@dataclass
class ReconcileState:
    """What the final status is made of, filled in as the reconciliation goes."""

    warnings: list[dict[str, Any]] = field(default_factory=list)
    kafka_version: str | None = None
    metadata_version: str | None = None


def write_status(store: ObjectStore, *, namespace: str, name: str, status: dict[str, Any]) -> None:
    try:
        kafka = store.get(names.KAFKA_GROUP, names.KAFKAS, namespace, name)
    except ApiError:
        return
    old = kafka.get("status") or {}
    status = {**status, "conditions": st.keep_transition_times(status.get("conditions") or [],
                                                               old.get("conditions"))}
    if st.without_times(status) == st.without_times(old):
        return  # Strimzi's StatusDiff: an identical status is not written
    # A PUT of the whole status (the resourceVersion just read makes it a compare-and-set; nothing
    # can write in between, the store lives on this event loop).
    kafka["status"] = status
    store.replace(names.KAFKA_GROUP, names.KAFKAS, namespace, name, kafka, subresource="status")


def write_final_status(store: ObjectStore, *, namespace: str, name: str, runtime: ClusterRuntime | None,
                       declared_pools: set[str], generation: int, conditions: list[dict[str, Any]],
                       state: ReconcileState) -> None:
    write_status(store, namespace=namespace, name=name, status=st.kafka_status(
        conditions=conditions,
        observed_generation=generation,
        listeners=runtime.security.status(runtime.broker_pods()) if runtime else [],
        pools=sorted(runtime.pools() | declared_pools) if runtime else [],
        cluster_id=runtime.cluster_id if runtime else None,
        kafka_version=state.kafka_version,
        metadata_version=state.metadata_version,
    ))
    if runtime is not None:
        runtime.security.publish_ca_secrets(runtime.kafka_owner())
        write_pool_statuses(store, namespace=namespace, name=name, runtime=runtime)


def write_pool_statuses(store: ObjectStore, *, namespace: str, name: str, runtime: ClusterRuntime) -> None:
    pools, _ = store.list(names.KAFKA_GROUP, names.NODE_POOLS, namespace,
                          label_selector=f"{names.LABEL_CLUSTER}={name}")
    for pool in pools:
        pname = pool["metadata"]["name"]
        new = st.node_pool_status(
            cluster=name, pool=pname, generation=int(pool["metadata"].get("generation", 1)),
            node_ids=[p.node_id for p in runtime.pool_pods(pname)], roles=sorted(pool_roles(pool)),
            cluster_id=runtime.cluster_id)
        if pool.get("status") != new:
            try:
                store.merge_patch(names.KAFKA_GROUP, names.NODE_POOLS, namespace, pname,
                                  {"status": new}, subresource="status")
            except ApiError as e:
                log.debug("node pool %s status not written: %s", pname, e)
