"""What the admin adapter asks a cluster to move replicas: the layout the planner needs, replication
throttles (set, removed, listed), and AlterPartitionReassignments / ListPartitionReassignments.

Every config write is IncrementalAlterConfigs (kafka-python 3's ``alter_configs(incremental=True)``),
never the legacy AlterConfigs, which resets every dynamic key the request leaves out. Broker
resources go to the broker named (kafka-python routes ``BROKER "<id>"`` there), topic resources to
any broker. ``raise_on_unknown=False``: kafka-python would otherwise check the keys against its own
DescribeConfigs first; the broker's verdict is the one that counts.

Progress is measured from log-dir sizes (DescribeLogDirs), not log-end offsets: a follower's
log-end offset is not exposed to admin clients (ListOffsets answers only from the leader), while
DescribeLogDirs reports each replica's size on the broker that holds it, a new one included.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import kafka.errors as kerrors
from kafka import TopicPartition
from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType, KafkaAdminClient

from bot.kafka.brokers import ensure_known
from bot.kafka.cluster_reads import AdminCall, retriable
from bot.kafka.parse import brokers_from, partitions_from
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

_NO_REASSIGNMENT = kerrors.NoReassignmentInProgressError
QUICK_TRIES = 3  # a broker's size read, before the layout calls it unanswering (about 0.6 s of waits)
# Where a broker's throttle rate can come from: its own dynamic value or the cluster-wide default.
_DYNAMIC_BROKER_SOURCES = {"DYNAMIC_BROKER_CONFIG", "DYNAMIC_DEFAULT_BROKER_CONFIG"}
_DYNAMIC_TOPIC_SOURCES = {"DYNAMIC_TOPIC_CONFIG"}


# -- reads -------------------------------------------------------------------------------------


def log_dir_sizes(described: Sequence[Mapping[str, Any]]) -> dict[tuple[str, int], dict[int, int]]:
    """(topic, partition) -> broker -> bytes, from ``describe_log_dirs``. A future log (a move between
    a broker's own directories) is left out: the current one is the replica's data."""
    sizes: dict[tuple[str, int], dict[int, int]] = {}
    for answer in described:
        broker = int(answer["broker"])
        for log_dir in answer.get("log_dirs") or []:
            if log_dir.get("error_code"):
                continue  # an offline directory: its replicas show as missing, not as empty
            for topic in log_dir.get("topics") or []:
                for p in topic.get("partitions") or []:
                    if p.get("is_future_key"):
                        continue
                    key = (str(topic["name"]), int(p["partition_index"]))
                    sizes.setdefault(key, {})[broker] = int(p.get("partition_size") or 0)
    return sizes


def _sizes(call: AdminCall, brokers: Sequence[int], partitions: Mapping[str, Sequence[int]] | None = None,
           *, unanswered: set[int] | None = None) -> dict[tuple[str, int], dict[int, int]]:
    """Each broker's replica sizes. With ``unanswered``, a broker that does not answer after a few quick
    tries is put there and skipped, instead of retried to the call's deadline: a broker that just died
    stays registered and unfenced for broker.session.timeout.ms, and a read waiting on it for 25 s
    would hide its death from a run checking its moves (the broker could even be back by then)."""
    answers: list[Mapping[str, Any]] = []
    for broker in brokers:
        def ask(admin: KafkaAdminClient, broker: int = broker) -> Any:
            ensure_known(admin, broker)
            wanted = {t: list(ps) for t, ps in partitions.items()} if partitions is not None else None
            return admin.describe_log_dirs(topic_partitions=wanted, brokers=[broker])
        request = f"DescribeLogDirs (broker {broker})"
        if unanswered is None:
            answers.extend(call.retry(request, ask))
            continue
        answer = _quick(call, request, ask)
        if answer is None:
            unanswered.add(broker)
        else:
            answers.extend(answer)
    return log_dir_sizes(answers)


def _quick(call: AdminCall, request: str, fn: Callable[[KafkaAdminClient], Any]) -> Any:
    """``fn``'s answer, or None when it failed in a way another try might cure, QUICK_TRIES times."""
    for attempt in range(QUICK_TRIES):
        try:
            return call.once(fn)
        except Exception as exc:
            if not retriable(exc):
                raise call.unavailable(request, exc) from exc
            if attempt + 1 < QUICK_TRIES:
                time.sleep(0.2 * (attempt + 1))
    return None


def read_layout(call: AdminCall) -> ReplicaLayout:
    """Brokers, replicas and sizes. A broker that is registered and unfenced but does not answer is
    reported not alive: for moving replicas it is as good as dead, and saying so at once lets a run
    pause before it submits anything more."""
    described = call.retry("DescribeCluster", lambda a: a.describe_cluster())
    brokers = brokers_from(described)
    topics = call.retry("Metadata (describe topics)", lambda a: a.describe_topics())
    topics = [t for t in topics if not t.get("error_code")]
    partitions = partitions_from(topics, {})
    live = [b.id for b in brokers if not b.fenced]
    unanswered: set[int] = set()
    sizes = _sizes(call, live, unanswered=unanswered)
    known = {b.id: ReassignmentBroker(id=b.id, rack=b.rack, alive=not b.fenced and b.id not in unanswered)
             for b in brokers}
    # A broker that left the cluster (unregistered) still holds replicas in the metadata: the planner
    # must see it, dead, to drain it rather than refuse its id as unknown.
    for p in partitions:
        for r in p.replicas:
            known.setdefault(r, ReassignmentBroker(id=r, alive=False))
    return ReplicaLayout(
        brokers=tuple(known[b] for b in sorted(known)),
        partitions=tuple(ReplicaPlacement(topic=p.topic, partition=p.partition, replicas=p.replicas, leader=p.leader,
                                          isr=p.isr, sizes=sizes.get((p.topic, p.partition), {}))
                         for p in partitions))


def read_in_flight(call: AdminCall, partitions: Sequence[tuple[str, int]] | None) -> list[ReassignmentInFlight]:
    wanted = [TopicPartition(t, p) for t, p in partitions] if partitions is not None else None
    moving = call.retry("ListPartitionReassignments", lambda a: a.list_partition_reassignments(wanted))
    return sorted((ReassignmentInFlight(topic=tp.topic, partition=tp.partition,
                                        replicas=tuple(r.get("replicas") or ()),
                                        adding=tuple(r.get("adding_replicas") or ()),
                                        removing=tuple(r.get("removing_replicas") or ()))
                   for tp, r in moving.items()), key=lambda m: (m.topic, m.partition))


def read_progress(call: AdminCall, partitions: Sequence[tuple[str, int]]) -> list[MoveProgress]:
    wanted = sorted(set(partitions))
    if not wanted:
        return []
    moving = {(m.topic, m.partition): m for m in read_in_flight(call, wanted)}
    names = sorted({t for t, _ in wanted})
    topics = call.retry("Metadata (describe topics)", lambda a: a.describe_topics(names))
    leaders = {(p.topic, p.partition): p.leader for p in partitions_from(
        [t for t in topics if not t.get("error_code")], {})}
    ask: dict[str, list[int]] = {}
    brokers: set[int] = set()
    for key in wanted:
        ask.setdefault(key[0], []).append(key[1])
        leader = leaders.get(key)
        if leader is not None:
            brokers.add(leader)
        if key in moving:
            brokers.update(moving[key].adding)
    sizes = _sizes(call, sorted(brokers), ask, unanswered=set())  # a dead receiver: its bytes unknown
    result = []
    for key in wanted:
        leader = leaders.get(key)
        on = sizes.get(key, {})
        leader_bytes = on.get(leader, 0) if leader is not None else 0
        move = moving.get(key)
        adding = move.adding if move is not None else ()
        copied = {b: on.get(b, 0) for b in adding}
        result.append(MoveProgress(topic=key[0], partition=key[1], in_flight=move is not None, leader=leader,
                                   leader_bytes=leader_bytes, adding=adding, copied=copied,
                                   bytes_left=sum(max(0, leader_bytes - c) for c in copied.values())))
    return result


# -- throttles ---------------------------------------------------------------------------------


def _alter(call: AdminCall, request: str, resources: list[ConfigResource]) -> None:
    def send(admin: KafkaAdminClient) -> Any:
        for r in resources:
            if r.resource_type == ConfigResourceType.BROKER:
                ensure_known(admin, int(r.name))
        return admin.alter_configs(resources, raise_on_unknown=False, incremental=True)

    result = call.retry(request, send)
    failed = [f"{kind} {name}: {verdict}" for kind, answers in result.items() for name, verdict in answers.items()
              if verdict != "OK"]
    if failed:
        raise call.unavailable(request, RuntimeError("; ".join(failed)))


def set_throttles(call: AdminCall, throttle: ReplicationThrottle) -> None:
    """The topics' lists first, then the rates: a topic that does not exist fails the call before
    any broker is throttled (the other topics of that one request may already have their lists;
    removing is idempotent)."""
    topics = []
    for topic in throttle.topics:
        # APPEND adds the entries a list lacks (Kafka drops duplicates), so other partitions'
        # entries stay and a retried or repeated call changes nothing.
        configs: dict[str, Any] = {}
        for key, replicas in zip(THROTTLED_REPLICAS_KEYS, (throttle.leader_replicas.get(topic, ()),
                                                           throttle.follower_replicas.get(topic, ())), strict=True):
            if replicas:
                configs[key] = (AlterConfigOp.APPEND, throttled_replicas_text(replicas))
        topics.append(ConfigResource(ConfigResourceType.TOPIC, topic, configs))
    if topics:
        _alter(call, "IncrementalAlterConfigs (throttled replicas)", topics)
    rate = str(throttle.rate_bytes_per_s)
    for broker in throttle.brokers:  # one request per broker: each goes to that broker
        _alter(call, f"IncrementalAlterConfigs (throttle rates, broker {broker})",
               [ConfigResource(ConfigResourceType.BROKER, str(broker), dict.fromkeys(THROTTLE_RATE_KEYS, rate))])


def remove_throttles(call: AdminCall, brokers: Sequence[int], topics: Sequence[str]) -> None:
    for broker in sorted(set(brokers)):
        _alter(call, f"IncrementalAlterConfigs (remove throttle rates, broker {broker})",
               [ConfigResource(ConfigResourceType.BROKER, str(broker),
                               {k: (AlterConfigOp.DELETE, None) for k in THROTTLE_RATE_KEYS})])
    names = sorted(set(topics))
    if names:
        _alter(call, "IncrementalAlterConfigs (remove throttled replicas)",
               [ConfigResource(ConfigResourceType.TOPIC, t, {k: (AlterConfigOp.DELETE, None)
                                                               for k in THROTTLED_REPLICAS_KEYS}) for t in names])


def _entry_source(entry: Mapping[str, Any]) -> str:
    return str(entry.get("config_source") or "")  # kafka-python gives the ConfigSourceType's name


def read_throttles(call: AdminCall, topics: list[str] | None = None,
                   brokers: list[int] | None = None) -> ThrottlesPresent:
    described = call.retry("DescribeCluster", lambda a: a.describe_cluster())
    live = [b.id for b in brokers_from(described) if not b.fenced and (brokers is None or b.id in brokers)]
    rates: dict[int, dict[str, str]] = {}
    defaults: dict[str, str] = {}
    unread: list[int] = []
    for broker in live:
        def ask(admin: KafkaAdminClient, broker: int = broker) -> Any:
            ensure_known(admin, broker)
            resource = ConfigResource(ConfigResourceType.BROKER, str(broker), list(THROTTLE_RATE_KEYS))
            return admin.describe_configs([resource], config_filter="all")
        request = f"DescribeConfigs (broker {broker})"
        answer = call.retry(request, ask) if brokers is None else _quick(call, request, ask)
        if answer is None:
            unread.append(broker)
            continue
        entries = (answer.get("broker") or {}).get(str(broker)) or {}
        found = {k: str(e.get("value")) for k, e in entries.items()
                 if k in THROTTLE_RATE_KEYS and e.get("value") is not None
                 and _entry_source(e) in _DYNAMIC_BROKER_SOURCES}
        if found:
            rates[broker] = found
        defaults.update({k: found[k] for k, e in entries.items()
                         if k in found and _entry_source(e) == "DYNAMIC_DEFAULT_BROKER_CONFIG"})
    names = call.retry("ListTopics", lambda a: a.list_topics())
    if topics is not None:  # only those that still exist: DescribeConfigs fails on a deleted one
        names = [n for n in names if n in set(topics)]
    found_topics: dict[str, dict[str, str]] = {}
    if names:
        resources = [ConfigResource(ConfigResourceType.TOPIC, str(n), list(THROTTLED_REPLICAS_KEYS)) for n in names]
        described_topics = call.retry("DescribeConfigs (topics)",
                                      lambda a: a.describe_configs(resources, config_filter="all"))
        for topic, entries in (described_topics.get("topic") or {}).items():
            found = {k: str(e.get("value")) for k, e in entries.items()
                     if k in THROTTLED_REPLICAS_KEYS and e.get("value") and _entry_source(e) in _DYNAMIC_TOPIC_SOURCES}
            if found:
                found_topics[str(topic)] = found
    return ThrottlesPresent(brokers=rates, topics=found_topics, default_rates=defaults, unread=tuple(unread))


# -- reassignments -----------------------------------------------------------------------------


def _refusals(answer: Mapping[TopicPartition, Any], *, tolerate: tuple[type[BaseException], ...] = ()
              ) -> dict[str, str]:
    refused: dict[str, str] = {}
    for tp, error in answer.items():
        if error is None or (isinstance(error, type) and issubclass(error, tolerate)):
            continue
        refused[f"{tp.topic}-{tp.partition}"] = getattr(error, "__name__", str(error))
    return refused


def submit(call: AdminCall, targets: Sequence[ReplicaTarget]) -> dict[str, str]:
    if not targets:
        return {}
    wanted = {TopicPartition(t.topic, t.partition): list(t.replicas) for t in targets}
    answer = call.retry("AlterPartitionReassignments", lambda a: a.alter_partition_reassignments(wanted))
    return _refusals(answer)


def cancel(call: AdminCall, partitions: Sequence[tuple[str, int]]) -> dict[str, str]:
    if not partitions:
        return {}
    wanted: dict[TopicPartition, list[int] | None] = {TopicPartition(t, p): None for t, p in partitions}
    answer = call.retry("AlterPartitionReassignments (cancel)", lambda a: a.alter_partition_reassignments(wanted))
    return _refusals(answer, tolerate=(_NO_REASSIGNMENT,))

