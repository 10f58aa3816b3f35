"""The engine worker: the wiring that drives every run whose lease this process holds.

One task per run, under a lease (``RunLease``) so only one replica drives it; the task asks
``handlers.runs.stepper.RunStepper`` to advance the run one decision at a time, and in between
waits for the run's event (pub/sub, any replica) or the time the stepper names. The rules (what to
do next, the done-check before acting, the fencing token, retries and pauses) are the stepper's;
this module holds only Redis's errors, the wake-ups, the tasks and the quiet moments that let
in-flight requests (Slack acks) go first. A Redis outage holds the loop (nothing is applied
without a write first) and it carries on when Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from bot import store
from bot.foreground import Foreground
from bot.store.run_events import RunEvent
from handlers.clusters import ManagedCluster
from handlers.mirror_ports import MirrorCanary, MirrorMakers
from handlers.ports import (
    Clock,
    ClusterGateway,
    ClusterLocks,
    Ids,
    KafkaAdmin,
    RunLease,
    RunRepository,
    StoreUnavailable,
)
from handlers.rebalances import KafkaRebalances
from handlers.runs.stepper import ADVISORY_RECHECK_S, RunStepper

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self, *, runs: RunRepository, locks: ClusterLocks, leases: RunLease,
        clusters: Mapping[str, ManagedCluster], gateway: ClusterGateway, admin: KafkaAdmin,
        clock: Clock, ids: Ids, owner: str, lease_ttl_s: float = 10.0, poll_interval_s: float = 0.5,
        scan_interval_s: float = 1.0, foreground: Foreground | None = None,
        advisory_recheck_s: float = ADVISORY_RECHECK_S, rebalances: KafkaRebalances | None = None,
        mirror_makers: MirrorMakers | None = None, canary: MirrorCanary | None = None,
    ) -> None:
        self._runs = runs
        self._leases = leases
        self.owner = owner
        self._lease_ttl = lease_ttl_s
        self._poll = poll_interval_s
        self._scan_interval = scan_interval_s
        self._driving: dict[str, asyncio.Task[None]] = {}
        self._wakeups: dict[str, asyncio.Event] = {}
        self._scanner: asyncio.Task[None] | None = None
        self._pickups: set[asyncio.Task[None]] = set()
        self._stepper = RunStepper(
            runs=runs, locks=locks, clusters=clusters, gateway=gateway, admin=admin, clock=clock, ids=ids,
            owner=owner, poll_interval_s=poll_interval_s, advisory_recheck_s=advisory_recheck_s,
            monotonic=lambda: asyncio.get_running_loop().time(), rebalances=rebalances,
            mirror_makers=mirror_makers, canary=canary)
        # Each look at a run first lets in-flight requests (Slack acks) finish: bot.foreground.
        self._foreground = foreground or Foreground()

    @property
    def driving(self) -> set[str]:
        return set(self._driving)

    async def start(self) -> None:
        self._scanner = asyncio.create_task(self._scan_forever(), name="worker-scan")

    async def stop(self) -> None:
        """Stop driving and hand the leases back, so another replica takes over at once."""
        tasks = [t for t in (self._scanner, *self._pickups, *self._driving.values()) if t is not None]
        for task in tasks:
            task.cancel()
        # Cancel until done: on 3.11 asyncio.wait_for (in _wait) can swallow a cancel that lands as
        # a run event sets the wakeup, and that drive loop would go on. Bounded, so a task stuck in a
        # client call (Kafka calls run in a thread) cannot hold the shutdown: its lease lapses.
        deadline = asyncio.get_running_loop().time() + 10
        while (pending := [t for t in tasks if not t.done()]) and asyncio.get_running_loop().time() < deadline:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=0.5)
        for run_id in list(self._driving):
            with contextlib.suppress(store.StoreError):
                await self._leases.release(run_id, self.owner)
        self._driving.clear()

    async def on_run_event(self, event: RunEvent) -> None:
        """A run changed somewhere: wake its driver, or pick up a new run without waiting for a scan.
        Returns at once: the bus hands events to every listener in turn."""
        if event.run_id in self._wakeups:
            self._wakeups[event.run_id].set()
        elif not event.state.terminal:
            task = asyncio.create_task(self._pick_up(event.run_id), name=f"pick-up-{event.run_id}")
            self._pickups.add(task)
            task.add_done_callback(self._pickups.discard)

    async def _pick_up(self, run_id: str) -> None:
        await self._foreground.quiet_moment()
        await self._try_drive(run_id)

    async def scan(self) -> None:
        """Take every unfinished run whose lease has expired (a crashed or stopped replica's)."""
        await self._foreground.quiet_moment()
        for run_id in await self._runs.active():
            await self._try_drive(run_id)

    async def _scan_forever(self) -> None:
        while True:
            try:
                await self.scan()
            except StoreUnavailable as exc:
                log.warning("worker scan held: %s", exc)
            except store.StoreError as exc:
                log.warning("worker scan failed: %s", exc)
            await asyncio.sleep(self._scan_interval)

    async def _try_drive(self, run_id: str) -> None:
        if run_id in self._driving:
            return
        try:
            if not await self._leases.try_acquire(run_id, self.owner, self._lease_ttl):
                return
        except store.StoreError:
            return
        if run_id in self._driving:  # another coroutine won while we awaited the lease
            return
        self._wakeups[run_id] = asyncio.Event()
        self._driving[run_id] = asyncio.create_task(self._drive(run_id), name=f"drive-{run_id}")

    async def _drive(self, run_id: str) -> None:
        renewer = asyncio.create_task(self._renew_lease(run_id), name=f"lease-{run_id}")
        try:
            await self._drive_until_done(run_id, renewer)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("driving run %s failed; another scan will pick it up", run_id)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            self._driving.pop(run_id, None)
            self._wakeups.pop(run_id, None)
            self._stepper.forget(run_id)
            with contextlib.suppress(store.StoreError):
                await self._leases.release(run_id, self.owner)

    async def _renew_lease(self, run_id: str) -> None:
        while True:
            await asyncio.sleep(self._lease_ttl / 3)
            try:
                still_ours = await self._leases.renew(run_id, self.owner, self._lease_ttl)
            except store.StoreError:
                continue  # Redis down: the loop holds too; if the lease lapses meanwhile, renew says so
            if not still_ours:
                log.warning("lost the lease on %s; stopping here so only one replica drives it", run_id)
                task = self._driving.get(run_id)
                if task is not None:
                    task.cancel()
                return

    async def _drive_until_done(self, run_id: str, renewer: asyncio.Task[None]) -> None:
        backoff = self._poll
        while not renewer.done():
            await self._foreground.quiet_moment()
            try:
                step = await self._stepper.step_once(run_id)
                backoff = self._poll
            except StoreUnavailable as exc:
                log.warning("run %s held: %s", run_id, exc)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if step.finished:
                return
            if step.wait_s is not None:
                await self._wait(run_id, seconds=step.wait_s)

    async def _wait(self, run_id: str, *, seconds: float) -> None:
        wakeup = self._wakeups.get(run_id)
        if wakeup is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wakeup.wait(), seconds)
        wakeup.clear()
