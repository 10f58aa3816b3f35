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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

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
    record_bytes: int = 100

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
# 1,000,000 pairs: 2,000 groups each reading 5 of 200 topics x 100 partitions (500 of 20,000
# partitions, ~6,700 a broker at replication factor 1); one-byte records, the brokers hold files
# and indexes, not data.
HUGE = Shape(groups=2_000, topics=200, partitions=100, topics_per_group=5, record_bytes=1)
SHAPES = {"small": SMALL, "large": LARGE, "huge": HUGE}


def shape_named(argv: list[str]) -> tuple[str, Shape]:
    """The shape named among the command's arguments (small by default)."""
    name = next((a for a in argv if a in SHAPES), "small")
    return name, SHAPES[name]


@contextmanager
def sandbox(name: str, *options: str) -> Iterator[SandboxInfo]:
    """A fresh sandbox; ``options`` go to ``sandbox up`` (e.g. ``--heap-mb``)."""
    os.environ["KAFKA_CHATOPS_SANDBOX_HOME"] = tempfile.mkdtemp(prefix=f"kco-{name}-")
    proc = subprocess.run([sys.executable, "-m", "bot", "sandbox", "up", "--name", name, "--json", *options],
                          capture_output=True, text=True, check=True)
    info = SandboxInfo.from_up_json(json.loads(proc.stdout))
    try:
        yield info
    finally:
        subprocess.run([sys.executable, "-m", "bot", "sandbox", "down", "--name", name], check=False,
                       capture_output=True)


def populate(bootstrap: str, shape: Shape, stages: dict[str, float] | None = None) -> None:
    """Topics, records and every group's commits; ``stages`` gets each stage's seconds."""
    stages = {} if stages is None else stages
    started = time.perf_counter()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=120_000)
    topics = shape.topic_names()
    per_batch = max(1, CREATE_BATCH_PARTITIONS // shape.partitions)
    for start in range(0, len(topics), per_batch):
        admin.create_topics([NewTopic(t, shape.partitions, 1) for t in topics[start:start + per_batch]],
                            timeout_ms=120_000)
        log(f"created {min(start + per_batch, len(topics))}/{len(topics)} topics")
    time.sleep(5)  # leaders everywhere
    stages["create_topics_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=65536)
    value = b"x" * shape.record_bytes
    for t in topics:
        for p in range(shape.partitions):
            for _ in range(RECORDS_PER_PARTITION):
                producer.send(t, value, partition=p)
    producer.flush(timeout=600)
    producer.close()
    stages["produce_s"] = round(time.perf_counter() - started, 1)
    log(f"produced {RECORDS_PER_PARTITION} records to each of {shape.topics * shape.partitions} partitions")
    started = time.perf_counter()
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
        if index % 200 == 199:
            log(f"committed for {index + 1}/{shape.groups} groups")
    admin.close()
    stages["commit_s"] = round(time.perf_counter() - started, 1)


def log(text: str) -> None:
    """Progress on stderr (the figures are the JSON on stdout)."""
    print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def run_shapes(run: Callable[[Shape], dict[str, Any]], shapes: dict[str, Shape], default: list[str]) -> dict[str, Any]:
    """A CPU-side bench's ``main``: ``run`` for each shape named on the command line (else
    ``default``), the machine's load before and after, printed as JSON."""
    wanted = [a for a in sys.argv[1:] if a in shapes] or default
    figures: dict[str, Any] = {"load_average_start": load_average()}
    for name in wanted:
        figures[name] = run(shapes[name])
    figures["load_average_end"] = load_average()
    print(json.dumps(figures, indent=1))
    return figures
