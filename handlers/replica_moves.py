"""The values the KafkaAdmin port's reassignment methods take and give (``handlers.ports``): where
every replica is and how big, a move's target, the replication throttles, and a move's progress.

Apart from ``handlers.ports`` because they are a family of their own that the replace-broker and
scale runbooks build on, and so the ports module stays readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field

from runbooks.rules.reassignment import PartitionMove, PartitionPlacement, ReassignmentBroker, ReassignmentRequest

if TYPE_CHECKING:  # ports imports this module's values; the port below only names ClusterRef in annotations
    from handlers.ports import ClusterRef


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)



THROTTLE_RATE_KEYS = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")
THROTTLED_REPLICAS_KEYS = ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas")


class ReplicaPlacement(_Frozen):
    """One partition as a move sees it: replicas in Kafka's order, leader (None when offline), ISR,
    and each replica's log size in bytes as its broker reports it (DescribeLogDirs; a replica whose
    broker did not answer is absent)."""

    topic: str
    partition: int
    replicas: tuple[int, ...]
    leader: int | None
    isr: tuple[int, ...] = ()
    sizes: dict[int, int] = Field(default_factory=dict)

    @property
    def size_bytes(self) -> int:
        """What a new replica has to copy: the leader's size, else the largest replica's."""
        if self.leader is not None and self.leader in self.sizes:
            return self.sizes[self.leader]
        return max(self.sizes.values(), default=0)


class ReplicaLayout(_Frozen):
    brokers: tuple[ReassignmentBroker, ...]
    partitions: tuple[ReplicaPlacement, ...]

    def request(self, *, drain: frozenset[int] = frozenset(), fill: frozenset[int] = frozenset()
                ) -> ReassignmentRequest:
        """The planner's request for this layout."""
        return ReassignmentRequest(
            brokers=self.brokers,
            partitions=tuple(PartitionPlacement(topic=p.topic, partition=p.partition, replicas=p.replicas,
                                                leader=p.leader, size_bytes=p.size_bytes) for p in self.partitions),
            drain=drain, fill=fill)


class ReplicaTarget(_Frozen):
    """A partition's full new replica list for AlterPartitionReassignments."""

    topic: str = Field(min_length=1)
    partition: int = Field(ge=0)
    replicas: tuple[int, ...] = Field(min_length=1)

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"


class ReplicationThrottle(_Frozen):
    """The throttle of a batch of moves, as ``kafka-reassign-partitions --throttle`` sets it: the rate
    on every broker that sends or receives, each moving partition's current replicas in its topic's
    leader list, and its new replicas in the follower list. Built with :meth:`for_moves`."""

    rate_bytes_per_s: int = Field(gt=0)
    brokers: tuple[int, ...]
    leader_replicas: dict[str, tuple[tuple[int, int], ...]]  # topic -> (partition, broker)
    follower_replicas: dict[str, tuple[tuple[int, int], ...]]

    @classmethod
    def for_moves(cls, moves: Sequence[PartitionMove], rate_bytes_per_s: int) -> ReplicationThrottle:
        leaders: dict[str, set[tuple[int, int]]] = {}
        followers: dict[str, set[tuple[int, int]]] = {}
        brokers: set[int] = set()
        for move in moves:
            brokers.update(move.old, move.new)
            leaders.setdefault(move.topic, set()).update((move.partition, b) for b in move.old)
            followers.setdefault(move.topic, set()).update((move.partition, b) for b in move.adding)
        return cls(rate_bytes_per_s=rate_bytes_per_s, brokers=tuple(sorted(brokers)),
                   leader_replicas={t: tuple(sorted(r)) for t, r in sorted(leaders.items())},
                   follower_replicas={t: tuple(sorted(r)) for t, r in sorted(followers.items()) if r})

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.leader_replicas) | set(self.follower_replicas)))


def throttled_replicas_text(replicas: Sequence[tuple[int, int]]) -> str:
    """Kafka's list format for ``*.replication.throttled.replicas``: ``partition:broker,...``."""
    return ",".join(f"{p}:{b}" for p, b in replicas)


class ThrottlesPresent(_Frozen):
    """Throttles found on a cluster: per broker its rate keys in effect (key -> value), the
    cluster-wide default rate keys where a broker inherits them (``--entity-default``: deleting
    them takes a command of their own), per topic its non-empty throttled-replica lists (key ->
    Kafka's text). Empty dicts: no throttle anywhere."""

    brokers: dict[int, dict[str, str]] = Field(default_factory=dict)
    topics: dict[str, dict[str, str]] = Field(default_factory=dict)
    default_rates: dict[str, str] = Field(default_factory=dict)
    # Asked for named brokers: those that did not answer a few quick tries (unknown, not "no throttle").
    unread: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.brokers and not self.topics and not self.default_rates


def _listed(text: str) -> set[tuple[int, int]] | None:
    """Kafka's throttled-replica list as (partition, broker) pairs; None for ``*`` (every replica)."""
    if text.strip() == "*":
        return None
    pairs = set()
    for entry in text.split(","):
        partition, _, broker = entry.strip().partition(":")
        if partition.isdigit() and broker.isdigit():
            pairs.add((int(partition), int(broker)))
    return pairs


