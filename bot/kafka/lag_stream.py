"""``StreamingLagReader``: the ``LagReader`` port with committed offsets from a stream of
``__consumer_offsets`` and end offsets from one ListOffsets per leader (issue #17), the
kafka-python ``KafkaLagReader`` kept for what it does well and as the fallback.

How committed offsets are read, per cluster (``source(cluster)`` says which, ``/metrics`` and the
logs show it):

1. ``stream``: the cluster's ``OffsetsStream`` has replayed ``__consumer_offsets`` and follows it;
   a poll reads memory, no request at all.
2. ``admin``: OffsetFetch per coordinator, as before, while the stream replays (after a start or a
   take-over) and whenever it cannot run: the bot may not read the internal topic (an ACL, a
   managed Kafka that hides it), the topic does not exist yet, or the stream failed; the stream is
   tried again every ``retry_s``. ``stream=False`` (``KAFKA_CHATOPS_LAG_STREAM=0``) keeps the
   admin API only.

The stream of a cluster starts on its first lag poll, which only the replica holding the
cluster's monitor lease makes, and ``release(cluster)`` stops it when the lease goes, so one
replica streams a cluster. The group list (ListGroups + DescribeGroups: states and members) is
refreshed every ``groups_refresh_s``; a group the stream sees commit in between is added at once
(its state and members follow on the next refresh); groups the stream saw on the consumer protocol
(KIP-848) are described with ConsumerGroupDescribe (``bot.kafka.consumer_groups``), which
DescribeGroups cannot do (while the admin API is the source, their members are not known).
Log-start offsets (only ``/metrics`` shows them) are refreshed every ``earliest_refresh_s``;
log-end offsets are read on every poll.

The stream's consumer and the ListOffsets client are aiokafka's, with the cluster's TLS/SASL
settings (``bot.kafka.security``, through the admin reader's adapter); when those change (a new
fingerprint) both are replaced, as when the bootstrap address changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from bot.kafka import consumer_groups
from bot.kafka.client_security import KafkaClientSecurity
from bot.kafka.end_offsets import EARLIEST, LATEST, EndOffsets
from bot.kafka.lag import KafkaLagReader
from bot.kafka.offsets_stream import OffsetsState, OffsetsStream
from handlers.ports import ClusterRef, ConsumerGroup, GroupCommits

log = logging.getLogger(__name__)

Partition = tuple[str, int]


class CommitsCache:
    """The commits handed out last, per group with the stream's version of it: a group with no
    change since is handed back as the same object, which the lag evaluation then does not look
    into (``handlers.alerting.lag_pairs``)."""

    def __init__(self) -> None:
        self._state: OffsetsState | None = None
        self._kept: dict[str, tuple[int, GroupCommits]] = {}

    def answer(self, state: OffsetsState, groups: Sequence[str]) -> list[GroupCommits]:
        cached = self._kept if state is self._state else {}  # a new stream replayed: nothing old holds
        kept: dict[str, tuple[int, GroupCommits]] = {}
        answer: list[GroupCommits] = []
        for group in groups:
            version = state.changed.get(group, 0)
            hit = cached.get(group)
            if hit is None or hit[0] != version:
                # Built from our own ints: no validation needed (a million pairs would pay for it every second).
                commits = GroupCommits.model_construct(group=group, offsets=state.group_offsets(group), error=None)
                hit = (version, commits)
            kept[group] = hit
            answer.append(hit[1])
        self._state, self._kept = state, kept
        return answer


class StreamingLagReader:
    def __init__(
        self, admin_reader: KafkaLagReader, *, stream: bool = True, groups_refresh_s: float = 10.0,
        earliest_refresh_s: float = 15.0, retry_s: float = 300.0,
    ) -> None:
        self._admin = admin_reader
        self._stream_enabled = stream
        self._groups_refresh_s = groups_refresh_s
        self._earliest_refresh_s = earliest_refresh_s
        self._retry_s = retry_s
        self.streams: dict[str, OffsetsStream] = {}  # per cluster name
        self._ends: dict[str, EndOffsets] = {}
        self._groups: dict[str, tuple[float, list[ConsumerGroup]]] = {}
        self._earliest: dict[str, tuple[float, dict[Partition, int]]] = {}
        self._commits: dict[str, CommitsCache] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- which source --------------------------------------------------------------------------

    async def _security(self, cluster: ClusterRef) -> KafkaClientSecurity:
        return await self._admin.security.security(cluster)

    async def _stream(self, cluster: ClusterRef, bootstrap: str) -> OffsetsStream | None:
        if not self._stream_enabled:
            return None
        security = await self._security(cluster)
        stream = self.streams.get(cluster.name)
        if stream is None or stream.bootstrap != bootstrap or stream.security.fingerprint != security.fingerprint:
            if stream is not None:
                self._stop_later(stream)
            stream = self.streams[cluster.name] = OffsetsStream(bootstrap, retry_s=self._retry_s, security=security)
        stream.start()
        return stream

    def source(self, cluster_name: str) -> str:
        stream = self.streams.get(cluster_name)
        if stream is not None and stream.caught_up:
            return "stream"
        if stream is None:
            return "admin" if not self._stream_enabled else "admin (stream not started)"
        if stream.failure:
            return f"admin (stream failed: {stream.failure})"
        silence = stream.silence()
        return f"admin (stream silent: {silence})" if silence else "admin (stream replaying)"

    def streaming(self, cluster_name: str) -> bool:
        stream = self.streams.get(cluster_name)
        return stream is not None and stream.caught_up

    async def release(self, cluster_name: str) -> None:
        """This replica no longer monitors the cluster: stop its stream and close its clients."""
        stream = self.streams.pop(cluster_name, None)
        if stream is not None:
            await stream.stop()
        ends = self._ends.pop(cluster_name, None)
        if ends is not None:
            await ends.close()
        self._groups.pop(cluster_name, None)
        self._earliest.pop(cluster_name, None)
        self._commits.pop(cluster_name, None)

    def _closing(self, done: Coroutine[Any, Any, None]) -> None:
        """Close a client whose cluster moved to another bootstrap address, without waiting (the
        task is kept so it is not collected half way)."""
        task = asyncio.get_running_loop().create_task(done)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _stop_later(self, stream: OffsetsStream) -> None:
        self._closing(stream.stop())

    # -- the port ------------------------------------------------------------------------------

    async def consumer_groups(self, cluster: ClusterRef, bootstrap_servers: str) -> list[ConsumerGroup]:
        cached = self._groups.get(cluster.name)
        now = time.monotonic()
        stream = self.streams.get(cluster.name)
        if cached is None or now - cached[0] >= self._groups_refresh_s:
            described = await self._admin.consumer_groups(cluster, bootstrap_servers)
            if stream is not None and stream.caught_up:
                described = await self._kip848(cluster, bootstrap_servers, described, stream.state.consumer_protocol)
            cached = (now, described)
            self._groups[cluster.name] = cached
        groups = cached[1]
        if stream is None or not stream.caught_up:
            return groups
        known = {g.group for g in groups}
        state = stream.state
        new = [ConsumerGroup(group=g, state="", protocol_type=state.protocol_type(g))
               for g in sorted(state.offsets) if g not in known and state.protocol_type(g) in ("consumer", "")]
        return groups + new if new else groups

    async def _kip848(self, cluster: ClusterRef, bootstrap: str, groups: list[ConsumerGroup],
                      consumer_protocol: set[str]) -> list[ConsumerGroup]:
        """DescribeGroups knows only classic groups: the groups the stream saw on the consumer
        protocol get their state and members from ConsumerGroupDescribe instead."""
        wanted = [g.group for g in groups if g.group in consumer_protocol]
        if not wanted:
            return groups
        try:
            client = await (await self._ends_for(cluster, bootstrap)).client()
            found = await consumer_groups.describe(client, wanted)
        except Exception as exc:  # the classic answer stands (no members) until the next refresh
            log.info("ConsumerGroupDescribe on %s failed: %s: %s", cluster.name, type(exc).__name__, exc)
            return groups
        return [found.get(g.group, g) for g in groups]

    async def _ends_for(self, cluster: ClusterRef, bootstrap: str) -> EndOffsets:
        security = await self._security(cluster)
        ends = self._ends.get(cluster.name)
        if ends is None or ends.bootstrap != bootstrap or ends.security.fingerprint != security.fingerprint:
            if ends is not None:
                self._closing(ends.close())
            ends = self._ends[cluster.name] = EndOffsets(bootstrap, security=security)
        return ends

    async def committed_offsets(
        self, cluster: ClusterRef, bootstrap_servers: str, groups: Sequence[str],
    ) -> list[GroupCommits]:
        stream = await self._stream(cluster, bootstrap_servers)
        if stream is None or not stream.caught_up:
            return await self._admin.committed_offsets(cluster, bootstrap_servers, groups)
        return self._commits.setdefault(cluster.name, CommitsCache()).answer(stream.state, groups)

    async def log_offsets(
        self, cluster: ClusterRef, bootstrap_servers: str, partitions: Sequence[Partition],
    ) -> dict[Partition, tuple[int, int]]:
        ends = await self._ends_for(cluster, bootstrap_servers)
        wanted = list(partitions)
        try:
            latest = await ends.offsets(wanted, LATEST)
        except Exception:
            self._admin.security.failed(cluster)  # read its Secrets again before the next try
            raise
        now = time.monotonic()
        at, earliest = self._earliest.get(cluster.name, (0.0, {}))
        if now - at >= self._earliest_refresh_s:
            earliest = await ends.offsets(wanted, EARLIEST)
            self._earliest[cluster.name] = (now, earliest)
        else:
            missing = [tp for tp in wanted if tp not in earliest]
            if missing:
                earliest.update(await ends.offsets(missing, EARLIEST))
        return {tp: (earliest[tp], end) for tp, end in latest.items() if tp in earliest}

    async def record_timestamps(
        self, cluster: ClusterRef, bootstrap_servers: str, positions: Sequence[tuple[str, int, int]],
    ) -> dict[tuple[str, int, int], int]:
        return await self._admin.record_timestamps(cluster, bootstrap_servers, positions)

    async def close(self) -> None:
        for name in list(self.streams) + list(self._ends):
            await self.release(name)
        await self._admin.close()
