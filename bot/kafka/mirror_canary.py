"""``KafkaMirrorCanary``: the ``MirrorCanary`` port over aiokafka, each cluster's clients built with
its own security (``bot.kafka.security``: the listener's TLS and SASL, the KafkaUser's Secret).

The round trip runs the target's consumer and the source's producer at once: each record carries
its produce time (wall clock, milliseconds) and the round's marker in a small JSON value, and its
latency is the time it was seen on the target minus that. Records of other rounds (an earlier
attempt, another run) are told apart by the marker and ignored. The checkpoints are decoded as
MirrorMaker 2's ``MirrorClient`` / ``Checkpoint.deserializeRecord`` does: key = group, topic (int16
length-prefixed strings) and partition (int32); value = version (int16), upstream offset, downstream
offset (int64), metadata.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import OffsetAndMetadata

from bot.kafka.security import ClientSecurities, PlaintextOnly
from handlers.mirror_ports import MONITOR_MARKER, CanaryFigures, CanaryProbe, Checkpoint
from handlers.ports import ClusterRef
from runbooks.alerting.mirror import CanaryArrival

log = logging.getLogger(__name__)

_TOPIC_EXISTS = 36
_REQUEST_TIMEOUT_MS = 15000
_GAP_S = 0.02  # between canary records: a steady trickle, not one batch, so p99 means something
_DRAIN_S = 2.0  # after the probe's own record arrived (or not), reading on to the end at most this long


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


def decode_checkpoint(key: bytes, value: bytes) -> Checkpoint:
    (glen,) = struct.unpack_from(">h", key, 0)
    group = key[2:2 + glen].decode()
    (tlen,) = struct.unpack_from(">h", key, 2 + glen)
    topic = key[4 + glen:4 + glen + tlen].decode()
    (partition,) = struct.unpack_from(">i", key, 4 + glen + tlen)
    _, upstream, downstream = struct.unpack_from(">hqq", value, 0)
    return Checkpoint(group=group, topic=topic, partition=partition, upstream=upstream, downstream=downstream)


def _body(value: bytes | None) -> dict[str, Any]:
    """A canary record's JSON body; {} for anything else on the topic."""
    try:
        body = json.loads(value or b"")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _marker(value: bytes | None) -> object:
    return _body(value).get("canary")


