"""Log-end (and log-start) offsets: one ListOffsets request per partition leader for every wanted
partition at once, sent to all leaders concurrently, on aiokafka's client (issue #17 §1).

``read_uncommitted``: the latest offset is the high watermark, the log end Kafka Lag Exporter and
``kafka-consumer-groups.sh`` use (a consumer can commit past an open transaction's records only
once they are decided, so lag up to the high watermark is what it still has to read).

A partition that fails (its leader moved, its topic was deleted under a group, no leader right
now) is left out of the answer and the metadata is refreshed for the next poll; the other
partitions stand. A leader that does not answer within the request timeout costs its partitions
only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict

from aiokafka import TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.offset import OffsetRequest

from bot.kafka.client_security import PLAINTEXT_SECURITY, KafkaClientSecurity

log = logging.getLogger(__name__)

LATEST, EARLIEST = -1, -2
READ_UNCOMMITTED = 0


class EndOffsets:
    """ListOffsets for one cluster; ``close()`` it."""

    def __init__(self, bootstrap: str, *, client_id: str = "kafka-chatops-lag", request_timeout_ms: int = 5000,
                 security: KafkaClientSecurity = PLAINTEXT_SECURITY) -> None:
        self.bootstrap = bootstrap
        self.security = security
        self._client = AIOKafkaClient(bootstrap_servers=bootstrap, client_id=client_id,
                                      request_timeout_ms=request_timeout_ms, **security.aiokafka_config())
        self._started = False
        self._topics: set[str] = set()
        self.requests = 0  # ListOffsets requests sent (one per leader per call)

    async def client(self) -> AIOKafkaClient:
        """The cluster's aiokafka client, bootstrapped (also for ``bot.kafka.consumer_groups``)."""
        if not self._started:
            await self._client.bootstrap()
            self._started = True
        return self._client

    async def _ready(self, topics: set[str]) -> None:
        await self.client()
        if not topics <= self._topics:
            self._topics |= topics
            await self._client.set_topics(sorted(self._topics))

    async def offsets(self, partitions: list[tuple[str, int]], which: int = LATEST) -> dict[tuple[str, int], int]:
        """``which``: ``LATEST`` (the high watermark) or ``EARLIEST`` (the log start)."""
        if not partitions:
            return {}
        await self._ready({topic for topic, _ in partitions})
        cluster = self._client.cluster
        by_leader: dict[int, dict[str, list[tuple[int, int]]]] = defaultdict(lambda: defaultdict(list))
        leaderless = 0
        for topic, partition in partitions:
            leader = cluster.leader_for_partition(TopicPartition(topic, partition))
            if leader is None or leader < 0:
                leaderless += 1
                continue
            by_leader[leader][topic].append((partition, which))
        answers = await asyncio.gather(*(self._ask(leader, topics) for leader, topics in by_leader.items()))
        found: dict[tuple[str, int], int] = {}
        stale = leaderless > 0
        for offsets, failed in answers:
            found.update(offsets)
            stale = stale or failed
        if stale:  # the next poll asks the new leaders
            self._client.force_metadata_update()
        return found

    async def _ask(
        self, leader: int, topics: dict[str, list[tuple[int, int]]],
    ) -> tuple[dict[tuple[str, int], int], bool]:
        request = OffsetRequest(-1, READ_UNCOMMITTED, list(topics.items()))
        self.requests += 1
        try:
            response = await self._client.send(leader, request)
        except Exception as exc:  # this leader's partitions are unknown this poll
            log.info("ListOffsets to broker %s of %s failed: %s: %s", leader, self.bootstrap, type(exc).__name__, exc)
            return {}, True
        found: dict[tuple[str, int], int] = {}
        failed = False
        for topic, parts in response.topics:
            for partition, error_code, *rest in parts:
                if error_code != 0 or not rest:
                    failed = True
                    continue
                offset = rest[1] if response.API_VERSION >= 1 else (rest[0][0] if rest[0] else -1)
                if offset >= 0:
                    found[(topic, partition)] = offset
        return found, failed

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._client.close()
