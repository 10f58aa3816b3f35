"""What the replica-move end-to-end tests read from the real cluster, through the bot's own Kafka
adapter (the same reads the runbooks make): the replica layout, throttles, moves in flight, and a
topic loaded with data."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from kafka import KafkaAdminClient, KafkaProducer

from bot.kafka.admin import KafkaAdminAdapter
from bot.kafka.brokers import ensure_known
from bot.kafka.reassignments import log_dir_sizes
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


def strip_throttled_replicas(sandbox: SandboxInfo, topics: list[str]) -> None:
    """Delete the topics' throttled-replica lists, as Strimzi's Topic Operator does (strimzi#9972)."""
    _read(sandbox, lambda a, ref, b: a.remove_replication_throttles(ref, b, [], topics))


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


class BrokerBytes:
    """The bytes of ``topic`` a broker holds, sampled (DescribeLogDirs to that broker) every
    ``interval`` seconds in a thread while the block runs: the rate a move achieved, read from the
    receiving broker itself rather than from the bot's own timings."""

    def __init__(self, sandbox: SandboxInfo, broker: int, topic: str, *, interval: float = 0.5) -> None:
        self._sandbox, self._broker, self._topic, self._interval = sandbox, broker, topic, interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> BrokerBytes:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        admin = KafkaAdminClient(bootstrap_servers=self._sandbox.bootstrap_servers, request_timeout_ms=5000)
        try:
            while not self._stop.is_set():
                with contextlib.suppress(Exception):  # the broker restarting: no sample this time
                    ensure_known(admin, self._broker)
                    sizes = log_dir_sizes(admin.describe_log_dirs(brokers=[self._broker]))
                    held = sum(by.get(self._broker, 0) for (t, _), by in sizes.items() if t == self._topic)
                    self.samples.append((time.monotonic(), held))
                self._stop.wait(self._interval)
        finally:
            admin.close()

    def rate(self, low: float = 0.1, high: float = 0.9) -> tuple[float, int, float]:
        """Bytes per second while the broker went from ``low`` to ``high`` of the most it held (the
        steady part of the copy, leaving out the start and the tail), with those bytes and seconds."""
        top = max(held for _, held in self.samples)
        start = next(t for t, held in self.samples if held >= low * top)
        end_t, end_held = next((t, held) for t, held in self.samples if held >= high * top)
        start_held = next(held for t, held in self.samples if t == start)
        return (end_held - start_held) / (end_t - start), end_held - start_held, end_t - start
