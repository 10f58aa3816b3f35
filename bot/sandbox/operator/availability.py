"""The safety rules KafkaRoller applies before restarting a node, as pure functions.

``can_roll_broker`` is Strimzi's ``KafkaAvailability.canRoll`` and ``can_roll_controller`` its
``KafkaQuorumCheck.canRollController`` (docs/strimzi.md §3). They are written from Strimzi's
behaviour, not shared with the bot's own ``can_restart``: the twin must be an independent check.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

QUORUM_FETCH_TIMEOUT_MS = 2000  # controller.quorum.fetch.timeout.ms default


@dataclass(frozen=True)
class PartitionReplicas:
    topic: str
    partition: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reasons: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.ok


def can_roll_broker(
    broker_id: int,
    partitions: Iterable[PartitionReplicas],
    min_isr_by_topic: Mapping[str, int],
) -> Verdict:
    """Would restarting ``broker_id`` take any partition below its topic's min.insync.replicas?"""
    problems: list[str] = []
    for p in partitions:
        if broker_id not in p.replicas:
            continue
        min_isr = min_isr_by_topic.get(p.topic, 1)
        if min_isr < 0:
            continue
        if len(p.replicas) <= min_isr:
            # RF too small to ever roll safely: Strimzi only logs this and rolls anyway (else such a
            # topic would block every roll forever, issue #2964).
            continue
        if len(p.isr) < min_isr:
            problems.append(
                f"{p.topic}/{p.partition} is already under-replicated (|ISR|={len(p.isr)}, "
                f"min.insync.replicas={min_isr}); broker {broker_id} has a replica"
            )
        elif len(p.isr) == min_isr and broker_id in p.isr:
            problems.append(
                f"{p.topic}/{p.partition} would be under-replicated (|ISR|={len(p.isr)}, "
                f"min.insync.replicas={min_isr}) if broker {broker_id} restarted"
            )
    return Verdict(not problems, tuple(problems))


@dataclass(frozen=True)
class VoterState:
    node_id: int
    last_caught_up_ms: int  # -1 when unknown


def can_roll_controller(
    node_id: int,
    leader_id: int,
    voters: Iterable[VoterState],
    *,
    fetch_timeout_ms: int = QUORUM_FETCH_TIMEOUT_MS,
) -> Verdict:
    """Does the quorum keep a caught-up majority without ``node_id``?"""
    states = {v.node_id: v.last_caught_up_ms for v in voters}
    if leader_id < 0 or leader_id not in states:
        return Verdict(False, ("no controller quorum leader is known",))
    if len(states) == 1:
        return Verdict(True)  # a single controller can only be rolled with downtime; Strimzi allows it
    leader_caught_up = states[leader_id]
    caught_up = 0
    for nid, ts in states.items():
        if nid == node_id or ts < 0:
            continue
        if nid == leader_id or leader_caught_up - ts < fetch_timeout_ms:
            caught_up += 1
    needed = (len(states) + 2) // 2
    if len(states) == 2:
        needed = 1  # two voters: only when the other one is caught up
    if caught_up >= needed:
        return Verdict(True)
    return Verdict(False, (
        f"controller {node_id} cannot be restarted: only {caught_up} other caught-up voter(s), "
        f"{needed} needed for a majority of {len(states)}",
    ))
