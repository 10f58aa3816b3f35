"""The cluster health model: a snapshot of what Kafka reports, and the pure rules over it.

The rules follow what careful tools do (docs/kafka-ops.md §2, §4; docs/strimzi.md §3):
- under-replicated uses the reassignment correction, RF = |replicas| - |adding|, the way
  ``kafka-topics --under-replicated-partitions`` does, or every moving partition would look sick;
- ``can_restart`` is Strimzi's ``KafkaAvailability.canRoll``, so the bot never restarts a broker
  the operator itself would refuse to roll;
- the quorum rule is Strimzi's ``KafkaQuorumCheck.canRollController``.

The snapshot holds what Kafka itself reports and nothing derived: brokers (id, rack, fenced, from
DescribeCluster), the KRaft quorum (DescribeQuorum), every partition's leader / replicas / ISR
(Metadata) with its in-flight reassignment (ListPartitionReassignments), and each topic's
effective ``min.insync.replicas`` (DescribeConfigs, the override else the broker default).
Everything else is a pure function below, so a rule is tested on a hand-built snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_FETCH_TIMEOUT_MS = 2000  # controller.quorum.fetch.timeout.ms default


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class BrokerInfo(_Frozen):
    id: int
    host: str = ""
    port: int = 0
    rack: str | None = None
    fenced: bool = False


class PartitionInfo(_Frozen):
    topic: str
    partition: int
    leader: int | None
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    adding: tuple[int, ...] = ()
    removing: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"

    @property
    def effective_rf(self) -> int:
        return len(self.replicas) - len(self.adding)


class QuorumVoter(_Frozen):
    id: int
    log_end_offset: int = 0
    last_caught_up_ms: int | None = None


class QuorumInfo(_Frozen):
    leader_id: int | None
    voters: tuple[QuorumVoter, ...] = ()


class ClusterSnapshot(_Frozen):
    taken_at: datetime
    brokers: tuple[BrokerInfo, ...]
    controller_id: int | None = None
    quorum: QuorumInfo | None = None
    partitions: tuple[PartitionInfo, ...] = ()
    min_isr: dict[str, int] = Field(default_factory=dict)
    default_min_isr: int = 1

    def min_isr_of(self, topic: str) -> int:
        return self.min_isr.get(topic, self.default_min_isr)

    @property
    def live_broker_ids(self) -> frozenset[int]:
        return frozenset(b.id for b in self.brokers if not b.fenced)

    @property
    def active_controller(self) -> int | None:
        if self.quorum is not None and self.quorum.leader_id is not None:
            return self.quorum.leader_id
        return self.controller_id


class PartitionRisk(_Frozen):
    partition: str
    reason: str


class RestartCheck(_Frozen):
    broker: int
    ok: bool
    at_risk: tuple[PartitionRisk, ...] = ()
    ignored: tuple[str, ...] = ()  # partitions with RF <= minISR: never safe, so Strimzi does not let them block

    def summary(self) -> str:
        if not self.at_risk:
            return "At risk: none."
        shown = ", ".join(f"{r.partition} ({r.reason})" for r in self.at_risk[:5])
        more = f" and {len(self.at_risk) - 5} more" if len(self.at_risk) > 5 else ""
        return f"At risk: {shown}{more}."


def under_replicated(snapshot: ClusterSnapshot) -> list[PartitionInfo]:
    return [p for p in snapshot.partitions if p.effective_rf - len(p.isr) > 0]


def under_min_isr(snapshot: ClusterSnapshot) -> list[PartitionInfo]:
    return [
        p for p in snapshot.partitions
        if p.leader is None or len(p.isr) < snapshot.min_isr_of(p.topic)
    ]


def at_min_isr(snapshot: ClusterSnapshot) -> list[PartitionInfo]:
    return [p for p in snapshot.partitions if len(p.isr) == snapshot.min_isr_of(p.topic)]


def offline(snapshot: ClusterSnapshot) -> list[PartitionInfo]:
    live = snapshot.live_broker_ids
    return [p for p in snapshot.partitions if p.leader is None or p.leader not in live]


def reassigning(snapshot: ClusterSnapshot) -> list[PartitionInfo]:
    return [p for p in snapshot.partitions if p.adding or p.removing]


def out_of_isr(snapshot: ClusterSnapshot, broker: int) -> list[PartitionInfo]:
    """Partitions that list ``broker`` as a replica but do not have it in their ISR."""
    return [p for p in snapshot.partitions if broker in p.replicas and broker not in p.isr]


def can_restart(snapshot: ClusterSnapshot, broker: int) -> RestartCheck:
    """Strimzi's KafkaAvailability.canRoll for one broker."""
    risks: list[PartitionRisk] = []
    ignored: list[str] = []
    for p in snapshot.partitions:
        if broker not in p.replicas:
            continue
        min_isr = snapshot.min_isr_of(p.topic)
        if len(p.replicas) <= min_isr:
            ignored.append(p.name)
            continue
        if len(p.isr) < min_isr:
            risks.append(PartitionRisk(
                partition=p.name,
                reason=f"already under min ISR: ISR {len(p.isr)}/{len(p.replicas)}, min.insync.replicas {min_isr}",
            ))
        elif len(p.isr) == min_isr and broker in p.isr:
            risks.append(PartitionRisk(
                partition=p.name,
                reason=f"at min ISR {min_isr}: restarting broker {broker} would block acks=all producers",
            ))
    return RestartCheck(broker=broker, ok=not risks, at_risk=tuple(risks), ignored=tuple(ignored))


