"""Committed offsets by streaming ``__consumer_offsets`` (Burrow's design; issue #17 §1): per
cluster, every partition of the topic read from the beginning, then followed
(``bot.kafka.offsets_fetch``: Fetch requests on aiokafka's client, one loop per partition leader).
Every commit, deletion and expiry the group coordinators make is a record there, so the bot knows
every group's committed offsets without asking any coordinator (``bot.kafka.offsets_state`` holds
them, and says what they cost in memory).

- The topic is read with ``read_committed``: a transactional commit (exactly-once producers commit
  offsets inside their transaction) counts once its transaction commits, as OffsetFetch shows it.
- ``caught_up`` turns true once the stream has reached, on every partition of the topic, the end
  it had when the stream started: before that the state is a replay in progress (minutes on a busy
  cluster, docs/kafka-ops.md §1.2) and the lag reader keeps using the admin API. The replay fills
  a new state; the one readers see is replaced only then.
- Any failure (the bot may not read the internal topic: an ACL, a managed Kafka; the cluster is
  down) ends the stream: ``failure`` says why (a warning), the lag reader falls back to the admin
  API, and the stream starts again from the beginning after ``retry_s``. A topic not there (a fresh
  cluster has none until its first consumer group, or an ACL hides it) is logged at info and
  looked for again every 30 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiokafka.client import AIOKafkaClient

from bot.kafka.client_security import PLAINTEXT_SECURITY, KafkaClientSecurity
from bot.kafka.offsets_fetch import OFFSETS_TOPIC, OffsetsTopicFollower
from bot.kafka.offsets_state import OffsetsState

__all__ = ["OFFSETS_TOPIC", "OffsetsState", "OffsetsStream"]

NOT_THERE_RETRY_S = 30.0
SILENT_S = 30.0  # a Fetch answers every max_wait (0.5 s) even with nothing new


class TopicNotThere(LookupError):
    """The cluster's metadata has no ``__consumer_offsets``."""

log = logging.getLogger(__name__)



class OffsetsStream:
    """One cluster's stream; ``start()`` it, read ``state`` once ``caught_up``, ``stop()`` it."""

    def __init__(self, bootstrap: str, *, client_id: str = "kafka-chatops-offsets", retry_s: float = 300.0,
                 security: KafkaClientSecurity = PLAINTEXT_SECURITY) -> None:
        self.bootstrap = bootstrap
        self.security = security
        self._client_id = client_id
        self._retry_s = retry_s
        self._config = security.aiokafka_config()
        self.state = OffsetsState()
        self._caught_up = False
        self._follower: OffsetsTopicFollower | None = None
        self.failure: str | None = None
        self.started_at: float | None = None
        self.caught_up_after_s: float | None = None  # how long the replay took
        self._task: asyncio.Task[None] | None = None

    @property
    def caught_up(self) -> bool:
        """Replayed, and every partition answered within ``SILENT_S``: only then do readers use the state."""
        return self._caught_up and self.silence() is None

    def silence(self) -> str | None:
        """Why a caught-up stream is not to be read now: partitions no Fetch answered for ``SILENT_S``."""
        follower = self._follower
        silent = follower.silent(SILENT_S) if follower is not None and self._caught_up else []
        if not silent:
            return None
        return (f"no Fetch answer for {SILENT_S:.0f} s on {len(silent)} partition(s) of {OFFSETS_TOPIC} "
                f"(first: {silent[0]}); their groups' commits may be stale")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"offsets-stream {self.bootstrap}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._caught_up = False

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except TopicNotThere as exc:
                # A fresh cluster creates the topic on its first group's first request: not a fault,
                # and worth a look again soon (one metadata request).
                self.failure, self._caught_up = str(exc), False
                log.info("%s: committed offsets come from the admin API; looking again in %.0f s",
                         exc, min(self._retry_s, NOT_THERE_RETRY_S))
                await asyncio.sleep(min(self._retry_s, NOT_THERE_RETRY_S))
                continue
            except Exception as exc:
                self.failure = f"{type(exc).__name__}: {exc}"[:300]
                self._caught_up = False
                log.warning("streaming %s from %s failed (%s): committed offsets come from the admin API; "
                            "trying again in %.0f s", OFFSETS_TOPIC, self.bootstrap, self.failure, self._retry_s)
            await asyncio.sleep(self._retry_s)

    async def _follow(self) -> None:
        client = AIOKafkaClient(bootstrap_servers=self.bootstrap, client_id=self._client_id,
                                request_timeout_ms=15_000, **self._config)
        try:
            await client.bootstrap()
            # A metadata request of every topic: a consumer's own metadata hides internal topics.
            partitions = (await client.fetch_all_metadata()).partitions_for_topic(OFFSETS_TOPIC)
            if not partitions:
                raise TopicNotThere(f"no {OFFSETS_TOPIC} topic visible to the bot on {self.bootstrap} "
                                    "(not created yet, or no Describe ACL)")
            state, started = OffsetsState(), time.monotonic()
            self.started_at, self._caught_up = started, False

            def progress() -> None:
                if not self._caught_up and follower.caught_up:
                    self.state, self._caught_up, self.failure = state, True, None
                    self.caught_up_after_s = time.monotonic() - started
                    log.info("%s of %s replayed in %.1f s: %d records, %d group-partitions", OFFSETS_TOPIC,
                             self.bootstrap, self.caught_up_after_s, state.records, state.pairs())

            follower = self._follower = OffsetsTopicFollower(client, state, set(partitions), on_progress=progress)
            await follower.run()
        finally:
            with contextlib.suppress(Exception):
                await client.close()
