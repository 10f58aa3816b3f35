"""What the admin adapter asks a cluster, each in the cluster's worker thread (``AdminCall``):
the health snapshot and the preferred leader election, and the rule for which errors are worth
another try. ``bot.kafka.admin`` owns the clients, their threads and deadlines; this module only
says which requests make up a port call and how their answers become the domain's values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol, TypeVar

import kafka.errors as kerrors
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from bot.kafka.errors import KafkaUnavailable
from bot.kafka.parse import (
    MIN_ISR,
    brokers_from,
    config_int,
    partitions_from,
    quorum_error,
    quorum_from,
    topic_min_isr,
)
from runbooks.rules.health import ClusterSnapshot, QuorumInfo


class AdminCall(Protocol):
    """What these reads need of the adapter's port call (``bot.kafka.admin``): a retried request."""

    what: str

    def retry(self, request: str, fn: Callable[[KafkaAdminClient], T]) -> T: ...

    def once(self, fn: Callable[[KafkaAdminClient], T]) -> T: ...

    def unavailable(self, request: str, exc: BaseException) -> KafkaUnavailable: ...

log = logging.getLogger(__name__)
T = TypeVar("T")

_PREFERRED = 0  # ElectionType.PREFERRED on the wire
_ELECTION_NOT_NEEDED = kerrors.ElectionNotNeededError.errno
# Errors that a moment and another broker can cure. UnknownBrokerId shows up when metadata still
# names a broker that just left.
_RETRIABLE: tuple[type[BaseException], ...] = (
    kerrors.KafkaConnectionError,
    kerrors.NodeNotReadyError,
    kerrors.KafkaTimeoutError,
    kerrors.UnknownBrokerIdError,
    OSError,
)


class _QuorumNotReady(Exception):
    """DescribeQuorum answered with a partition-level error, e.g. mid controller failover."""

    retriable = True


def retriable(exc: BaseException) -> bool:
    if isinstance(exc, RuntimeError) and "controller" in str(exc):
        return True  # kafka-python's "Failed to find active controller id!" during a failover
    return isinstance(exc, _RETRIABLE) or bool(getattr(exc, "retriable", False))


def read_snapshot(call: AdminCall) -> ClusterSnapshot:
    taken_at = datetime.now(UTC)
    described = call.retry("DescribeCluster", lambda a: a.describe_cluster())
    brokers = brokers_from(described)
    quorum = _quorum(call)
    topics = call.retry("Metadata (describe topics)", lambda a: a.describe_topics())
    topics = [t for t in topics if not t.get("error_code")]  # e.g. deleted since the listing
    moving = call.retry("ListPartitionReassignments", lambda a: a.list_partition_reassignments())
    names = [str(t["name"]) for t in topics]
    min_isr: dict[str, int] = {}
    if names:
        resources = [ConfigResource(ConfigResourceType.TOPIC, n, [MIN_ISR]) for n in names]
        configs = call.retry(
            "DescribeConfigs (topics)",
            # 'all': the default filter drops values inherited from the broker, and those are
            # exactly the effective values of topics without an override.
            lambda a: a.describe_configs(resources, config_filter="all"),
        )
        min_isr = topic_min_isr(configs)
    return ClusterSnapshot(
        taken_at=taken_at,
        brokers=brokers,
        # In KRaft, DescribeCluster's controller_id is a random live broker (clients' admin
        # requests are forwarded), not the active controller; the quorum leader is.
        controller_id=quorum.leader_id if quorum is not None else described.get("controller_id"),
        quorum=quorum,
        partitions=partitions_from(topics, moving),
        min_isr=min_isr,
        default_min_isr=_default_min_isr(call, [b.id for b in brokers if not b.fenced]),
    )

def _quorum(call: AdminCall) -> QuorumInfo | None:
    def describe(admin: KafkaAdminClient) -> Any:
        described = admin.describe_metadata_quorum()
        error = quorum_error(described)
        if error:
            raise _QuorumNotReady(error)
        return described

    try:
        return quorum_from(call.retry("DescribeQuorum", describe))
    except KafkaUnavailable as exc:
        # A ZooKeeper-mode cluster (Strimzi <= 0.45) has no KRaft quorum to describe.
        if isinstance(exc.__cause__, kerrors.IncompatibleBrokerVersion | kerrors.UnsupportedVersionError):
            return None
        # The quorum answered but kept reporting an error: say "no leader known", which every
        # rule reads as "not safe", rather than fail the whole snapshot.
        if isinstance(exc.__cause__, _QuorumNotReady):
            log.warning("%s: %s", call.what, exc)
            return QuorumInfo(leader_id=None)
        raise

def _default_min_isr(call: AdminCall, live: list[int]) -> int:
    """The broker-level ``min.insync.replicas``; DescribeConfigs(BROKER) must go to that broker."""
    last: BaseException | None = None
    for broker in live:
        resources = [ConfigResource(ConfigResourceType.BROKER, str(broker), [MIN_ISR])]
        try:
            configs = call.once(partial(_describe_all, resources=resources))
        except Exception as exc:  # that broker may be dying but not yet fenced: ask the next
            if not retriable(exc):
                raise call.unavailable("DescribeConfigs (broker)", exc) from exc
            last = exc
            continue
        value = config_int((configs.get("broker") or {}).get(str(broker)) or {})
        if value is not None:
            return value
    raise call.unavailable("DescribeConfigs (broker)", last or LookupError("no live broker answered"))

def elect_preferred(call: AdminCall) -> int:
    response = call.retry(
        "ElectLeaders (preferred)",
        # topic_partitions=None: kafka-python lists every partition itself, so the controller
        # answers for each one (a null list would only report the ones it moved).
        lambda a: a.elect_leaders(_PREFERRED, topic_partitions=None, raise_errors=False),
    )
    top = getattr(response, "error_code", 0) or 0
    if top:
        raise call.unavailable("ElectLeaders (preferred)", kerrors.for_code(top)())
    moved = 0
    refused: list[str] = []
    for result in response.replica_election_results:
        for p in result.partition_result:
            if p.error_code == 0:
                moved += 1
            elif p.error_code != _ELECTION_NOT_NEEDED:
                # e.g. PREFERRED_LEADER_NOT_AVAILABLE: the preferred replica is down or out of
                # ISR. Not an error of the election as a whole; the rest still moved.
                refused.append(f"{result.topic}-{p.partition_id}: {kerrors.for_code(p.error_code).__name__}")
    if refused:
        log.info("%s: %d partitions kept their leader: %s", call.what, len(refused), ", ".join(refused[:10]))
    return moved


def _describe_all(admin: KafkaAdminClient, resources: list[ConfigResource]) -> Any:
    return admin.describe_configs(resources, config_filter="all")
