"""Continuous traffic through a change, to prove it costs no record and blocks no producer.

``Traffic`` runs, each in its own thread, an idempotent ``acks=all`` producer (kafka-python) writing
key ``k<n % 16>`` with value ``<n>`` every few milliseconds, and a consumer that reads every
partition from the beginning. The consumer has no group on purpose: a group's rebalance during a
broker restart replays uncommitted records, which would count as duplicates although Kafka lost
nothing; assigned partitions with positions kept in memory see each offset exactly once, so any
duplicate it sees is in the log itself.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from tests.fixtures.waiting import wait_until


@dataclass
class TrafficReport:
    sent: int
    acked: list[int]
    failed: list[str]
    consumed: list[tuple[str, int]]
    longest_ack_gap_s: float
    errors: list[str] = field(default_factory=list)
    # When records went missing: which of them a fresh read of the whole topic finds in the log
    # (then the consumer skipped them; else Kafka lost acknowledged records).
    missing_in_log: list[int] | None = None

    @property
    def duplicates(self) -> list[int]:
        return sorted(seq for seq, n in Counter(seq for _, seq in self.consumed).items() if n > 1)

    @property
    def missing(self) -> list[int]:
        return sorted(set(self.acked) - {seq for _, seq in self.consumed})

    def assert_exactly_once(self) -> None:
        """No failed send, every acknowledged record consumed once, under its own key, nothing extra."""
        assert not self.errors, self.errors
        assert not self.failed, f"{len(self.failed)} sends failed, first: {self.failed[:3]}"
        assert len(self.acked) == self.sent, f"{self.sent - len(self.acked)} sends never completed"
        assert not self.missing, (f"{len(self.missing)} acknowledged records never consumed: {self.missing[:10]}; "
                                  f"a fresh read of the topic finds {len(self.missing_in_log or [])} of them in "
                                  "the log")
        assert not self.duplicates, f"records consumed twice: {self.duplicates[:10]}"
        assert all(key == f"k{seq % 16}" for key, seq in self.consumed), "a record came back under another key"
        assert {seq for _, seq in self.consumed} == set(self.acked), "consumed records that were never sent"


class Traffic:
    def __init__(self, bootstrap: str, topic: str, *, partitions: int, interval_s: float = 0.005) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.interval_s = interval_s
        self.token = uuid.uuid4().hex[:8]  # tells this run's records from earlier ones on a reused topic
        self._stop = threading.Event()
        self._produced = threading.Event()  # the producer has flushed: every acknowledgement is in
        self._lock = threading.Lock()
        self.sent = 0
        self.acked: list[int] = []
        self.ack_times: list[float] = []
        self.failed: list[str] = []
        self.consumed: list[tuple[str, int]] = []
        self.errors: list[str] = []
        self._threads = [threading.Thread(target=self._produce, name="traffic-producer", daemon=True),
                         threading.Thread(target=self._consume, name="traffic-consumer", daemon=True)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        wait_until(lambda: len(self.consumed) >= 50, timeout=60, interval=0.2,
                   message="traffic flowing (50 records consumed)")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def _produce(self) -> None:
        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
            retries=2**31 - 1, delivery_timeout_ms=300_000, request_timeout_ms=30_000,
            max_in_flight_requests_per_connection=5, client_id="upgrade-traffic-producer")
        try:
            seq = 0
            while not self._stop.is_set():
                future = producer.send(self.topic, key=f"k{seq % 16}".encode(), value=f"{self.token}:{seq}".encode())
                future.add_callback(self._acked, seq)
                future.add_errback(self._failed, seq)
                with self._lock:
                    self.sent += 1
                seq += 1
                time.sleep(self.interval_s)
            producer.flush(timeout=300)
        except Exception as exc:  # the report carries it; the test asserts there is none
            self.errors.append(f"producer: {type(exc).__name__}: {exc}")
        finally:
            producer.close(timeout=30)
            self._produced.set()

    def _acked(self, seq: int, _metadata: Any) -> None:
        with self._lock:
            self.acked.append(seq)
            self.ack_times.append(time.monotonic())

    def _failed(self, seq: int, exc: BaseException) -> None:
        with self._lock:
            self.failed.append(f"{seq}: {type(exc).__name__}: {exc}")

    def _consume(self) -> None:
        # auto_offset_reset "none": an offset out of range raises (and the report says so) instead of
        # jumping to the end, which would count the records skipped as lost.
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                 client_id="upgrade-traffic-consumer", request_timeout_ms=30_000,
                                 auto_offset_reset="none")
        try:
            partitions = [TopicPartition(self.topic, p) for p in range(self.partitions)]
            consumer.assign(partitions)
            consumer.seek_to_beginning()
            # Done once positions reach the end offsets read after the producer flushed (an acks=all
            # record is below the high watermark once acknowledged). Counting records instead stopped
            # early when a leader move held a batch's acknowledgement past the stop.
            ends: dict[TopicPartition, int] | None = None
            give_up = None
            while ends is None or any(consumer.position(tp) < ends[tp] for tp in partitions):
                if self._produced.is_set() and ends is None:
                    give_up = give_up or time.monotonic() + 120  # lost records must not hang the test
                    with contextlib.suppress(KafkaError):  # a leader moving: read on and ask again
                        ends = consumer.end_offsets(partitions)
                if give_up is not None and time.monotonic() > give_up:
                    break
                batches = consumer.poll(timeout_ms=500)
                records = [r for batch in batches.values() for r in batch]
                mine = [(r.key.decode(), *r.value.decode().partition(":")) for r in records]
                with self._lock:
                    self.consumed.extend((key, int(seq)) for key, token, _, seq in mine if token == self.token)
        except Exception as exc:
            self.errors.append(f"consumer: {type(exc).__name__}: {exc}")
        finally:
            consumer.close()

    def report(self) -> TrafficReport:
        with self._lock:
            times = sorted(self.ack_times)
            gap = max((b - a for a, b in itertools.pairwise(times)), default=0.0)
            report = TrafficReport(sent=self.sent, acked=list(self.acked), failed=list(self.failed),
                                   consumed=list(self.consumed), longest_ack_gap_s=gap, errors=list(self.errors))
        if report.missing:
            report.missing_in_log = sorted(set(report.missing) & self._read_all())
        return report

    def _read_all(self) -> set[int]:
        """This run's sequence numbers in the log now, read from the start by a fresh consumer."""
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                 client_id="upgrade-traffic-reread", auto_offset_reset="none")
        try:
            partitions = [TopicPartition(self.topic, p) for p in range(self.partitions)]
            consumer.assign(partitions)
            consumer.seek_to_beginning()
            ends = consumer.end_offsets(partitions)
            found: set[int] = set()
            deadline = time.monotonic() + 60
            while any(consumer.position(tp) < ends[tp] for tp in partitions) and time.monotonic() < deadline:
                for batch in consumer.poll(timeout_ms=500).values():
                    for record in batch:
                        token, _, seq = record.value.decode().partition(":")
                        if token == self.token:
                            found.add(int(seq))
            return found
        finally:
            consumer.close()