def can_roll_controller(
    quorum: QuorumInfo, node_id: int, *, fetch_timeout_ms: int = DEFAULT_FETCH_TIMEOUT_MS
) -> tuple[bool, str]:
    """Strimzi's KafkaQuorumCheck.canRollController: a majority must stay caught up without it."""
    if quorum.leader_id is None:
        return False, "the KRaft quorum has no leader"
    voters = {v.id: v for v in quorum.voters}
    if node_id not in voters:
        return True, f"node {node_id} is not a controller"
    if len(voters) == 1:
        return True, "single-voter quorum: restarting it stops the controller for a moment"
    leader = voters.get(quorum.leader_id)
    leader_caught_up = leader.last_caught_up_ms if leader is not None else None
    if leader_caught_up is None:
        return False, "the quorum leader reports no catch-up time"

    def caught_up(v: QuorumVoter) -> bool:
        if v.id == quorum.leader_id:
            return True
        return v.last_caught_up_ms is not None and leader_caught_up - v.last_caught_up_ms < fetch_timeout_ms

    others = [v for v in voters.values() if v.id != node_id]
    in_sync = sum(1 for v in others if caught_up(v))
    needed = (len(voters) + 2) // 2
    if len(voters) == 2:
        needed = 1
    if in_sync >= needed:
        return True, f"{in_sync} of the other {len(others)} controllers are caught up"
    return False, f"only {in_sync} of the other {len(others)} controllers are caught up; {needed} needed"


def restart_order(snapshot: ClusterSnapshot, brokers: list[int]) -> list[int]:
    """Non-controller brokers first (ascending), the active controller last, as Strimzi rolls."""
    controller = snapshot.active_controller
    rest = sorted(b for b in brokers if b != controller)
    return rest + ([controller] if controller in brokers else [])


class PreflightReport(_Frozen):
    ok: bool
    problems: tuple[str, ...]
    summary: str


def preflight(snapshot: ClusterSnapshot, *, kafka_ready: bool, kafka_reason: str = "",
              expected_brokers: Iterable[int] = ()) -> PreflightReport:
    """What a careful human checks before any roll (docs/kafka-ops.md §4, the recommended gate): the
    Kafka resource Ready, then the same go/no-go every runbook's gate uses (``assess``): every expected
    broker registered and unfenced, no URP, none under min ISR, none offline, no reassignment, and a
    caught-up quorum."""
    problems: list[str] = []
    if not kafka_ready:
        problems.append(f"the Kafka resource is not Ready{': ' + kafka_reason if kafka_reason else ''}")
    problems += assess(snapshot, expected_brokers=expected_brokers).problems
    if problems:
        return PreflightReport(ok=False, problems=tuple(problems), summary="; ".join(problems))
    summary = (
        f"Ready, {len(snapshot.brokers)} brokers, 0 URP, 0 offline, no reassignment"
        f" ({len(snapshot.partitions)} partitions)"
    )
    return PreflightReport(ok=True, problems=(), summary=summary)


