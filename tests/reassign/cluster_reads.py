"""What the replica-move end-to-end tests read from the real cluster, through the bot's own Kafka
adapter (the same reads the runbooks make): the replica layout, throttles, moves in flight, and a
topic loaded with data."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kafka import KafkaProducer

from bot.kafka.admin import KafkaAdminAdapter
from handlers.ports import ClusterRef
from handlers.replica_moves import ReplicaLayout, ThrottlesPresent
from tests.fixtures.sandbox import SandboxInfo

T = TypeVar("T")


def _read(sandbox: SandboxInfo, call: Callable[[KafkaAdminAdapter, ClusterRef, str], Awaitable[T]]) -> T:
    async def go() -> T:
        admin = KafkaAdminAdapter()
        try:
            ref = ClusterRef(name=sandbox.cluster, namespace=sandbox.namespace, kafka=sandbox.cluster)
            return await call(admin, ref, sandbox.bootstrap_servers)
        finally:
            await admin.close()

    return asyncio.run(go())


def layout(sandbox: SandboxInfo) -> ReplicaLayout:
    return _read(sandbox, lambda a, ref, b: a.replica_layout(ref, b))


def throttles(sandbox: SandboxInfo) -> ThrottlesPresent:
    return _read(sandbox, lambda a, ref, b: a.replication_throttles(ref, b))


def moves_in_flight(sandbox: SandboxInfo) -> list[str]:
    return [f"{m.topic}-{m.partition}" for m in _read(sandbox, lambda a, ref, b: a.reassignments_in_flight(ref, b))]


def replicas_on(sandbox: SandboxInfo, broker: int) -> dict[str, int]:
    """Every partition with a replica on ``broker``, with that replica's size on disk."""
    return {f"{p.topic}-{p.partition}": p.sizes.get(broker, 0) for p in layout(sandbox).partitions
            if broker in p.replicas}


def load(sandbox: SandboxInfo, topic: str, *, megabytes: int, partitions: int) -> None:
    """``megabytes`` of incompressible records spread evenly over the topic's partitions."""
    producer = KafkaProducer(bootstrap_servers=sandbox.bootstrap_servers, acks="all", linger_ms=20,
                             batch_size=512 * 1024, max_request_size=2 * 1024 * 1024, compression_type=None)
    try:
        record = 64 * 1024
        for n in range(megabytes * 1024 * 1024 // record):
            producer.send(topic, os.urandom(record), partition=n % partitions)
        producer.flush(timeout=120)
    finally:
        producer.close(timeout=10)