class ThrottleGaps(_Frozen):
    """What of a batch's throttle is no longer in force: brokers whose rate keys are gone, brokers
    whose rate is another value than the run set, and topics whose lists lack moving replicas."""

    rates_removed: tuple[int, ...] = ()
    rates_changed: dict[int, str] = Field(default_factory=dict)  # broker -> "key=value, ..." as found
    lists_removed: tuple[str, ...] = ()

    @property
    def removed(self) -> bool:
        return bool(self.rates_removed or self.lists_removed)

    @classmethod
    def of(cls, throttle: ReplicationThrottle, present: ThrottlesPresent) -> ThrottleGaps:
        removed, changed = [], {}
        for broker in throttle.brokers:
            rates = present.brokers.get(broker, {})
            if any(key not in rates for key in THROTTLE_RATE_KEYS):
                removed.append(broker)
            elif any(rates[key] != str(throttle.rate_bytes_per_s) for key in THROTTLE_RATE_KEYS):
                changed[broker] = ", ".join(f"{key}={rates[key]}" for key in THROTTLE_RATE_KEYS)
        lists = []
        for topic in throttle.topics:
            found = present.topics.get(topic, {})
            for key, wanted in zip(THROTTLED_REPLICAS_KEYS, (throttle.leader_replicas, throttle.follower_replicas),
                                   strict=True):
                listed = _listed(found.get(key, ""))
                if listed is not None and not set(wanted.get(topic, ())) <= listed:
                    lists.append(topic)
                    break
        return cls(rates_removed=tuple(removed), rates_changed=changed, lists_removed=tuple(lists))


class ReassignmentInFlight(_Frozen):
    topic: str
    partition: int
    replicas: tuple[int, ...]  # the full set while moving: old and new together
    adding: tuple[int, ...]
    removing: tuple[int, ...]


class MoveProgress(_Frozen):
    topic: str
    partition: int
    in_flight: bool
    leader: int | None
    leader_bytes: int  # the leader's log size now
    adding: tuple[int, ...] = ()
    copied: dict[int, int] = Field(default_factory=dict)  # adding broker -> its replica's size now
    bytes_left: int = 0


class ReplicaMoves(Protocol):
    """The KafkaAdmin port's reads and writes for moving replicas (``handlers.ports.KafkaAdmin``
    includes them): the layout, throttles, and reassignments submitted, cancelled and followed."""

    async def replica_layout(self, cluster: ClusterRef, bootstrap_servers: str) -> ReplicaLayout:
        """Every broker (id, rack, alive) and every partition's replicas, leader, ISR and each
        replica's size on disk (DescribeCluster, Metadata, DescribeLogDirs to every live broker):
        what :meth:`ReplicaLayout.request` turns into the planner's request. A broker that still holds
        replicas but is fenced or no longer registered is listed with ``alive`` False."""
        ...

    async def set_replication_throttles(
        self, cluster: ClusterRef, bootstrap_servers: str, throttle: ReplicationThrottle,
    ) -> None:
        """IncrementalAlterConfigs: SET both rates on each of ``throttle.brokers`` (sent to that
        broker), APPEND the moving replicas to each topic's leader/follower throttled-replica lists
        (other partitions' entries stay). Idempotent. Raises KafkaUnavailable naming what failed."""
        ...

    async def remove_replication_throttles(
        self, cluster: ClusterRef, bootstrap_servers: str, brokers: Sequence[int], topics: Sequence[str],
    ) -> None:
        """IncrementalAlterConfigs: DELETE both rates on each broker and both throttled-replica lists
        on each topic. Idempotent: a key or a topic already without throttles is fine."""
        ...

    async def replication_throttles(self, cluster: ClusterRef, bootstrap_servers: str,
                                    topics: Sequence[str] | None = None,
                                    brokers: Sequence[int] | None = None) -> ThrottlesPresent:
        """Every throttle set on the cluster: the rates on each live broker (its own or the cluster-wide
        dynamic default) and each topic's non-empty throttled-replica lists (DescribeConfigs). A running
        move checks its own every poll: with ``topics`` only those topics' lists are read, and with
        ``brokers`` only those brokers, each given a few quick tries (one that does not answer is in
        ``unread``): a read waiting out the deadline on a broker that just died would hide its death."""
        ...

    async def submit_reassignments(
        self, cluster: ClusterRef, bootstrap_servers: str, targets: Sequence[ReplicaTarget],
    ) -> dict[str, str]:
        """AlterPartitionReassignments with each target's full replica list (its first broker becomes
        the preferred leader). Returns the partitions the controller refused ("topic-p" -> its error);
        empty when every one was accepted. Resubmitting an accepted target is harmless."""
        ...

    async def cancel_reassignments(
        self, cluster: ClusterRef, bootstrap_servers: str, partitions: Sequence[tuple[str, int]],
    ) -> dict[str, str]:
        """AlterPartitionReassignments with a null replica list for each partition: the controller
        reverts it to its replicas before the move. A partition with no move in flight is fine (not
        an error: cancelling twice is harmless). Returns the refused ones, as ``submit_reassignments``."""
        ...

    async def reassignments_in_flight(
        self, cluster: ClusterRef, bootstrap_servers: str, partitions: Sequence[tuple[str, int]] | None = None,
    ) -> list[ReassignmentInFlight]:
        """ListPartitionReassignments (all, or only ``partitions``): the moves not finished yet."""
        ...

    async def reassignment_progress(
        self, cluster: ClusterRef, bootstrap_servers: str, partitions: Sequence[tuple[str, int]],
    ) -> list[MoveProgress]:
        """For each partition: whether its move is still in flight and the bytes its adding replicas
        still lack, from log-dir sizes (DescribeLogDirs on the leader and on each adding broker):
        bytes left = sum over adding replicas of (leader's size - that replica's size, at least 0)."""
        ...
