"""A mirror's replication lag, read once for both its users: the lag alert (``MirrorMonitor``) and
``/kafka mirror status``. The figures are ``runbooks.alerting.mirror``'s (``mirror_lag``,
``with_ages``); here are only the reads: the source's mirrored partitions and end offsets, the end
offsets of their remote partitions that exist on the target (ListOffsets of a topic that does not
exist waits out the client's deadline), and the times of the oldest records not copied yet.

The two users read through different ports (the monitor through its own lag reader, the command
through the canary's clients), so the reads are the ``LagReads`` protocol with one adapter each.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from handlers.mirror_ports import MirrorCanary
from handlers.ports import ClusterRef, KafkaAdmin, LagReader
from runbooks.alerting.mirror import (
    DEFAULT_EXCLUDE,
    MirrorLag,
    merge_lags,
    mirror_lag,
    mirrored_topics,
    remote_topic,
    uncopied_positions,
    with_ages,
)

IDENTITY_POLICY = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"


class MirrorSource(BaseModel):
    """One ``spec.mirrors[]`` entry, as far as lag is concerned."""

    model_config = ConfigDict(frozen=True)

    alias: str
    bootstrap_servers: str
    topics_pattern: str
    topics_exclude: tuple[str, ...] | None = None
    identity: bool = False
    separator: str = "."


def mirror_sources(spec: Mapping[str, Any]) -> list[MirrorSource]:
    """The mirrors of a spec (v1 and v1beta2 field names); entries without what lag needs are skipped."""
    sources = []
    for entry in spec.get("mirrors") or []:
        if not isinstance(entry, dict):
            continue
        source = entry.get("source") or {}
        alias = source.get("alias") or entry.get("sourceCluster")
        bootstrap = source.get("bootstrapServers")
        pattern = entry.get("topicsPattern")
        if not (isinstance(alias, str) and isinstance(bootstrap, str) and isinstance(pattern, str)):
            continue
        config = (entry.get("sourceConnector") or {}).get("config") or {}
        exclude = entry.get("topicsExcludePattern") or config.get("topics.exclude")
        sources.append(MirrorSource(
            alias=alias, bootstrap_servers=bootstrap, topics_pattern=pattern,
            topics_exclude=tuple(str(exclude).split(",")) if exclude else None,
            identity=str(config.get("replication.policy.class", "")) == IDENTITY_POLICY,
            separator=str(config.get("replication.policy.separator", ".")),
        ))
    return sources


class LagReads(Protocol):
    async def partitions(self, cluster: ClusterRef, bootstrap: str) -> list[tuple[str, int]]: ...

    async def end_offsets(self, cluster: ClusterRef, bootstrap: str,
                          partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]: ...

    async def record_times(self, cluster: ClusterRef, bootstrap: str,
                           positions: Sequence[tuple[str, int, int]]) -> dict[tuple[str, int, int], int]:
        """The time (ms) of the record at each (topic, partition, offset); a position without one is left out."""
        ...


class ReaderLagReads:
    """The monitor's reads: the admin's metadata and the lag reader's ListOffsets and record times."""

    def __init__(self, admin: KafkaAdmin, reader: LagReader) -> None:
        self._admin = admin
        self._reader = reader

    async def partitions(self, cluster: ClusterRef, bootstrap: str) -> list[tuple[str, int]]:
        return sorted((p.topic, p.partition) for p in (await self._admin.snapshot(cluster, bootstrap)).partitions)

    async def end_offsets(self, cluster: ClusterRef, bootstrap: str,
                          partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        offsets = await self._reader.log_offsets(cluster, bootstrap, partitions)
        return {tp: latest for tp, (_, latest) in offsets.items()}

    async def record_times(self, cluster: ClusterRef, bootstrap: str,
                           positions: Sequence[tuple[str, int, int]]) -> dict[tuple[str, int, int], int]:
        return await self._reader.record_timestamps(cluster, bootstrap, positions)


class CanaryLagReads:
    """The command's reads: the admin's replica layout, and the canary clients' end offsets and record times."""

    def __init__(self, admin: KafkaAdmin, canary: MirrorCanary) -> None:
        self._admin = admin
        self._canary = canary

    async def partitions(self, cluster: ClusterRef, bootstrap: str) -> list[tuple[str, int]]:
        layout = await self._admin.replica_layout(cluster, bootstrap)
        return sorted((p.topic, p.partition) for p in layout.partitions)

    async def end_offsets(self, cluster: ClusterRef, bootstrap: str,
                          partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        by_topic: dict[str, set[int]] = defaultdict(set)
        for topic, partition in partitions:
            by_topic[topic].add(partition)
        found: dict[tuple[str, int], int] = {}
        for topic, wanted in sorted(by_topic.items()):
            ends = await self._canary.end_offsets(cluster, bootstrap, topic)
            found.update({(topic, p): end for p, end in ends.items() if p in wanted})
        return found

    async def record_times(self, cluster: ClusterRef, bootstrap: str,
                           positions: Sequence[tuple[str, int, int]]) -> dict[tuple[str, int, int], int]:
        found = {}
        for topic, partition, offset in positions:
            at = await self._canary.record_time(cluster, bootstrap, topic, partition, offset)
            if at is not None:
                found[(topic, partition, offset)] = int(at.timestamp() * 1000)
        return found


Locate = Callable[[MirrorSource], Awaitable[tuple[ClusterRef, str] | None]]
Warn = Callable[[str, Exception], None]


async def measure_lag(
    reads: LagReads, mirror: str, sources: Sequence[MirrorSource], *, target: ClusterRef, target_bootstrap: str,
    locate: Locate, now: Callable[[], datetime], on_unread_times: Warn | None = None,
) -> MirrorLag:
    """The lag of every source of ``mirror`` on ``target``: its mirrored partitions (``topicsPattern``
    minus its excludes) against their remote partitions. A remote partition not created yet counts all
    the source's records; ``locate`` gives a source's cluster and address (None: not readable, skipped).
    Record times that cannot be read leave the records behind without their age."""
    existing = set(await reads.partitions(target, target_bootstrap))
    lags: list[MirrorLag] = []
    for source in sources:
        located = await locate(source)
        if located is None:
            continue
        ref, address = located
        partitions = await reads.partitions(ref, address)
        topics = set(mirrored_topics(sorted({t for t, _ in partitions}), source.topics_pattern,
                                     source.topics_exclude or DEFAULT_EXCLUDE))
        source_ends = await reads.end_offsets(ref, address, [p for p in partitions if p[0] in topics])
        remote = [(remote_topic(t, source.alias, identity=source.identity, separator=source.separator), p)
                  for t, p in sorted(source_ends)]
        remote = [tp for tp in remote if tp in existing]
        target_ends = await reads.end_offsets(target, target_bootstrap, remote) if remote else {}
        lag = mirror_lag(mirror, source_ends, target_ends, source.alias, identity=source.identity,
                         separator=source.separator)
        stamps: dict[tuple[str, int, int], int] | None = {}
        positions = uncopied_positions(lag)
        if positions:
            try:
                stamps = await reads.record_times(ref, address, positions)
            except Exception as exc:
                if on_unread_times is not None:
                    on_unread_times(mirror, exc)
                stamps = None
        lags.append(with_ages(lag, stamps, now().timestamp() * 1000))
    return merge_lags(mirror, lags)
