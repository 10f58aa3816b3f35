"""Managing a mirror the bot set up: ``/kafka mirror pause|resume|remove <name>``, each one approved step
in a run of the mirror's target cluster (whose namespace holds the KafkaMirrorMaker2).

Pause and resume write each connector's ``state`` in the spec (``paused`` / ``running``; Strimzi
pauses or resumes it through the Connect REST API) with the generation the plan read, and are done
when Connect reports every connector and task in that state. Remove deletes the resource; the topics
it created on the target (the copies, the Connect worker's topics, ``<alias>.checkpoints.internal``)
are left in place and listed, as is the canary topic on the source.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Literal

from runbooks.engine.models import PlanRefused, StepArgs, StepSpec

ConnectorState = Literal["running", "paused"]
CONNECTOR_KEYS = ("sourceConnector", "checkpointConnector")
IDENTITY_POLICY = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"


class MirrorStateArgs(StepArgs):
    kind: Literal["mirror-state"] = "mirror-state"
    name: str
    state: ConnectorState
    generation: int  # the resource's generation the plan was made at
    connectors: tuple[str, ...]


class RemoveMirrorArgs(StepArgs):
    kind: Literal["remove-mirror"] = "remove-mirror"
    name: str


def with_state(spec: dict[str, Any], state: ConnectorState) -> dict[str, Any]:
    """``spec`` with every mirror's source and checkpoint connector in ``state``."""
    changed = copy.deepcopy(spec)
    for mirror in changed.get("mirrors") or []:
        for key in CONNECTOR_KEYS:
            connector = mirror.get(key)
            if isinstance(connector, dict):
                connector["state"] = state
    return changed


def connector_names(spec: dict[str, Any]) -> tuple[str, ...]:
    target = str((spec.get("target") or {}).get("alias", ""))
    names = []
    for mirror in spec.get("mirrors") or []:
        source = str((mirror.get("source") or {}).get("alias", ""))
        if isinstance(mirror.get("sourceConnector"), dict):
            names.append(f"{source}->{target}.MirrorSourceConnector")
        if isinstance(mirror.get("checkpointConnector"), dict):
            names.append(f"{source}->{target}.MirrorCheckpointConnector")
    return tuple(names)


def states_of(spec: dict[str, Any]) -> set[str]:
    return {str((m.get(k) or {}).get("state", "running")) for m in spec.get("mirrors") or []
            for k in CONNECTOR_KEYS if isinstance(m.get(k), dict)}


def plan_state(name: str, spec: dict[str, Any], generation: int, state: ConnectorState) -> list[StepSpec]:
    names = connector_names(spec)
    if not names:
        raise PlanRefused(f"KafkaMirrorMaker2 {name} has no source or checkpoint connector to "
                          f"{'pause' if state == 'paused' else 'resume'}")
    if states_of(spec) == {state}:
        raise PlanRefused(f"every connector of {name} is {state} already")
    verb = "Pause" if state == "paused" else "Resume"
    return [StepSpec(
        id=f"mirror-{'pause' if state == 'paused' else 'resume'}", title=f"{verb} mirror {name}",
        args=MirrorStateArgs(name=name, state=state, generation=generation, connectors=names), timeout_s=300.0,
        compensation=f"`/kafka mirror {'resume' if state == 'paused' else 'pause'} {name}`",
        summary=f"Sets state: {state} on {', '.join(names)} (spec.mirrors[].sourceConnector/checkpointConnector); "
        + ("records stop flowing until resumed; nothing is lost, the source keeps them for its retention."
           if state == "paused" else "mirroring goes on from where it stopped."))]


def copies_on_target(spec: dict[str, Any], target_topics: tuple[str, ...]) -> list[str]:
    """The target's topics this mirror wrote: the remote topics its patterns name, its Connect worker's
    topics and its sources' checkpoints."""
    target = spec.get("target") or {}
    own = {str(target.get(k, "")) for k in ("configStorageTopic", "offsetStorageTopic", "statusStorageTopic")}
    found: set[str] = {t for t in target_topics if t in own}
    for mirror in spec.get("mirrors") or []:
        alias = str((mirror.get("source") or {}).get("alias", ""))
        pattern = str(mirror.get("topicsPattern") or "")
        configs = [(mirror.get(k) or {}).get("config") or {} for k in CONNECTOR_KEYS]
        identity = any(c.get("replication.policy.class") == IDENTITY_POLICY for c in configs)
        for topic in target_topics:
            if topic == f"{alias}.checkpoints.internal":
                found.add(topic)
                continue
            original = topic if identity else (topic[len(alias) + 1:] if topic.startswith(f"{alias}.") else None)
            try:
                if original is not None and re.fullmatch(pattern, original):
                    found.add(topic)
            except re.error:
                continue
    return sorted(found)


def plan_remove(name: str, namespace: str, left: list[str], canary: str | None) -> list[StepSpec]:
    kept = ", ".join(left[:30]) + (f" and {len(left) - 30} more" if len(left) > 30 else "") if left else "none"
    source_note = f" The canary topic {canary} stays on the source." if canary else ""
    return [StepSpec(
        id="remove-mirror", title=f"Remove mirror {name}", args=RemoveMirrorArgs(name=name), timeout_s=300.0,
        compensation="None: the copies stay; setting the mirror up again goes on from the offsets it stored.",
        summary=f"Deletes KafkaMirrorMaker2 {namespace}/{name} (its Connect worker stops). Topics left in place "
        f"on the target: {kept}.{source_note}")]