# -- the rest of the health model: liveness, effective min ISR, quorum, one report -----------------


class Liveness(StrEnum):
    LIVE = "live"
    FENCED = "fenced"  # registered, but the controller fenced it (no heartbeat): it serves nothing
    MISSING = "missing"  # not registered at all (never started, or its registration expired)


def broker_liveness(snapshot: ClusterSnapshot, expected: Iterable[int]) -> dict[int, Liveness]:
    """Each expected broker (the pods Strimzi runs) as Kafka sees it; brokers Kafka knows of but
    nobody expects are included too, so a stray registration is visible."""
    known = {b.id: b for b in snapshot.brokers}
    result: dict[int, Liveness] = {}
    for broker in sorted(set(expected) | set(known)):
        info = known.get(broker)
        result[broker] = Liveness.MISSING if info is None else Liveness.FENCED if info.fenced else Liveness.LIVE
    return result


def effective_min_isr(snapshot: ClusterSnapshot, partition: PartitionInfo) -> int:
    """min(min.insync.replicas, RF): what Kafka's UnderMinIsr/AtMinIsr gauges compare the ISR with
    (a topic whose RF is below its min ISR can never accept acks=all writes)."""
    return min(snapshot.min_isr_of(partition.topic), partition.effective_rf)


def offline_replicas(snapshot: ClusterSnapshot) -> dict[str, tuple[int, ...]]:
    """Replicas on brokers that are fenced or not registered, per partition (Metadata's
    ``offline_replicas``, derived from the broker list so it also covers unknown brokers)."""
    live = snapshot.live_broker_ids
    result: dict[str, tuple[int, ...]] = {}
    for p in snapshot.partitions:
        gone = tuple(r for r in p.replicas if r not in live)
        if gone:
            result[p.name] = gone
    return result


def rf_at_or_below_min_isr(snapshot: ClusterSnapshot) -> list[str]:
    """Topics where RF <= min.insync.replicas: any single restart blocks their acks=all producers,
    so no roll is ever safe for them. Strimzi's canRoll ignores them (or nothing could roll): the
    bot shows them instead of hiding them."""
    topics = {p.topic for p in snapshot.partitions if p.effective_rf <= snapshot.min_isr_of(p.topic)}
    return sorted(topics)


def degraded_besides(snapshot: ClusterSnapshot, *brokers: int) -> list[PartitionInfo]:
    """Partitions that are sick for a reason other than ``brokers`` being down.

    While the operator restarts a broker, its replicas leave the ISR and its leaderships move:
    that is the roll, not a problem. A partition missing any *other* (non-adding) replica from its
    ISR, or leaderless although another replica exists, means the cluster is sick beyond the roll.
    """
    sick = []
    for p in snapshot.partitions:
        others = [r for r in p.replicas if r not in brokers and r not in p.adding]
        if any(r not in p.isr for r in others) or (p.leader is None and others):
            sick.append(p)
    return sick


class QuorumReport(_Frozen):
    ok: bool
    leader: int | None
    voters: int
    caught_up: int
    reason: str


