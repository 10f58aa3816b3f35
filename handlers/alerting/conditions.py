"""What is wrong right now, as observations for the alert lifecycle: one per (condition, subject)
that is active. Pure functions over what the monitors read (a health snapshot and the broker pods,
the Kafka resource, restart events, a lag report); the lifecycle in ``runbooks.alerting.lifecycle`` decides
what to post.

Subjects are chosen so one cause makes one alert: under-replication is grouped by the broker whose
replicas are missing from the ISRs (that broker is what a human restarts or replaces), not by
partition, which would make hundreds of alerts for one dead broker.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from handlers.alerting.lag_models import GroupLag
from handlers.ports import BrokerPod, KafkaResourceStatus
from runbooks.alerting.lifecycle import AlertKey, Condition, LagRule, Observation
from runbooks.rules.health import (
    ClusterSnapshot,
    Liveness,
    PartitionInfo,
    broker_liveness,
    effective_min_isr,
    offline,
    quorum_health,
    under_replicated,
)
from runbooks.rules.unowned_throttles import REPLICA_MOVING_RUNBOOKS, UnownedThrottles

EXAMPLES = 5  # partitions named in a message; the count says how many more
RESTART_EVENT_MAX_AGE = timedelta(minutes=15)  # a restart still unfinished after this is a crash alert's job


def _names(partitions: Sequence[PartitionInfo]) -> str:
    shown = ", ".join(p.name for p in partitions[:EXAMPLES])
    return shown + (f" and {len(partitions) - EXAMPLES} more" if len(partitions) > EXAMPLES else "")


def broker_subject(broker: int) -> str:
    return f"broker-{broker}"


def health_observations(
    cluster: str, snapshot: ClusterSnapshot, expected_brokers: Iterable[int],
) -> list[Observation]:
    """Brokers down (fenced or missing), under-replication per broker (the reassignment
    correction applied: a replica being added is not missing), under-min-ISR, offline, quorum."""
    found: list[Observation] = []

    def seen(condition: Condition, subject: str, value: float, detail: str, **facts: object) -> None:
        key = AlertKey(cluster=cluster, condition=condition, subject=subject)
        found.append(Observation(key=key, value=value, detail=detail, facts=dict(facts)))

    for broker, state in broker_liveness(snapshot, expected_brokers).items():
        if state is Liveness.FENCED:
            seen(Condition.BROKER_DOWN, broker_subject(broker), 1, f"broker {broker} is fenced: the controller "
                 "has stopped hearing its heartbeats, so it serves no partition", broker=broker)
        elif state is Liveness.MISSING:
            seen(Condition.BROKER_DOWN, broker_subject(broker), 1, f"broker {broker} is not registered with the "
                 "controller although its pod exists", broker=broker)
    sick = under_replicated(snapshot)
    by_broker: dict[int, list[PartitionInfo]] = {}
    for p in sick:
        for replica in p.replicas:
            if replica not in p.isr and replica not in p.adding:
                by_broker.setdefault(replica, []).append(p)
    for broker, partitions in sorted(by_broker.items()):
        seen(Condition.UNDER_REPLICATED, broker_subject(broker), len(partitions),
             f"{len(partitions)} partitions have broker {broker} out of their ISR: {_names(partitions)}",
             broker=broker, partitions=[p.name for p in partitions[:20]],
             next_command=f"/kafka restart {cluster} --brokers {broker}", next_label=f"Restart broker {broker}")
    below = [p for p in snapshot.partitions if p.leader is None or len(p.isr) < effective_min_isr(snapshot, p)]
    if below:
        seen(Condition.UNDER_MIN_ISR, "partitions", len(below),
             f"{len(below)} partitions are under min.insync.replicas, so acks=all producers to them fail: "
             f"{_names(below)}", partitions=[p.name for p in below[:20]])
    down = offline(snapshot)
    if down:
        seen(Condition.OFFLINE_PARTITIONS, "partitions", len(down),
             f"{len(down)} partitions have no live leader (nobody can read or write them): {_names(down)}",
             partitions=[p.name for p in down[:20]])
    if snapshot.quorum is not None:
        quorum = quorum_health(snapshot.quorum)
        if not quorum.ok:
            seen(Condition.QUORUM, "controller-quorum", quorum.voters - quorum.caught_up,
                 f"the KRaft controller quorum is unhealthy: {quorum.reason}")
    return found


def unreachable_observation(cluster: str, error: str) -> Observation:
    key = AlertKey(cluster=cluster, condition=Condition.KAFKA_UNREACHABLE, subject="admin")
    return Observation(key=key, value=1, detail=f"the bot cannot read the cluster's health from Kafka: {error}")


def kafka_observations(cluster: str, kafka_name: str, status: KafkaResourceStatus) -> list[Observation]:
    """The Kafka resource: NotReady (unless reconciliation is paused on purpose), and each Warning."""
    found: list[Observation] = []
    if not status.ready and not status.paused:
        why = f"{status.reason}: {status.message}" if status.message else status.reason or "no reason given"
        key = AlertKey(cluster=cluster, condition=Condition.KAFKA_NOT_READY, subject=f"kafka/{kafka_name}")
        found.append(Observation(key=key, value=1, detail=f"the Kafka resource {kafka_name} is not Ready ({why})"))
    for warning in status.warnings:
        reason = warning.split(":", 1)[0].strip() or "Warning"
        key = AlertKey(cluster=cluster, condition=Condition.KAFKA_WARNING, subject=reason)
        found.append(Observation(key=key, value=1, detail=f"Strimzi warns about {kafka_name}: {warning}"))
    return found


def pod_observations(cluster: str, pods: Iterable[BrokerPod]) -> list[Observation]:
    """Broker pods down because their process died (restarting or crash looping), not because the
    operator is replacing them."""
    found: list[Observation] = []
    for pod in pods:
        if not pod.crashed:
            continue
        how = "is crash looping (CrashLoopBackOff)" if pod.waiting_reason == "CrashLoopBackOff" else (
            "is restarting after a crash")
        key = AlertKey(cluster=cluster, condition=Condition.POD_CRASHING, subject=pod.name)
        found.append(Observation(
            key=key, value=pod.restart_count,
            detail=f"broker {pod.node_id} (pod {pod.name}) {how}; restarted {pod.restart_count} times",
            facts={"broker": pod.node_id, "next_command": f"/kafka status {cluster}", "next_label": "Cluster status"},
        ))
    return found


class RestartEvent(BaseModel):
    """A Strimzi restart event (events.k8s.io, action StrimziInitiatedPodRestart)."""

    model_config = ConfigDict(frozen=True)

    pod: str
    reason: str
    note: str
    at: datetime


class PodSeen(BaseModel):
    """What the restart rule needs of a pod: whether it is Ready and when this incarnation began."""

    model_config = ConfigDict(frozen=True)

    ready: bool
    created_at: datetime | None


def restart_observations(
    cluster: str, events: Iterable[RestartEvent], pods: Mapping[str, PodSeen], now: datetime,
) -> list[Observation]:
    """A pod the operator is rolling: from its restart event until a pod created after the event is
    Ready. A re-listed (old) event whose pod has long been back is therefore never active again."""
    latest: dict[str, RestartEvent] = {}
    for event in events:
        if event.pod not in latest or event.at > latest[event.pod].at:
            latest[event.pod] = event
    found: list[Observation] = []
    for name, event in sorted(latest.items()):
        if now - event.at > RESTART_EVENT_MAX_AGE:
            continue
        pod = pods.get(name)
        # One second of slack: the event is written just before the pod is deleted and recreated.
        back = pod is not None and pod.ready and pod.created_at is not None and (
            pod.created_at >= event.at - timedelta(seconds=1))
        if back:
            continue
        key = AlertKey(cluster=cluster, condition=Condition.STRIMZI_RESTART, subject=name)
        found.append(Observation(key=key, value=1, detail=f"Strimzi is restarting pod {name}: {event.reason} "
                                                          f"({event.note})"))
    return found


def lag_over(rule: LagRule, max_lag: int, max_lag_seconds: float | None) -> tuple[bool, bool]:
    """Whether a group's worst partition is over the rule's threshold in offsets, and in seconds."""
    over_offsets = rule.max_lag is not None and max_lag >= rule.max_lag
    over_seconds = (rule.max_lag_seconds is not None and max_lag_seconds is not None
                    and max_lag_seconds >= rule.max_lag_seconds)
    return over_offsets, over_seconds


def lag_observations(
    cluster: str, groups: Iterable[GroupLag], rule: LagRule, grew: Mapping[str, bool],
) -> list[Observation]:
    """Groups whose worst partition is over a threshold (offsets or seconds), or whose total lag
    spiked (``grew``, from ``runbooks.alerting.lifecycle.lag_grew``). The value is the worst lag in seconds
    when known, else in offsets."""
    found: list[Observation] = []
    for group in groups:
        if group.error is not None:
            continue
        seconds = group.max_lag_seconds
        over_offsets, over_seconds = lag_over(rule, group.max_lag, seconds)
        spike = grew.get(group.group, False)
        if not (over_offsets or over_seconds or spike):
            continue
        # Only the thresholds that are hit are named (a rule may leave one of them unset: None).
        reasons = []
        if over_offsets:
            reasons.append(f"≥ {rule.max_lag} records")
        if over_seconds:
            reasons.append(f"≥ {rule.max_lag_seconds:g} s")
        if spike:
            reasons.append(f"total lag grew {rule.growth_factor:g}x within {rule.growth_window_s:g} s")
        key = AlertKey(cluster=cluster, condition=Condition.CONSUMER_LAG, subject=f"group:{group.group}")
        found.append(Observation(
            key=key, value=round(seconds, 1) if seconds is not None else float(group.max_lag),
            detail=f"{group.summary()} ({'; '.join(reasons)})",
            facts={"group": group.group, "unit": "s" if seconds is not None else "records",
                   "next_command": f"/kafka lag {cluster} {shlex.quote(group.group)}", "next_label": "Show the group",
                   **group.facts()},
        ))
    return found


THROTTLES_SUBJECT = "replication-throttles"


def throttle_observations(cluster: str, found: UnownedThrottles | None) -> list[Observation]:
    """Replication throttles no active run owns (``runbooks.rules.unowned_throttles``), one alert per
    cluster: its value counts the throttled brokers and topics (and the cluster-wide default)."""
    if found is None:
        return []
    runbooks = " or ".join(sorted(REPLICA_MOVING_RUNBOOKS))
    value = found.broker_count + found.topic_count + (1 if found.seen.default_rates else 0)
    key = AlertKey(cluster=cluster, condition=Condition.UNOWNED_THROTTLES, subject=THROTTLES_SUBJECT)
    return [Observation(
        key=key, value=value,
        detail=f"replication throttles are set on {cluster} while no {runbooks} run is active there (left by hand, "
               "by another tool, or by a run that ended without clearing them): they slow every out-of-sync "
               "follower of the listed partitions until someone removes them",
        facts={"brokers": found.broker_count, "topics": found.topic_count, "summary": list(found.summary),
               "commands": list(found.commands)},
    )]
