"""The ``MirrorCanary`` port in memory: topics per cluster, committed offsets, and a MirrorMaker 2
stand-in for the fast tests (``mirrored``: what the round trip reports; a commit on the source
becomes a checkpoint on the target, translated 1:1, when ``checkpointing``). The real adapter
(``bot.kafka.mirror_canary``) is proven against real brokers and real MirrorMaker 2 by
tests/engine/test_mirror_e2e.py."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from handlers.mirror_ports import CanaryFigures, Checkpoint
from handlers.ports import ClusterRef


class FakeMirrorCanary:
    def __init__(self) -> None:
        self.topics: dict[str, dict[str, int]] = {}  # cluster -> topic -> end offset (one partition)
        self.commits: list[tuple[str, str, dict[tuple[str, int], int]]] = []  # (cluster, group, offsets)
        self.rounds: list[tuple[str, str, str]] = []  # (source topic, target topic, marker)
        self.figures: CanaryFigures | None = None  # None: every record arrives, 40-90 ms
        self.checkpointing = True
        self.times: dict[tuple[str, str, int, int], datetime] = {}  # (cluster, topic, partition, offset) -> time
        self.alias_target: dict[str, str] = {}  # source alias -> target cluster its checkpoints land on
        self._checkpoints: dict[tuple[str, str], list[Checkpoint]] = {}  # (target, alias) -> checkpoints

    async def create_topic(self, cluster: ClusterRef, bootstrap_servers: str, topic: str, *,
                           partitions: int = 1) -> bool:
        topics = self.topics.setdefault(cluster.name, {})
        if topic in topics:
            return False
        topics[topic] = 0
        return True

    async def round_trip(
        self, source: ClusterRef, source_bootstrap: str, source_topic: str,
        target: ClusterRef, target_bootstrap: str, target_topic: str, *, marker: str, count: int, timeout_s: float,
    ) -> CanaryFigures:
        self.rounds.append((source_topic, target_topic, marker))
        self.topics.setdefault(source.name, {})[source_topic] = self.topics.get(source.name, {}).get(source_topic,
                                                                                                     0) + count
        self.alias_target[source.name] = target.name
        return self.figures or CanaryFigures(sent=count, received=count, p50_ms=40.0, p99_ms=90.0, max_ms=90.0,
                                             first_ms=120.0)

    async def end_offsets(self, cluster: ClusterRef, bootstrap_servers: str, topic: str) -> dict[int, int]:
        topics = self.topics.get(cluster.name, {})
        return {0: topics[topic]} if topic in topics else {}

    async def record_time(self, cluster: ClusterRef, bootstrap_servers: str, topic: str, partition: int,
                          offset: int) -> datetime | None:
        return self.times.get((cluster.name, topic, partition, offset))

    async def commit_offsets(self, cluster: ClusterRef, bootstrap_servers: str, group: str,
                             offsets: Mapping[tuple[str, int], int]) -> None:
        self.commits.append((cluster.name, group, dict(offsets)))
        target = self.alias_target.get(cluster.name)
        if self.checkpointing and target is not None:
            found = self._checkpoints.setdefault((target, cluster.name), [])
            found += [Checkpoint(group=group, topic=f"{cluster.name}.{t}", partition=p, upstream=o, downstream=o)
                      for (t, p), o in offsets.items()]

    async def checkpoints(self, cluster: ClusterRef, bootstrap_servers: str, source_alias: str,
                          group: str) -> list[Checkpoint]:
        return [c for c in self._checkpoints.get((cluster.name, source_alias), []) if c.group == group]
