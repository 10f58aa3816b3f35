"""Pure translation of Strimzi resources (as plain JSON dicts) into the port's models.

Kept apart from the I/O so each rule (which condition wins, where the node id comes from) is
readable in one place and testable without a server. The field names follow docs/strimzi.md §1-§2.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from handlers.ports import BrokerPod, KafkaResourceStatus

PAUSE_ANNOTATION = "strimzi.io/pause-reconciliation"
KAFKA_VERSION_ANNOTATION = "strimzi.io/kafka-version"
POOL_LABEL = "strimzi.io/pool-name"
_NODE_ID = re.compile(r"-(\d+)$")


def _conditions(obj: dict[str, Any]) -> list[dict[str, Any]]:
    status = obj.get("status") or {}
    return [c for c in (status.get("conditions") or []) if isinstance(c, dict)]


def _is_true(condition: dict[str, Any]) -> bool:
    return str(condition.get("status", "")).lower() == "true"


def kafka_status_from(kafka: dict[str, Any], listener: str | None = None) -> KafkaResourceStatus:
    """Read a Kafka CR: Ready/NotReady, warnings, generations, versions, bootstrap, pause.

    ``listener``: the bootstrap is that listener's (by its name in spec.kafka.listeners, as the
    status lists it); absent from the status, there is no bootstrap and a warning says which
    listeners there are. None: the first listener's, as before the clusters file could name one."""
    metadata = kafka.get("metadata") or {}
    spec_kafka = (kafka.get("spec") or {}).get("kafka") or {}
    status = kafka.get("status") or {}
    conditions = _conditions(kafka)

    ready = any(c.get("type") == "Ready" and _is_true(c) for c in conditions)
    # The condition that explains the state: NotReady carries the failure (reason = the operator's
    # exception class); a paused CR has ReconciliationPaused instead; Ready may carry a note too.
    explaining = (
        [c for c in conditions if c.get("type") == "NotReady" and _is_true(c)]
        + [c for c in conditions if c.get("type") == "ReconciliationPaused" and _is_true(c)]
        + [c for c in conditions if c.get("type") == "Ready"]
    )
    reason = message = ""
    if explaining:
        reason = str(explaining[0].get("reason") or "")
        message = str(explaining[0].get("message") or "")
    elif not conditions:
        reason, message = "NoStatus", "the operator has not reported any condition yet"

    warnings = tuple(
        _warning_text(c) for c in conditions if c.get("type") == "Warning" and _is_true(c)
    )
    listeners = [entry for entry in (status.get("listeners") or []) if isinstance(entry, dict)]
    bootstrap_problem = ""
    if listener is None:
        bootstrap = listeners[0].get("bootstrapServers") if listeners else None
    else:
        chosen = next((entry for entry in listeners if entry.get("name") == listener), None)
        bootstrap = chosen.get("bootstrapServers") if chosen else None
        if chosen is None:
            names = ", ".join(str(entry.get("name")) for entry in listeners) or "none yet"
            bootstrap_problem = (f"listener {listener!r} (the clusters file's `listener`) is not in the Kafka status; "
                                 f"its listeners: {names}")
            warnings = (*warnings, bootstrap_problem)
    annotations = metadata.get("annotations") or {}

    return KafkaResourceStatus(
        ready=ready,
        reason=reason,
        message=message,
        generation=int(metadata.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        kafka_version=_str_or_none(status.get("kafkaVersion")),
        metadata_version=_str_or_none(status.get("kafkaMetadataVersion")),
        spec_kafka_version=_str_or_none(spec_kafka.get("version")),
        spec_metadata_version=_str_or_none(spec_kafka.get("metadataVersion")),
        operator_version=_str_or_none(status.get("operatorLastSuccessfulVersion")),
        warnings=warnings,
        bootstrap_servers=_str_or_none(bootstrap),
        bootstrap_problem=bootstrap_problem,
        paused=str(annotations.get(PAUSE_ANNOTATION, "")).lower() == "true",
        cruise_control=(kafka.get("spec") or {}).get("cruiseControl") is not None,
        topic_operator=((kafka.get("spec") or {}).get("entityOperator") or {}).get("topicOperator") is not None,
        spec=dict(spec_kafka) if isinstance(spec_kafka, dict) else {},
    )


def _warning_text(condition: dict[str, Any]) -> str:
    reason = str(condition.get("reason") or "Warning")
    message = str(condition.get("message") or "")
    return f"{reason}: {message}" if message else reason


def _str_or_none(value: Any) -> str | None:
    # metadataVersion may come back as a YAML float (4.3) if someone wrote it unquoted.
    return None if value is None or value == "" else str(value)


def timestamp(value: Any) -> datetime | None:
    """A Kubernetes time (RFC 3339, ``2025-01-02T03:04:05Z``) as an aware datetime; None if absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def node_id_of(pod_name: str) -> int | None:
    """Strimzi's pod name is ``<cluster>-<pool>-<nodeId>``: the numeric suffix is the node id."""
    match = _NODE_ID.search(pod_name)
    return int(match.group(1)) if match else None


def broker_pod_from(pod: dict[str, Any]) -> BrokerPod | None:
    """A pod as the port sees it; None for a pod whose name carries no node id (not a Kafka node)."""
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    name = str(metadata.get("name") or "")
    node_id = node_id_of(name)
    if node_id is None:
        return None
    ready_condition = next((c for c in _conditions(pod) if c.get("type") == "Ready" and _is_true(c)), None)
    ready = ready_condition is not None
    containers = [cs for cs in (status.get("containerStatuses") or []) if isinstance(cs, dict)]
    restarts = sum(int(cs.get("restartCount") or 0) for cs in containers)
    states = [cs.get("state") or {} for cs in containers]
    # Being deleted (the operator's restart) is not a crash: Kubernetes marks it with a
    # deletionTimestamp; a container already stopped for it shows a terminated state.
    terminating = bool(metadata.get("deletionTimestamp")) or any("terminated" in st for st in states)
    waiting = next((str((st.get("waiting") or {}).get("reason") or "") for st in states if "waiting" in st), "")
    starts = [t for st in states if (t := timestamp((st.get("running") or {}).get("startedAt"))) is not None]
    ended = [cs["lastState"]["terminated"] for cs in containers
             if isinstance((cs.get("lastState") or {}).get("terminated"), dict)]
    last_exit = ", ".join(filter(None, (str(ended[0].get("reason") or ""),
                                        f"exit code {ended[0]['exitCode']}" if "exitCode" in ended[0] else ""))) \
        if ended else ""
    return BrokerPod(
        node_id=node_id,
        name=name,
        uid=str(metadata.get("uid") or ""),
        ready=ready,
        pool=str((metadata.get("labels") or {}).get(POOL_LABEL, "")),
        kafka_version=_str_or_none((metadata.get("annotations") or {}).get(KAFKA_VERSION_ANNOTATION)),
        restart_count=restarts,
        phase=str(status.get("phase") or ""),
        terminating=terminating,
        waiting_reason=waiting,
        last_exit=last_exit,
        created_at=timestamp(metadata.get("creationTimestamp")),
        started_at=max(starts) if starts else None,
        ready_since=timestamp(ready_condition.get("lastTransitionTime")) if ready_condition else None,
    )
