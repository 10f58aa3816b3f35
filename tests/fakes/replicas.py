"""Replica moves in memory: the reassignment half of the ``KafkaAdmin`` port, mixed into FakeStrimzi.

Written from Kafka's behaviour (KIP-455, docs/kafka-ops.md §3.1-§3.2), not from the adapter:

- a submitted target's replicas are the target followed by the current replicas it drops, with the
  target's new brokers ``adding`` and the dropped ones ``removing``, until every adding replica has
  copied the leader's log; then the replicas are the target, in its order, the dropped replicas'
  data is gone, and a leader that was dropped hands over to the target's first in-sync broker;
- an adding replica copies at once, unless it is throttled: its broker has a follower rate and its
  topic's follower list names it. A throttled replica copies ``rate × seconds`` per
  :meth:`ReplicaMoves.advance_moves` (each at the full rate: the fake does not share a broker's
  rate among its replicas);
- a cancel puts the replicas back as they were and drops what the adding replicas copied; a cancel
  of a partition with nothing in flight is Kafka's NoReassignmentInProgress, which the port
  tolerates;
- a target naming a broker that is not registered, or one twice, is refused
  (InvalidReplicationAssignmentError), an unknown partition too (UnknownTopicOrPartitionError);
- throttle rates on a broker that is not live, or throttled replicas of an unknown topic, raise
  ``KafkaUnavailable`` naming them, as the adapter does when the broker refuses them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bot.kafka.errors import KafkaUnavailable
from handlers.ports import ClusterRef
from handlers.replica_moves import (
    THROTTLE_RATE_KEYS,
    THROTTLED_REPLICAS_KEYS,
    MoveProgress,
    ReassignmentInFlight,
    ReplicaLayout,
    ReplicaPlacement,
    ReplicaTarget,
    ReplicationThrottle,
    ThrottlesPresent,
    throttled_replicas_text,
)
from runbooks.rules.reassignment import ReassignmentBroker

LEADER_RATE, FOLLOWER_RATE = THROTTLE_RATE_KEYS
LEADER_REPLICAS, FOLLOWER_REPLICAS = THROTTLED_REPLICAS_KEYS


@dataclass
class FakePartition:
    replicas: list[int]
    size: int = 0  # the leader's log size
    leader: int | None = None
    copied: dict[int, int] = field(default_factory=dict)  # adding broker -> bytes it has
    target: list[int] | None = None  # the move in flight
    before: list[int] = field(default_factory=list)  # the replicas before the move
    lagging: dict[int, int] = field(default_factory=dict)  # a wiped replica catching up -> bytes it has

    def __post_init__(self) -> None:
        if self.leader is None:
            self.leader = self.replicas[0]


class ReplicaMoves:
    """Topics, their replicas and sizes, throttles and moves in flight. The host class says which
    brokers are live (``live_brokers``) and which racks they are on (``racks``)."""

    topics: dict[str, dict[int, FakePartition]]
    broker_throttles: dict[int, dict[str, str]]
    default_throttles: dict[str, str]  # the cluster-wide default rates (``--entity-default``), set by hand only
    topic_throttles: dict[str, dict[str, str]]
    racks: dict[int, str]

    def init_replica_moves(self) -> None:
        self.topics, self.broker_throttles, self.topic_throttles, self.racks = {}, {}, {}, {}
        self.default_throttles = {}

    def live_brokers(self) -> list[int]:
        raise NotImplementedError

    # -- test set-up ---------------------------------------------------------------------------
    def create_topic(self, name: str, assignment: Mapping[int, Sequence[int]],
                     size_bytes: Mapping[int, int] | None = None) -> None:
        """A topic with each partition's replicas (the first leads) and its size in bytes."""
        sizes = size_bytes or {}
        self.topics[name] = {p: FakePartition(list(r), size=sizes.get(p, 0)) for p, r in assignment.items()}

    def wipe_replicas(self, broker: int) -> None:
        """``broker`` lost its disk: each of its replicas copies the leader's log again (out of the ISR)."""
        for partitions in self.topics.values():
            for p in partitions.values():
                if broker in self._replicas(p):
                    p.lagging[broker] = 0
                    if p.leader == broker:
                        p.leader = next((b for b in p.replicas if b != broker), broker)

    def advance_moves(self, seconds: float) -> None:
        """Let throttled replicas copy for ``seconds``; moves whose replicas all caught up finish."""
        for topic, partitions in self.topics.items():
            for index, p in partitions.items():
                for b in list(p.lagging):
                    rate = self._throttle_rate(topic, index, b)
                    p.lagging[b] = p.size if rate is None else min(p.size, p.lagging[b] + int(rate * seconds))
                    if p.lagging[b] >= p.size:
                        del p.lagging[b]
                if p.target is None:
                    continue
                for b in p.copied:
                    rate = self._throttle_rate(topic, index, b)
                    p.copied[b] = p.size if rate is None else min(p.size, p.copied[b] + int(rate * seconds))
                self._finish_if_caught_up(p)

    # -- the port ------------------------------------------------------------------------------
    async def replica_layout(self, cluster: ClusterRef, bootstrap_servers: str) -> ReplicaLayout:
        live = set(self.live_brokers())
        known = sorted(live | {b for ps in self.topics.values() for p in ps.values() for b in p.replicas})
        placements = []
        for topic, partitions in sorted(self.topics.items()):
            for index, p in sorted(partitions.items()):
                leader = p.leader if p.leader in live else None
                sizes = {b: p.lagging.get(b, p.copied.get(b, p.size)) for b in self._replicas(p) if b in live}
                isr = tuple(b for b in self._replicas(p) if b in live and b not in p.copied and b not in p.lagging)
                placements.append(ReplicaPlacement(topic=topic, partition=index, replicas=tuple(self._replicas(p)),
                                                   leader=leader, isr=isr, sizes=sizes))
        return ReplicaLayout(brokers=tuple(ReassignmentBroker(id=b, rack=self.racks.get(b), alive=b in live)
                                           for b in known), partitions=tuple(placements))

    async def set_replication_throttles(self, cluster: ClusterRef, bootstrap_servers: str,
                                        throttle: ReplicationThrottle) -> None:
        live = set(self.live_brokers())
        missing = [b for b in throttle.brokers if b not in live]
        if missing:
            raise KafkaUnavailable(f"setting throttles of {cluster.name}: no live broker {missing}")
        unknown = [t for t in throttle.topics if t not in self.topics]
        if unknown:
            raise KafkaUnavailable(f"setting throttles of {cluster.name}: topic {unknown[0]}: "
                                   "UnknownTopicOrPartitionError")
        for b in throttle.brokers:
            self.broker_throttles.setdefault(b, {}).update(dict.fromkeys(THROTTLE_RATE_KEYS,
                                                                         str(throttle.rate_bytes_per_s)))
        for topic in throttle.topics:
            configs = self.topic_throttles.setdefault(topic, {})
            for key, replicas in ((LEADER_REPLICAS, throttle.leader_replicas.get(topic, ())),
                                  (FOLLOWER_REPLICAS, throttle.follower_replicas.get(topic, ()))):
                if not replicas:
                    continue
                present = [e for e in configs.get(key, "").split(",") if e]
                present += [e for e in throttled_replicas_text(replicas).split(",") if e not in present]
                configs[key] = ",".join(present)

    async def remove_replication_throttles(self, cluster: ClusterRef, bootstrap_servers: str,
                                           brokers: Sequence[int], topics: Sequence[str]) -> None:
        for b in brokers:
            self.broker_throttles.pop(b, None)
        for t in topics:
            self.topic_throttles.pop(t, None)

    async def replication_throttles(self, cluster: ClusterRef, bootstrap_servers: str,
                                    topics: Sequence[str] | None = None,
                                    brokers: Sequence[int] | None = None) -> ThrottlesPresent:
        live = [b for b in self.live_brokers() if brokers is None or b in brokers]
        # A broker's own rate keys hide the cluster-wide default's (Kafka's precedence).
        effective = {b: {**self.default_throttles, **self.broker_throttles.get(b, {})} for b in live}
        inherited = {k for b in live for k in self.default_throttles if k not in self.broker_throttles.get(b, {})}
        return ThrottlesPresent(
            brokers={b: c for b, c in sorted(effective.items()) if c},
            default_rates={k: v for k, v in self.default_throttles.items() if k in inherited},
            topics={t: {k: v for k, v in c.items() if v} for t, c in sorted(self.topic_throttles.items())
                    if any(c.values()) and t in self.topics and (topics is None or t in topics)})

    async def submit_reassignments(self, cluster: ClusterRef, bootstrap_servers: str,
                                   targets: Sequence[ReplicaTarget]) -> dict[str, str]:
        refused: dict[str, str] = {}
        live = set(self.live_brokers())
        for t in targets:
            p = self.topics.get(t.topic, {}).get(t.partition)
            if p is None:
                refused[t.name] = "UnknownTopicOrPartitionError"
                continue
            if len(set(t.replicas)) != len(t.replicas) or any(b not in live for b in t.replicas):
                refused[t.name] = "InvalidReplicationAssignmentError"
                continue
            if p.target is None:
                if list(t.replicas) == p.replicas:
                    continue
                p.before = list(p.replicas)
            elif list(t.replicas) == p.target:
                continue  # the same move again: nothing changes
            p.target = list(t.replicas)
            adding = [b for b in p.target if b not in p.before]
            p.copied = {b: p.copied.get(b, 0) for b in adding}
            self.advance_moves(0)  # unthrottled replicas copy at once
        return refused

    async def cancel_reassignments(self, cluster: ClusterRef, bootstrap_servers: str,
                                   partitions: Sequence[tuple[str, int]]) -> dict[str, str]:
        refused: dict[str, str] = {}
        for topic, index in partitions:
            p = self.topics.get(topic, {}).get(index)
            if p is None:
                refused[f"{topic}-{index}"] = "UnknownTopicOrPartitionError"
            elif p.target is not None:
                p.replicas, p.target, p.copied = list(p.before), None, {}
        return refused

    async def reassignments_in_flight(self, cluster: ClusterRef, bootstrap_servers: str,
                                      partitions: Sequence[tuple[str, int]] | None = None,
                                      ) -> list[ReassignmentInFlight]:
        wanted = set(partitions) if partitions is not None else None
        result = []
        for topic, ps in sorted(self.topics.items()):
            for index, p in sorted(ps.items()):
                if p.target is None or (wanted is not None and (topic, index) not in wanted):
                    continue
                result.append(ReassignmentInFlight(
                    topic=topic, partition=index, replicas=tuple(self._replicas(p)),
                    adding=tuple(b for b in p.target if b not in p.before),
                    removing=tuple(b for b in p.before if b not in p.target)))
        return result

    async def reassignment_progress(self, cluster: ClusterRef, bootstrap_servers: str,
                                    partitions: Sequence[tuple[str, int]]) -> list[MoveProgress]:
        result = []
        for topic, index in sorted(set(partitions)):
            p = self.topics.get(topic, {}).get(index)
            if p is None:
                continue
            copied = dict(p.copied) if p.target is not None else {}
            result.append(MoveProgress(topic=topic, partition=index, in_flight=p.target is not None, leader=p.leader,
                                       leader_bytes=p.size, adding=tuple(copied), copied=copied,
                                       bytes_left=sum(max(0, p.size - c) for c in copied.values())))
        return result

    # -- the model -----------------------------------------------------------------------------
    @staticmethod
    def _replicas(p: FakePartition) -> list[int]:
        """The replica list Kafka reports: while moving, the target followed by what it drops."""
        if p.target is None:
            return list(p.replicas)
        return p.target + [b for b in p.before if b not in p.target]

    def _throttle_rate(self, topic: str, partition: int, broker: int) -> int | None:
        listed = self.topic_throttles.get(topic, {}).get(FOLLOWER_REPLICAS, "").split(",")
        rate = self.broker_throttles.get(broker, {}).get(FOLLOWER_RATE, self.default_throttles.get(FOLLOWER_RATE))
        return int(rate) if rate is not None and f"{partition}:{broker}" in listed else None

    def _finish_if_caught_up(self, p: FakePartition) -> None:
        if p.target is None or any(c < p.size for c in p.copied.values()):
            return
        p.replicas, p.target, p.copied = list(p.target), None, {}
        if p.leader not in p.replicas:
            p.leader = p.replicas[0]
