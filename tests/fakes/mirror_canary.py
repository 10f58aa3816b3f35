"""The ``MirrorCanary`` port in memory: topics per cluster, committed offsets, and a MirrorMaker 2
stand-in for the fast tests (``mirrored``: what the round trip reports; a commit on the source
becomes a checkpoint on the target, translated 1:1, when ``checkpointing``; the monitor's probe
record arrives after ``probe_latency_ms`` while ``copying``, else it waits on the source and
arrives with the first probe after ``copying`` is set again). ``MemoryCanaryStates`` is the
``CanaryStates`` port over a dict. The real adapter
(``bot.kafka.mirror_canary``) is proven against real brokers and real MirrorMaker 2 by
tests/engine/test_mirror_e2e.py."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from handlers.mirror_ports import CanaryFigures, CanaryProbe, Checkpoint
from handlers.ports import ClusterRef
from runbooks.alerting.mirror import CanaryArrival, CanaryState


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
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # the probes' wall clock
        self.copying = True
        self.probe_latency_ms = 80.0
        self.probe_error: Exception | None = None
        self.probes: list[tuple[str, str, str, dict[int, int]]] = []  # (source topic, target topic, marker, from)
        self._waiting: list[float] = []  # produce times (ms) of probe records not copied yet

    async def probe(
        self, source: ClusterRef, source_bootstrap: str, source_topic: str,
        target: ClusterRef, target_bootstrap: str, target_topic: str, *, marker: str, positions: Mapping[int, int],
        wait_s: float,
    ) -> CanaryProbe:
        if self.probe_error is not None:
            raise self.probe_error
        self.probes.append((source_topic, target_topic, marker, dict(positions)))
        now_ms = self.clock().timestamp() * 1000
        self.topics.setdefault(source.name, {})[source_topic] = self.topics.get(source.name, {}).get(source_topic,
                                                                                                     0) + 1
        self._waiting.append(now_ms - self.probe_latency_ms)
        if not self.copying:
            return CanaryProbe(positions=dict(positions))
        arrived, self._waiting = self._waiting, []
        copied = self.topics.setdefault(target.name, {})
        copied[target_topic] = copied.get(target_topic, 0) + len(arrived)
        return CanaryProbe(arrivals=tuple(CanaryArrival(sent_ms=sent, seen_ms=now_ms) for sent in arrived),
                           positions={0: copied[target_topic]})

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


class MemoryCanaryStates:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], str] = {}

    async def load(self, cluster: str, mirror: str) -> CanaryState | None:
        doc = self.docs.get((cluster, mirror))
        return None if doc is None else CanaryState.model_validate_json(doc)

    async def save(self, state: CanaryState) -> None:
        self.docs[(state.cluster, state.mirror)] = state.model_dump_json()
