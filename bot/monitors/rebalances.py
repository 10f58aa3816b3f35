"""The poll behind the rebalance cards: every ``interval_s``, for each managed cluster, the replica
holding that cluster's rebalance lease (``MonitorLease``, its own name: it runs whether or not the
alert monitors do) lists the cluster's KafkaRebalances and syncs their cards
(``handlers.rebalance_cards.RebalanceCards.sync``). A poll, not a watch: a card follows a state
that lasts minutes, a list per cluster every few seconds costs the API server little, and a poll
needs no resume after 410 Gone. The others skip and take over within the lease's TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from bot.store.alert_state import MonitorLease
from bot.store.rebalance_cards import lease_name
from handlers.rebalance_cards import RebalanceCards

log = logging.getLogger(__name__)

REBALANCE_POLL_S = 10.0
LEASE_POLLS = 3
STOP_WITHIN_S = 10.0


class RebalanceMonitor:
    def __init__(self, cards: RebalanceCards, lease: MonitorLease, *, owner: str,
                 interval_s: float = REBALANCE_POLL_S, on_stop: Callable[[], None] | None = None) -> None:
        self.cards = cards
        self._lease = lease
        self.owner = owner
        self._interval = interval_s
        self._task: asyncio.Task[None] | None = None
        self.leading: dict[str, bool] = {}
        self._failing: dict[str, str] = {}  # cluster -> the last error logged, so a lasting one logs once
        self._on_stop = on_stop  # closes the adapter's threads
        self._stopping = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._forever(), name="rebalance-cards")

    async def stop(self) -> None:
        self._stopping = True
        task = self._task
        # Cancel until done, bounded: on 3.11 a timeout inside a Redis call can swallow a cancel
        # (as ``bot.worker.Worker.stop`` says), and the poll would go on holding the shutdown.
        deadline = asyncio.get_running_loop().time() + STOP_WITHIN_S
        while task is not None and not task.done() and asyncio.get_running_loop().time() < deadline:
            task.cancel()
            await asyncio.wait([task], timeout=0.5)
        for name, leading in self.leading.items():
            if leading:  # hand over at once instead of after the TTL
                with contextlib.suppress(Exception):
                    await self._lease.release(lease_name(name), self.owner)
        if self._on_stop is not None:
            self._on_stop()

    async def _forever(self) -> None:
        while not self._stopping:
            await self.poll_once()
            await asyncio.sleep(self._interval)

    async def poll_once(self) -> None:
        for name, cluster in self.cards.clusters.items():
            try:
                held = await self._lease.hold(lease_name(name), self.owner, LEASE_POLLS * self._interval)
            except Exception as exc:  # no Redis, no coordination: do not post blind
                log.warning("rebalance lease of %s unavailable (%s); skipping this poll", name, exc)
                held = False
            self.leading[name] = held
            if not held:
                continue
            try:
                await self.cards.sync(cluster)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a cluster whose API refuses (no RBAC, no CRD) does not stop the others
                text = f"{type(exc).__name__}: {exc}"
                if self._failing.get(name) != text:
                    log.warning("rebalance cards of %s: %s", name, text)
                self._failing[name] = text
            else:
                self._failing.pop(name, None)