async def _behind(consumer: AIOKafkaConsumer, ends: Mapping[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


class KafkaMirrorCanary:
    def __init__(self, security: ClientSecurities | None = None) -> None:
        self.security = security or PlaintextOnly()

    async def _config(self, cluster: ClusterRef) -> dict[str, Any]:
        return (await self.security.security(cluster)).aiokafka_config()

    async def create_topic(self, cluster: ClusterRef, bootstrap_servers: str, topic: str, *,
                           partitions: int = 1) -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=_REQUEST_TIMEOUT_MS,
                                    **await self._config(cluster))
        await admin.start()
        try:
            brokers = (await admin.describe_cluster()).get("brokers") or []
            replicas = max(1, min(3, len(brokers)))  # three copies where there are three brokers
            response = await admin.create_topics([NewTopic(topic, partitions, replicas)])
        finally:
            await admin.close()
        for entry in response.topic_errors:
            code, message = entry[1], entry[2] if len(entry) > 2 else ""
            if code == _TOPIC_EXISTS:
                return False
            if code:
                raise RuntimeError(f"CreateTopics {topic} on {cluster.name}: error {code} {message or ''}".strip())
        log.info("created topic %s on %s", topic, cluster.name)
        return True

    async def end_offsets(self, cluster: ClusterRef, bootstrap_servers: str, topic: str) -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                                    request_timeout_ms=_REQUEST_TIMEOUT_MS, **await self._config(cluster))
        await consumer.start()
        try:
            parts = await consumer._client.fetch_all_metadata()
            ids = parts.partitions_for_topic(topic) or set()
            if not ids:
                return {}
            ends = await consumer.end_offsets([TopicPartition(topic, p) for p in ids])
            return {tp.partition: int(offset) for tp, offset in ends.items()}
        finally:
            await consumer.stop()

    async def record_time(self, cluster: ClusterRef, bootstrap_servers: str, topic: str, partition: int,
                          offset: int) -> datetime | None:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                                    request_timeout_ms=_REQUEST_TIMEOUT_MS, **await self._config(cluster))
        await consumer.start()
        try:
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, offset)
            for records in (await consumer.getmany(tp, timeout_ms=3000, max_records=1)).values():
                for record in records:
                    return datetime.fromtimestamp(record.timestamp / 1000, UTC)
            return None
        finally:
            await consumer.stop()

    async def commit_offsets(self, cluster: ClusterRef, bootstrap_servers: str, group: str,
                             offsets: Mapping[tuple[str, int], int]) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group, enable_auto_commit=False,
                                    request_timeout_ms=_REQUEST_TIMEOUT_MS, **await self._config(cluster))
        await consumer.start()
        try:
            consumer.assign([TopicPartition(t, p) for t, p in offsets])  # commit needs an assignment: no group join
            await consumer.commit({TopicPartition(t, p): OffsetAndMetadata(o, "") for (t, p), o in offsets.items()})
        finally:
            await consumer.stop()

    async def checkpoints(self, cluster: ClusterRef, bootstrap_servers: str, source_alias: str,
                          group: str) -> list[Checkpoint]:
        topic = f"{source_alias}.checkpoints.internal"
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                                    auto_offset_reset="earliest", request_timeout_ms=_REQUEST_TIMEOUT_MS,
                                    **await self._config(cluster))
        await consumer.start()
        latest: dict[tuple[str, int], Checkpoint] = {}
        try:
            metadata = await consumer._client.fetch_all_metadata()
            ids = metadata.partitions_for_topic(topic) or set()
            if not ids:
                return []
            partitions = [TopicPartition(topic, p) for p in ids]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            ends = await consumer.end_offsets(partitions)
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline and await _behind(consumer, ends):
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        if record.key is None or record.value is None:
                            continue
                        found = decode_checkpoint(record.key, record.value)
                        if found.group == group:
                            latest[(found.topic, found.partition)] = found
        finally:
            await consumer.stop()
        return [latest[k] for k in sorted(latest)]

    async def round_trip(
        self, source: ClusterRef, source_bootstrap: str, source_topic: str,
        target: ClusterRef, target_bootstrap: str, target_topic: str, *, marker: str, count: int, timeout_s: float,
    ) -> CanaryFigures:
        started = time.time()
        deadline = time.monotonic() + timeout_s
        seen: dict[int, float] = {}
        duplicates = 0
        first: float | None = None
        consumer = AIOKafkaConsumer(bootstrap_servers=target_bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", request_timeout_ms=_REQUEST_TIMEOUT_MS,
                                    **await self._config(target))
        producer = AIOKafkaProducer(bootstrap_servers=source_bootstrap, acks="all",
                                    request_timeout_ms=_REQUEST_TIMEOUT_MS, **await self._config(source))
        await consumer.start()
        try:
            await producer.start()
            try:
                ids: set[int] = set()
                while not ids and time.monotonic() < deadline:  # MirrorMaker 2 creates the remote topic
                    ids = (await consumer._client.fetch_all_metadata()).partitions_for_topic(target_topic) or set()
                    if not ids:
                        await asyncio.sleep(0.5)
                partitions = [TopicPartition(target_topic, p) for p in ids]
                if partitions:
                    consumer.assign(partitions)
                    await consumer.seek_to_beginning(*partitions)

                async def produce() -> None:
                    for i in range(count):
                        body = json.dumps({"canary": marker, "seq": i, "ms": time.time() * 1000}).encode()
                        await producer.send_and_wait(source_topic, body, key=f"{marker}:{i}".encode())
                        await asyncio.sleep(_GAP_S)

                sending = asyncio.create_task(produce())
                try:
                    while partitions and len(seen) < count and time.monotonic() < deadline:
                        batches = await consumer.getmany(timeout_ms=200)
                        now_ms = time.time() * 1000
                        for records in batches.values():
                            for record in records:
                                body = _body(record.value)
                                if body.get("canary") != marker:
                                    continue
                                seq = int(body.get("seq", -1))
                                if seq in seen:
                                    duplicates += 1
                                    continue
                                seen[seq] = max(0.0, now_ms - float(body.get("ms", now_ms)))
                                if first is None:
                                    first = now_ms - started * 1000
                    await asyncio.wait_for(sending, timeout=max(1.0, deadline - time.monotonic()))
                    if len(seen) >= count:  # a duplicate comes right behind, if at all
                        for records in (await consumer.getmany(timeout_ms=1000)).values():
                            duplicates += sum(1 for record in records if _marker(record.value) == marker)
                finally:
                    sending.cancel()
            finally:
                await producer.stop()
        finally:
            await consumer.stop()
        latencies = list(seen.values())
        return CanaryFigures(sent=count, received=len(seen), duplicates=duplicates,
                             p50_ms=percentile(latencies, 0.5), p99_ms=percentile(latencies, 0.99),
                             max_ms=max(latencies, default=None), first_ms=first)

    async def probe(
        self, source: ClusterRef, source_bootstrap: str, source_topic: str,
        target: ClusterRef, target_bootstrap: str, target_topic: str, *, marker: str, positions: Mapping[int, int],
        wait_s: float,
    ) -> CanaryProbe:
        consumer = AIOKafkaConsumer(bootstrap_servers=target_bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", request_timeout_ms=_REQUEST_TIMEOUT_MS,
                                    **await self._config(target))
        arrivals: list[CanaryArrival] = []
        await consumer.start()
        try:
            ids = (await consumer._client.fetch_all_metadata()).partitions_for_topic(target_topic) or set()
            partitions = [TopicPartition(target_topic, p) for p in sorted(ids)]
            if partitions:
                consumer.assign(partitions)
                ends = await consumer.end_offsets(partitions)
                for tp in partitions:  # one stored beyond the end (the topic made anew) resets to the earliest
                    consumer.seek(tp, positions.get(tp.partition, ends[tp]))
            producer = AIOKafkaProducer(bootstrap_servers=source_bootstrap, acks="all",
                                        request_timeout_ms=_REQUEST_TIMEOUT_MS, **await self._config(source))
            await producer.start()
            try:
                body = json.dumps({"canary": marker, "seq": 0, "ms": time.time() * 1000}).encode()
                await producer.send_and_wait(source_topic, body, key=marker.encode())
            finally:
                await producer.stop()
            own = False
            deadline = time.monotonic() + wait_s
            while partitions and time.monotonic() < deadline and not own:
                own = self._read_arrivals(await consumer.getmany(timeout_ms=200), marker, arrivals) or own
            drain_until = time.monotonic() + _DRAIN_S
            ends = await consumer.end_offsets(partitions) if partitions else {}
            while partitions and time.monotonic() < drain_until and await _behind(consumer, ends):
                self._read_arrivals(await consumer.getmany(timeout_ms=200), marker, arrivals)
            reached = dict(positions)  # a partition not seen this time (metadata not there yet) keeps its place
            reached.update({tp.partition: int(await consumer.position(tp)) for tp in partitions})
        finally:
            await consumer.stop()
        return CanaryProbe(arrivals=tuple(arrivals), positions=reached)

    @staticmethod
    def _read_arrivals(batches: Mapping[TopicPartition, Any], marker: str, arrivals: list[CanaryArrival]) -> bool:
        """Add the monitor's canary records of ``batches`` to ``arrivals``; True if ``marker``'s was one."""
        now_ms = time.time() * 1000
        own = False
        for records in batches.values():
            for record in records:
                body = _body(record.value)
                tag = body.get("canary")
                if not isinstance(tag, str) or not tag.startswith(MONITOR_MARKER):
                    continue
                arrivals.append(CanaryArrival(sent_ms=float(body.get("ms", now_ms)), seen_ms=now_ms))
                own = own or tag == marker
        return own
