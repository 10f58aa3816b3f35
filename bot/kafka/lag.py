"""``KafkaLagReader``: the ``LagReader`` port over kafka-python 3 (its admin client, through the
``KafkaAdminAdapter``'s client cache, retry rule and deadline, and one plain consumer per cluster
for record timestamps).

Request counts per poll do not grow with the number of groups: ListGroups once per broker,
FindCoordinator batched (v4+), DescribeGroups and OffsetFetch (v8+, KIP-709) once per coordinator
for all its groups, ListOffsets once per partition leader for earliest and for latest. That is
what keeps a 200-group poll to a handful of round trips.

One failing group never blanks the others: kafka-python raises for the whole batch when any group
in it fails (e.g. its coordinator is moving), so a failed batch is retried group by group, at most
``concurrency`` at a time, and each group gets its own result or its own error. The same for
partitions in ListOffsets (split by topic).

Record timestamps: a consumer without a group (no commits, no membership) is assigned the
partitions, seeks each to the wanted offset and takes the first record it gets; one position per
partition per round (two groups stuck at different offsets of one partition need two rounds).
The consumer gets the cluster's TLS/SASL settings from the admin adapter's ``security``, and is
cached by bootstrap and their fingerprint (changed credentials: a new consumer, the old one closed).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient, OffsetSpec

from bot.kafka.admin import AdminCall, KafkaAdminAdapter
from bot.kafka.client_security import KafkaClientSecurity
from bot.kafka.security import ClientSecurities
from handlers.ports import ClusterRef, ConsumerGroup, GroupCommits, GroupMember

log = logging.getLogger(__name__)

T = TypeVar("T")
GROUP_PROTOCOLS = ("consumer", "")  # "" = a group that only stores offsets (assign() consumers)
CONSUMER_START_S = 10.0  # a new consumer's bootstrap (its request timeout is 8 s)


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:197] + "..."


def _members(described: dict[str, Any]) -> tuple[GroupMember, ...]:
    members = []
    for member in described.get("members") or []:
        assignment = member.get("member_assignment")
        partitions: list[tuple[str, int]] = []
        if isinstance(assignment, dict):
            for entry in assignment.get("assigned_partitions") or []:
                partitions += [(str(entry["topic"]), int(p)) for p in entry.get("partitions") or []]
        members.append(GroupMember(
            member_id=str(member.get("member_id") or ""), client_id=str(member.get("client_id") or ""),
            host=str(member.get("client_host") or ""), partitions=tuple(sorted(partitions)),
        ))
    return tuple(members)


def _offsets(fetched: dict[TopicPartition, Any]) -> dict[str, dict[int, int]]:
    offsets: dict[str, dict[int, int]] = {}
    for tp, meta in fetched.items():
        offsets.setdefault(tp.topic, {})[tp.partition] = int(meta.offset)
    return offsets


class KafkaLagReader:
    def __init__(self, admin: KafkaAdminAdapter, *, concurrency: int = 4, client_id: str = "kafka-chatops-lag",
                 fetch_timeout_s: float = 5.0) -> None:
        self._admin = admin
        self._concurrency = concurrency
        self._client_id = client_id
        self._fetch_timeout_s = fetch_timeout_s
        self._consumers: dict[tuple[str, str], tuple[KafkaConsumer, threading.Lock]] = {}
        self._consumers_lock = threading.Lock()

    @property
    def security(self) -> ClientSecurities:
        """The clusters' TLS/SASL settings, as the admin adapter gets them."""
        return self._admin.security

    # -- the port ------------------------------------------------------------------------------

    async def consumer_groups(self, cluster: ClusterRef, bootstrap_servers: str) -> list[ConsumerGroup]:
        def body(call: AdminCall) -> list[ConsumerGroup]:
            listed = call.retry("ListGroups", lambda a: a.list_groups())
            ids = sorted({str(g["group_id"]) for g in listed if g.get("protocol_type", "") in GROUP_PROTOCOLS})
            described = self._per_group(call, ids, "DescribeGroups", lambda a, gs: a.describe_groups(gs))
            groups = []
            for group_id in ids:
                found = described.get(group_id)
                if isinstance(found, dict):
                    state = str(found.get("group_state") or "") if not found.get("error") else "Unknown"
                    groups.append(ConsumerGroup(group=group_id, state=state,
                                                protocol_type=str(found.get("protocol_type") or ""),
                                                members=_members(found)))
                else:  # not described (its coordinator failed): still reported, its offsets may be readable
                    groups.append(ConsumerGroup(group=group_id, state="Unknown"))
            return groups

        return await self._admin.run_calls(cluster, bootstrap_servers, "consumer groups", body)

    async def committed_offsets(
        self, cluster: ClusterRef, bootstrap_servers: str, groups: Sequence[str],
    ) -> list[GroupCommits]:
        ids = list(groups)

        def body(call: AdminCall) -> list[GroupCommits]:
            fetched = self._per_group(call, ids, "OffsetFetch", lambda a, gs: a.list_group_offsets(list(gs)))
            results = []
            for group_id in ids:
                found = fetched.get(group_id)
                if isinstance(found, dict):
                    results.append(GroupCommits(group=group_id, offsets=_offsets(found)))
                else:
                    results.append(GroupCommits(group=group_id, error=str(found or "no answer")))
            return results

        if not ids:
            return []
        return await self._admin.run_calls(cluster, bootstrap_servers, "committed offsets", body)

    async def log_offsets(
        self, cluster: ClusterRef, bootstrap_servers: str, partitions: Sequence[tuple[str, int]],
    ) -> dict[tuple[str, int], tuple[int, int]]:
        tps = [TopicPartition(t, p) for t, p in partitions]

        def ends(admin: KafkaAdminClient, chunk: list[TopicPartition]) -> dict[tuple[str, int], tuple[int, int]]:
            earliest = admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in chunk})
            latest = admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in chunk})
            return {(tp.topic, tp.partition): (int(earliest[tp].offset), int(latest[tp].offset))
                    for tp in chunk if tp in earliest and tp in latest}

        def body(call: AdminCall) -> dict[tuple[str, int], tuple[int, int]]:
            # One attempt for the batch (kafka-python already retries NotLeader inside it): a topic
            # deleted under a group fails the whole batch on every retry, so split at once instead.
            try:
                return call.once(lambda a: ends(a, tps))
            except Exception as exc:
                log.info("%s: ListOffsets failed for the batch (%s); asking topic by topic", call.what, _short(exc))
            by_topic: dict[str, list[TopicPartition]] = {}
            for tp in tps:
                by_topic.setdefault(tp.topic, []).append(tp)
            found: dict[tuple[str, int], tuple[int, int]] = {}
            for topic, chunk in by_topic.items():
                try:
                    found.update(call.once(lambda a, chunk=chunk: ends(a, chunk)))  # type: ignore[misc]
                except Exception as exc:  # that topic's lag is unknown this poll; the others stand
                    log.warning("%s: ListOffsets for topic %s failed: %s", call.what, topic, _short(exc))
            return found

        if not tps:
            return {}
        return await self._admin.run_calls(cluster, bootstrap_servers, "log offsets", body)

    async def record_timestamps(
        self, cluster: ClusterRef, bootstrap_servers: str, positions: Sequence[tuple[str, int, int]],
    ) -> dict[tuple[str, int, int], int]:
        if not positions:
            return {}
        wanted = list(positions)
        security = await self._admin.security.security(cluster)
        # On the cluster's own threads (bot.kafka.admin, "Isolation"); the bound covers a consumer
        # that has to bootstrap first.
        try:
            return await self._admin.in_cluster_thread(
                cluster, bootstrap_servers, lambda: self._timestamps(bootstrap_servers, security, wanted),
                timeout_s=self._fetch_timeout_s + CONSUMER_START_S)
        except Exception:
            self._admin.security.failed(cluster)
            raise

    async def close(self) -> None:
        with self._consumers_lock:
            consumers, self._consumers = list(self._consumers.values()), {}
        for consumer, lock in consumers:
            def close(consumer: KafkaConsumer = consumer, lock: threading.Lock = lock) -> None:
                with lock:
                    consumer.close()
            await asyncio.to_thread(close)

    # -- plumbing (worker threads) ---------------------------------------------------------------

    def _per_group(
        self, call: AdminCall, ids: list[str], request: str,
        ask: Callable[[KafkaAdminClient, list[str]], dict[str, Any]],
    ) -> dict[str, Any]:
        """One batched request for every group; if the batch fails, one request per group, at most
        ``concurrency`` at a time, each failure recorded as that group's error text."""
        if not ids:
            return {}
        try:
            return call.retry(request, lambda a: ask(a, ids))
        except Exception as exc:
            log.info("%s: %s failed for the batch (%s); asking group by group", call.what, request, _short(exc))

        def one(group_id: str) -> tuple[str, Any]:
            try:
                return group_id, call.once(lambda a: ask(a, [group_id])).get(group_id)
            except Exception as exc:
                return group_id, _short(exc)

        with ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="kco-lag") as pool:
            return dict(pool.map(one, ids))

    def _consumer(self, bootstrap: str, security: KafkaClientSecurity) -> tuple[KafkaConsumer, threading.Lock]:
        key = (bootstrap, security.fingerprint)
        with self._consumers_lock:
            found = self._consumers.get(key)
        if found is not None:
            return found
        # Built outside the lock every cluster shares: a consumer of a dead cluster may take its whole
        # timeout to start, and must not hold up another cluster's lookup meanwhile.
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, client_id=self._client_id, group_id=None,
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_partition_fetch_bytes=64 * 1024, request_timeout_ms=8000, **security.kafka_python_config(),
        )
        with self._consumers_lock:
            found = self._consumers.setdefault(key, (consumer, threading.Lock()))
            superseded = [self._consumers.pop(k) for k in list(self._consumers) if k[0] == bootstrap and k != key]
        if found[0] is not consumer:  # another thread built one first: keep that one
            consumer.close()
        for old, lock in superseded:  # credentials it no longer uses
            with lock:
                old.close()
        return found

    def _timestamps(self, bootstrap: str, security: KafkaClientSecurity,
                    positions: list[tuple[str, int, int]]) -> dict[tuple[str, int, int], int]:
        rounds: list[dict[TopicPartition, int]] = []
        for topic, partition, offset in sorted(positions):
            tp = TopicPartition(topic, partition)
            target = next((r for r in rounds if tp not in r), None)
            if target is None:
                target = {}
                rounds.append(target)
            target[tp] = offset
        consumer, lock = self._consumer(bootstrap, security)
        found: dict[tuple[str, int, int], int] = {}
        deadline = time.monotonic() + self._fetch_timeout_s
        with lock:
            for wanted in rounds:
                if time.monotonic() >= deadline:
                    break
                consumer.assign(list(wanted))
                for tp, offset in wanted.items():
                    consumer.seek(tp, offset)
                pending = dict(wanted)
                while pending and time.monotonic() < deadline:
                    batch = consumer.poll(timeout_ms=200, max_records=max(100, len(pending) * 4))
                    for tp, records in batch.items():
                        target = pending.get(tp)
                        first = next((r for r in records if target is not None and r.offset >= target), None)
                        if first is not None and target is not None:
                            found[(tp.topic, tp.partition, target)] = int(first.timestamp)
                            del pending[tp]
                            consumer.pause(tp)
                consumer.assign([])
        return found
