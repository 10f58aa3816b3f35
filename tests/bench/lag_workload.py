"""The lag benchmarks' workload: a fresh sandbox of its own, topics created in batches (Kafka 4.3
refuses one CreateTopics request with tens of thousands of partitions), a few records per
partition, and every group's offsets committed (half the groups caught up, half behind), the
shape of issue #17's table: ``groups`` groups spread over ``topics`` topics of ``partitions``
partitions each, every group reading ``topics_per_group`` whole topics.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kafka import KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata

from tests.fixtures.sandbox import SandboxInfo

RECORDS_PER_PARTITION = 10
CREATE_BATCH_PARTITIONS = 2_000


@dataclass(frozen=True)
class Shape:
    groups: int
    topics: int
    partitions: int  # per topic
    topics_per_group: int = 1

    @property
    def pairs(self) -> int:
        return self.groups * self.topics_per_group * self.partitions

    def topic_names(self) -> list[str]:
        return [f"bench-{i:03d}" for i in range(self.topics)]

    def group_topics(self) -> dict[str, list[str]]:
        names = self.topic_names()
        return {f"bench-group-{g:04d}": [names[(g + k) % self.topics] for k in range(self.topics_per_group)]
                for g in range(self.groups)}


SMALL = Shape(groups=200, topics=20, partitions=100)  # 20,000 pairs
LARGE = Shape(groups=500, topics=100, partitions=100, topics_per_group=2)  # 100,000 pairs


@contextmanager
def sandbox(name: str) -> Iterator[SandboxInfo]:
    os.environ["KAFKA_CHATOPS_SANDBOX_HOME"] = tempfile.mkdtemp(prefix=f"kco-{name}-")
    proc = subprocess.run([sys.executable, "-m", "bot", "sandbox", "up", "--name", name, "--json"],
                          capture_output=True, text=True, check=True)
    info = SandboxInfo.from_up_json(json.loads(proc.stdout))
    try:
        yield info
    finally:
        subprocess.run([sys.executable, "-m", "bot", "sandbox", "down", "--name", name], check=False,
                       capture_output=True)


def populate(bootstrap: str, shape: Shape) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=120_000)
    topics = shape.topic_names()
    per_batch = max(1, CREATE_BATCH_PARTITIONS // shape.partitions)
    for start in range(0, len(topics), per_batch):
        admin.create_topics([NewTopic(t, shape.partitions, 1) for t in topics[start:start + per_batch]],
                            timeout_ms=120_000)
    time.sleep(5)  # leaders everywhere
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=65536)
    for t in topics:
        for p in range(shape.partitions):
            for _ in range(RECORDS_PER_PARTITION):
                producer.send(t, b"x" * 100, partition=p)
    producer.flush(timeout=300)
    producer.close()
    for index, (group, reads) in enumerate(shape.group_topics().items()):
        offset = RECORDS_PER_PARTITION if index % 2 == 0 else 3  # half caught up, half behind
        offsets = {TopicPartition(t, p): OffsetAndMetadata(offset, "", -1)
                   for t in reads for p in range(shape.partitions)}
        for _ in range(40):
            try:
                admin.alter_group_offsets(group, offsets)
                break
            except Exception:  # the coordinator of a fresh __consumer_offsets is still coming up
                time.sleep(0.5)
    admin.close()


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])
