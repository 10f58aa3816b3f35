"""Pure translation of kafka-python admin results (plain dicts) into ``runbooks.rules.health`` models.

Kept apart from the I/O so each rule is visible in one place and testable without a broker. The
shapes are those of kafka-python 3.0's ``describe_cluster``, ``describe_metadata_quorum``,
``describe_topics``, ``list_partition_reassignments`` and ``describe_configs(config_filter='all')``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from runbooks.rules.health import BrokerInfo, PartitionInfo, QuorumInfo, QuorumVoter

MIN_ISR = "min.insync.replicas"
_NO_LEADER = -1


def brokers_from(cluster: Mapping[str, Any]) -> tuple[BrokerInfo, ...]:
    """Brokers of DescribeCluster, fenced ones included (KIP-1073: ``include_fenced_brokers``).

    A broker that has never registered, or whose registration the controller dropped, is absent:
    callers compare with the expected broker ids (pods) to see "missing".
    """
    brokers = [
        BrokerInfo(
            id=int(b["broker_id"]),
            host=str(b.get("host") or ""),
            port=int(b.get("port") or 0),
            rack=b.get("rack") or None,
            fenced=bool(b.get("is_fenced", False)),
        )
        for b in cluster.get("brokers") or []
    ]
    return tuple(sorted(brokers, key=lambda b: b.id))


def quorum_error(described: Mapping[str, Any]) -> str | None:
    """The partition-level error of a DescribeQuorum answer (e.g. during a controller failover)."""
    for topic in described.get("topics") or []:
        for partition in topic.get("partitions") or []:
            if partition.get("error"):
                return str(partition["error"])
    return None


def quorum_from(described: Mapping[str, Any]) -> QuorumInfo | None:
    """The ``__cluster_metadata`` partition of DescribeQuorum; None if the response has none."""
    for topic in described.get("topics") or []:
        for partition in topic.get("partitions") or []:
            if partition.get("error"):
                return None
            leader = partition.get("leader_id")
            voters = tuple(
                QuorumVoter(
                    id=int(v["replica_id"]),
                    log_end_offset=int(v.get("log_end_offset") or 0),
                    # -1 means "never caught up / unknown" on the wire; the rules want None.
                    last_caught_up_ms=_positive_or_none(v.get("last_caught_up_timestamp")),
                )
                for v in partition.get("current_voters") or []
            )
            return QuorumInfo(
                leader_id=None if leader is None or leader < 0 else int(leader),
                voters=tuple(sorted(voters, key=lambda v: v.id)),
            )
    return None


def _positive_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and value >= 0 else None


def partitions_from(
    topics: Iterable[Mapping[str, Any]],
    reassignments: Mapping[Any, Mapping[str, Any]],
) -> tuple[PartitionInfo, ...]:
    """Every partition with leader, replicas, ISR, and adding/removing from ListPartitionReassignments.

    The Metadata response cannot tell which replicas are being added (docs/kafka-ops.md §2); without
    ``adding`` every moving partition would look under-replicated.
    """
    moving = {(tp.topic, tp.partition): r for tp, r in reassignments.items()}
    result = []
    for topic in topics:
        name = str(topic["name"])
        for p in topic.get("partitions") or []:
            index = int(p["partition_index"])
            leader = p.get("leader_id", _NO_LEADER)
            reassignment = moving.get((name, index), {})
            result.append(PartitionInfo(
                topic=name,
                partition=index,
                # leader -1 comes with LEADER_NOT_AVAILABLE; replicas and ISR are still reported.
                leader=None if leader is None or leader < 0 else int(leader),
                replicas=tuple(p.get("replica_nodes") or ()),
                isr=tuple(p.get("isr_nodes") or ()),
                adding=tuple(reassignment.get("adding_replicas") or ()),
                removing=tuple(reassignment.get("removing_replicas") or ()),
            ))
    return tuple(sorted(result, key=lambda p: (p.topic, p.partition)))


def config_int(entries: Mapping[str, Any], key: str = MIN_ISR) -> int | None:
    """An int config value from one resource of ``describe_configs``; None if absent or unreadable."""
    entry = entries.get(key)
    if not isinstance(entry, Mapping):
        return None
    try:
        return int(entry.get("value"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def topic_min_isr(described: Mapping[str, Any]) -> dict[str, int]:
    """Each topic's effective ``min.insync.replicas`` (its override, else the broker's default)."""
    result: dict[str, int] = {}
    for topic, entries in (described.get("topic") or {}).items():
        value = config_int(entries)
        if value is not None:
            result[str(topic)] = value
    return result
