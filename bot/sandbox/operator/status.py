"""Status conditions and the Kafka / KafkaNodePool status documents, shaped as Strimzi writes them.

Strimzi writes the Kafka status once, at the end of a reconciliation: warnings first, then one
``Ready`` (success) or ``NotReady`` (reason = the exception's class name) condition, and
``observedGeneration`` = the generation read when the reconciliation started
(``KafkaAssemblyOperator.createOrUpdate``; docs/strimzi.md §1).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bot.sandbox.operator import names


def now_iso() -> str:
    """Kubernetes time format (what Strimzi's StatusUtils.iso8601Now produces, to the second)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    """events.k8s.io ``eventTime`` (MicroTime)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def condition(ctype: str, *, reason: str | None = None, message: str | None = None,
              status: str = "True") -> dict[str, Any]:
    cond: dict[str, Any] = {"type": ctype, "status": status, "lastTransitionTime": now_iso()}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def warning(reason: str, message: str) -> dict[str, Any]:
    return condition("Warning", reason=reason, message=message)


def ready() -> dict[str, Any]:
    return condition("Ready")


def not_ready(reason: str, message: str) -> dict[str, Any]:
    return condition("NotReady", reason=reason, message=message)


def creating() -> dict[str, Any]:
    """The condition a brand-new Kafka gets before its first reconciliation finishes."""
    return not_ready("Creating", "Kafka cluster is being deployed")


def paused() -> dict[str, Any]:
    return condition("ReconciliationPaused")


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = ("type", "status", "reason", "message")
    return all(a.get(k) == b.get(k) for k in keys)


def keep_transition_times(new: list[dict[str, Any]], old: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A condition that did not change keeps its lastTransitionTime (so an unchanged status is a no-op)."""
    old = old or []
    out = []
    for cond in new:
        prev = next((o for o in old if _same(o, cond)), None)
        out.append({**cond, "lastTransitionTime": prev["lastTransitionTime"]} if prev and
                   prev.get("lastTransitionTime") else cond)
    return out


def error_condition(exc: BaseException) -> dict[str, Any]:
    """NotReady with Strimzi's convention: reason = exception class name, message = its text."""
    reason = getattr(exc, "strimzi_reason", None) or type(exc).__name__
    return not_ready(reason, str(exc) or reason)


class ReconcileFailure(Exception):
    """A reconciliation failure reported with the name of the Strimzi exception it stands for."""

    def __init__(self, strimzi_reason: str, message: str) -> None:
        super().__init__(message)
        self.strimzi_reason = strimzi_reason


def kafka_status(
    *,
    conditions: list[dict[str, Any]],
    observed_generation: int,
    listeners: list[dict[str, Any]],
    pools: list[str],
    cluster_id: str | None,
    kafka_version: str | None,
    metadata_version: str | None,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": conditions,
        "observedGeneration": observed_generation,
        "listeners": listeners,
        "kafkaNodePools": [{"name": p} for p in sorted(pools)],
        "operatorLastSuccessfulVersion": names.OPERATOR_VERSION,
    }
    if cluster_id:
        status["clusterId"] = cluster_id
    if kafka_version:
        status["kafkaVersion"] = kafka_version
    if metadata_version:
        status["kafkaMetadataVersion"] = metadata_version
    return status


def node_pool_status(
    *, cluster: str, pool: str, generation: int, node_ids: list[int], roles: list[str], cluster_id: str | None,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": [],
        "observedGeneration": generation,
        "nodeIds": sorted(node_ids),
        "roles": roles,
        "replicas": len(node_ids),
        "labelSelector": names.selector_string(names.pool_selector_labels(cluster, pool)),
    }
    if cluster_id:
        status["clusterId"] = cluster_id
    return status


def without_times(status: Mapping[str, Any] | None) -> Any:
    """The status with lastTransitionTime stripped, to compare two statuses for equality."""
    if not status:
        return {}
    out = dict(status)
    if "conditions" in out:
        out["conditions"] = [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                             for c in out.get("conditions") or []]
    return out