def quorum_health(quorum: QuorumInfo, *, fetch_timeout_ms: int = DEFAULT_FETCH_TIMEOUT_MS) -> QuorumReport:
    """The controller quorum as a whole: a leader, and a majority of voters (leader included) caught
    up within ``controller.quorum.fetch.timeout.ms`` of it, the same "caught up" as canRollController."""
    voters = len(quorum.voters)
    if quorum.leader_id is None:
        return QuorumReport(ok=False, leader=None, voters=voters, caught_up=0, reason="the KRaft quorum has no leader")
    leader = next((v for v in quorum.voters if v.id == quorum.leader_id), None)
    reference = leader.last_caught_up_ms if leader is not None else None
    caught_up = sum(
        1 for v in quorum.voters
        if v.id == quorum.leader_id
        or (reference is not None and v.last_caught_up_ms is not None
            and reference - v.last_caught_up_ms < fetch_timeout_ms)
    )
    majority = voters // 2 + 1
    if voters and caught_up < majority:
        return QuorumReport(ok=False, leader=quorum.leader_id, voters=voters, caught_up=caught_up,
                            reason=f"only {caught_up} of {voters} controllers are caught up; {majority} needed")
    return QuorumReport(ok=True, leader=quorum.leader_id, voters=voters, caught_up=caught_up,
                        reason=f"leader {quorum.leader_id}, {caught_up} of {voters} controllers caught up")


class HealthReport(_Frozen):
    """Every derived rule over one snapshot, with the problems that make a roll unsafe spelled out."""

    ok: bool
    problems: tuple[str, ...]
    warnings: tuple[str, ...]  # worth showing, not blocking (e.g. RF <= min ISR topics)
    liveness: dict[int, Liveness]
    under_replicated: int
    under_min_isr: int
    at_min_isr: int
    offline: int
    reassigning: int
    quorum: QuorumReport | None

    def summary(self) -> str:
        if not self.ok:
            return "; ".join(self.problems)
        live = sum(1 for state in self.liveness.values() if state is Liveness.LIVE)
        text = f"{live} brokers live, 0 URP, 0 under min ISR, 0 offline, no reassignment"
        if self.quorum is not None:
            text += f", quorum {self.quorum.reason}"
        return text


def _examples(partitions: list[PartitionInfo]) -> str:
    return ", ".join(p.name for p in partitions[:3])


def assess(snapshot: ClusterSnapshot, *, expected_brokers: Iterable[int] = ()) -> HealthReport:
    """The whole health model for a go/no-go: liveness of the expected brokers, URP (reassignment
    corrected), under/at min ISR, offline partitions, reassignments in flight, quorum health."""
    liveness = broker_liveness(snapshot, expected_brokers)
    problems: list[str] = []
    for state in (Liveness.MISSING, Liveness.FENCED):
        ids = [b for b, s in liveness.items() if s is state]
        if ids:
            problems.append(f"brokers {state.value}: {', '.join(map(str, ids))}")
    urp = under_replicated(snapshot)
    # The effective min ISR here, as Kafka's gauges count: an RF-1 topic with min ISR 2 is a
    # warning (below), not a partition forever "under min ISR".
    below = [p for p in snapshot.partitions if p.leader is None or len(p.isr) < effective_min_isr(snapshot, p)]
    at_min = [p for p in snapshot.partitions if p.leader is not None and len(p.isr) == effective_min_isr(snapshot, p)]
    down, moving = offline(snapshot), reassigning(snapshot)
    if urp:
        problems.append(f"{len(urp)} under-replicated partitions (e.g. {_examples(urp)})")
    if below:
        problems.append(f"{len(below)} partitions under min ISR (e.g. {_examples(below)})")
    if down:
        problems.append(f"{len(down)} offline partitions (e.g. {_examples(down)})")
    if moving:
        problems.append(f"{len(moving)} partition reassignments in flight")
    quorum = quorum_health(snapshot.quorum) if snapshot.quorum is not None else None
    if quorum is not None and not quorum.ok:
        problems.append(quorum.reason)
    warnings = []
    fragile = rf_at_or_below_min_isr(snapshot)
    if fragile:
        warnings.append(f"topics with replication factor <= min.insync.replicas (any restart blocks their "
                        f"acks=all producers): {', '.join(fragile[:5])}")
    return HealthReport(
        ok=not problems, problems=tuple(problems), warnings=tuple(warnings), liveness=liveness,
        under_replicated=len(urp), under_min_isr=len(below), at_min_isr=len(at_min), offline=len(down),
        reassigning=len(moving), quorum=quorum,
    )
