"""The monitors of every managed cluster on an APScheduler 3 ``AsyncIOScheduler``: a health poll,
a lag poll and a replication-throttle poll per cluster, plus the cluster's Kubernetes watches.

- One replica polls a cluster at a time: each run first takes or renews the cluster's monitor
  lease in Redis (``MonitorLease``); the others skip, and take over within the lease's TTL when
  the holder dies. The watches run on every replica (cheap, and a take-over starts warm), but only
  the holder evaluates what they see.
- A poll that overruns its interval is reported, not stacked: ``max_instances=1`` and ``coalesce``
  make APScheduler skip the run that would overlap, and the listener logs it and counts it
  (``kafka_chatops_poll_overruns_total``).
- Lag: where the lag reader streams a cluster's committed offsets (``bot.kafka.lag_stream``), the
  lag job runs every ``FAST_LAG_POLL_S`` (end offsets, lag and the lag rules each time, so an alert
  fires about a second after the data crosses its threshold, plus its ``for`` window); while it
  cannot (the stream replays or is refused), the job polls the admin API every ``lag_poll_s`` as
  before. Losing the lease stops the stream (``release``): one replica streams a cluster.
- A Kubernetes change is evaluated within ``KUBE_DEBOUNCE_S`` (a burst of pod updates during a
  restart makes one evaluation), and again on every health poll for the ``for`` windows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from kubernetes import client

from bot.monitors.kube_watch import ClusterWatches
from bot.store.alert_state import MonitorLease
from handlers.alerting.alert_ports import LagReports
from handlers.alerting.evaluator import AlertEvaluator
from handlers.alerting.lag_poll import LagPoller
from handlers.alerting.mirror_monitor import MirrorMonitor
from handlers.alerting.monitoring import ClusterMonitor, KubeState
from handlers.clusters import ManagedCluster
from handlers.mirror_ports import CanaryStates, MirrorCanary, MirrorMakers
from handlers.ports import ClusterGateway, ClusterRef, KafkaAdmin, LagReader, RunRepository

log = logging.getLogger(__name__)

KUBE_DEBOUNCE_S = 0.3
FAST_LAG_POLL_S = 1.0
LAG_BUSY_FACTOR = 2.0  # a streamed cluster's lag job waits at least this many times its last duration
LEASE_POLLS = 3  # the monitor lease lasts this many health intervals without renewal
WATCH_JOIN_S = 3.0  # a watch whose request waits for the server's headers cannot be interrupted


@runtime_checkable
class StreamingLag(Protocol):
    """A lag reader that can stream a cluster's committed offsets (``bot.kafka.lag_stream``)."""

    def streaming(self, cluster_name: str) -> bool: ...

    async def release(self, cluster_name: str) -> None: ...


class Monitors:
    def __init__(
        self, *, clusters: Mapping[str, ManagedCluster], admin: KafkaAdmin, gateway: ClusterGateway,
        lag_reader: LagReader, reports: LagReports, evaluator: AlertEvaluator, lease: MonitorLease, owner: str,
        watch_api: Callable[[ClusterRef], client.ApiClient] | None, watch_timeout_s: int = 60,
        runs: RunRepository | None = None, mirrors: MirrorMakers | None = None,
        mirror_reader: LagReader | None = None, canary: MirrorCanary | None = None,
        canary_states: CanaryStates | None = None,
    ) -> None:
        self._clusters = dict(clusters)
        # KafkaMirrorMaker2 resources, and the end offsets of both sides of a mirror (a reader of its
        # own: the lag reader keeps one end-offsets client per cluster, for that cluster's address).
        self._mirrors = mirrors
        self._mirror_reader = mirror_reader or lag_reader
        self._canary, self._canary_states = canary, canary_states  # the mirror canary alert (both, or it is off)
        self._runs = runs  # who owns a replication throttle; without it the throttle poll is off
        self._admin = admin
        self._gateway = gateway
        self._lag_reader = lag_reader
        self._reports = reports
        self._evaluator = evaluator
        self._lease = lease
        self.owner = owner
        self._watch_api = watch_api
        self._watch_timeout_s = watch_timeout_s
        self.scheduler: AsyncIOScheduler | None = None
        self.monitors: dict[str, ClusterMonitor] = {}
        self.mirror_monitors: dict[str, MirrorMonitor] = {}
        self.watches: dict[str, ClusterWatches] = {}
        self.leading: dict[str, bool] = {}
        self.durations: dict[tuple[str, str], float] = {}  # (cluster, job) -> seconds of the last run
        self.overruns: dict[tuple[str, str], int] = {}
        self._kube_pending: dict[str, asyncio.Task[None]] = {}
        self._apis: dict[int, client.ApiClient] = {}  # the distinct watch clients, closed by stop()
        self._polls: set[asyncio.Task[Any]] = set()  # the polls in flight, cancelled by stop()
        self._lag_polled_at: dict[str, float] = {}  # monotonic start of the last lag poll per cluster
        self._stopping = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.scheduler = AsyncIOScheduler(event_loop=loop, timezone=UTC)
        self.scheduler.add_listener(self._on_job_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED | EVENT_JOB_ERROR)
        now = datetime.now(UTC)
        for name, cluster in self._clusters.items():
            kube: Callable[[], KubeState] = KubeState
            if self._watch_api is not None:
                # Each cluster's watches use its own Kubernetes API (clusters sharing one share a client).
                api = self._watch_api(cluster.ref)
                self._apis.setdefault(id(api), api)
                strimzi_version = "v1"
                with contextlib.suppress(Exception):  # no discovery: v1, and the watch says so if wrong
                    strimzi_version = await self._gateway.strimzi_api_version(cluster.ref)  # type: ignore[attr-defined]
                watches = ClusterWatches(cluster.ref, api, loop=loop, timeout_s=self._watch_timeout_s,
                                         strimzi_version=strimzi_version,
                                         on_change=lambda name=name: self._kube_changed(name))  # type: ignore[misc]
                watches.start()
                self.watches[name] = watches
                kube = watches.state
            fast = isinstance(self._lag_reader, StreamingLag)
            # Read every second, the sample tables still keep one sample per lag_poll_s (60 of them).
            poller = LagPoller(self._lag_reader, _Clock(), sample_spacing_s=cluster.alerts.lag_poll_s if fast else 0.0,
                               timestamps_in_background=fast)
            self.monitors[name] = ClusterMonitor(
                cluster, admin=self._admin, gateway=self._gateway, poller=poller,
                reports=self._reports, evaluator=self._evaluator, kube=kube, now=lambda: datetime.now(UTC),
                runs=self._runs,
            )
            rules = cluster.alerts
            if self._mirrors is not None:
                self.mirror_monitors[name] = MirrorMonitor(
                    cluster, mirrors=self._mirrors, admin=self._admin, reader=self._mirror_reader,
                    evaluator=self._evaluator, bootstrap=self.monitors[name].bootstrap, now=lambda: datetime.now(UTC),
                    clusters=self._clusters, source_bootstrap=self._bootstrap_of, canary=self._canary,
                    canary_states=self._canary_states)
                self._add_job("mirrors", name, rules.mirror_poll_s, now)
            self._add_job("health", name, rules.health_poll_s, now)
            self._add_job("lag", name, min(rules.lag_poll_s, FAST_LAG_POLL_S) if fast else rules.lag_poll_s, now)
            if self._runs is not None:
                self._add_job("throttles", name, rules.throttle_poll_s, now)
        self.scheduler.start()

    def _add_job(self, job: str, cluster: str, interval_s: float, first: datetime) -> None:
        assert self.scheduler is not None
        targets: dict[str, Callable[[str], Coroutine[Any, Any, None]]] = {
            "health": self._health, "lag": self._lag, "throttles": self._throttles, "mirrors": self._mirror_poll}
        target = targets[job]
        self.scheduler.add_job(
            self._poll, "interval", seconds=interval_s, args=[target, cluster], id=f"{job}:{cluster}",
            name=f"{job} poll of {cluster}",
            max_instances=1, coalesce=True, misfire_grace_time=max(1, int(interval_s)), next_run_time=first,
        )

    async def stop(self) -> None:
        self._stopping = True
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        polls = list(self._polls)
        for task in polls:
            task.cancel()
        if polls:  # their Redis and Kafka calls end before the caller closes those clients
            await asyncio.wait(polls, timeout=5)
        for task in self._kube_pending.values():
            task.cancel()
        for monitor in self.monitors.values():
            monitor.stop()
        for watches in self.watches.values():
            watches.stop()
        if self.watches:  # their threads end before the interpreter does (bot.monitors.kube_watch)
            await asyncio.to_thread(self._join_watches, WATCH_JOIN_S)
        if isinstance(self._lag_reader, StreamingLag):
            for name in self._clusters:
                with contextlib.suppress(Exception):
                    await self._lag_reader.release(name)
        for name, leading in self.leading.items():
            if leading:  # hand over at once instead of after the TTL
                with contextlib.suppress(Exception):
                    await self._lease.release(name, self.owner)
        for api in self._apis.values():
            with contextlib.suppress(Exception):
                api.close()  # type: ignore[no-untyped-call]

    def _join_watches(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for watches in self.watches.values():
            watches.join(max(0.0, deadline - time.monotonic()))

    # -- jobs ------------------------------------------------------------------------------------

    async def _poll(self, poll: Callable[[str], Coroutine[Any, Any, None]], name: str) -> None:
        """One scheduled poll. A poll cancelled because the monitors stop (the console's input ends
        while its first polls still wait for Kubernetes) ends quietly: raised, APScheduler would log
        the cancellation as the job's failure, traceback and all."""
        task = asyncio.current_task()
        if task is not None:
            self._polls.add(task)
        try:
            await poll(name)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        finally:
            if task is not None:
                self._polls.discard(task)

    async def _hold(self, name: str) -> bool:
        ttl = LEASE_POLLS * self._clusters[name].alerts.health_poll_s
        try:
            held = await self._lease.hold(name, self.owner, ttl)
        except Exception as exc:  # no Redis, no coordination: do not poll blind
            log.warning("monitor lease of %s unavailable (%s); skipping this poll", name, exc)
            held = False
        if held != self.leading.get(name):
            log.info("%s the monitors of %s", "running" if held else "another replica runs", name)
            if not held and isinstance(self._lag_reader, StreamingLag):
                with contextlib.suppress(Exception):
                    await self._lag_reader.release(name)
        self.leading[name] = held
        return held

    async def _health(self, name: str) -> None:
        if not await self._hold(name):
            return
        started = time.monotonic()
        monitor = self.monitors[name]
        await monitor.check_health()
        await monitor.check_kubernetes()
        self.durations[(name, "health")] = time.monotonic() - started  # completed polls only

    async def _lag(self, name: str) -> None:
        if not self.leading.get(name) and not await self._hold(name):
            return
        started = time.monotonic()
        streaming = isinstance(self._lag_reader, StreamingLag) and self._lag_reader.streaming(name)
        last = self._lag_polled_at.get(name)
        if not streaming and last is not None and started - last < self._clusters[name].alerts.lag_poll_s - 0.05:
            return  # the admin API is polled at the configured interval only
        if streaming and last is not None and started - last < LAG_BUSY_FACTOR * self.durations.get((name, "lag"), 0.0):
            return  # an evaluation longer than half the cadence (a million pairs): spaced to keep a core free
        self._lag_polled_at[name] = started
        await self.monitors[name].check_lag()
        self.durations[(name, "lag")] = time.monotonic() - started

    async def _throttles(self, name: str) -> None:
        if not self.leading.get(name) and not await self._hold(name):
            return
        started = time.monotonic()
        await self.monitors[name].check_throttles()
        self.durations[(name, "throttles")] = time.monotonic() - started

    async def _bootstrap_of(self, cluster: ManagedCluster) -> str | None:
        """A managed cluster's address as its own monitor reaches it (a mirror's source)."""
        monitor = self.monitors.get(cluster.name)
        return await monitor.bootstrap() if monitor is not None else None

    async def _mirror_poll(self, name: str) -> None:
        if not self.leading.get(name) and not await self._hold(name):
            return
        started = time.monotonic()
        await self.mirror_monitors[name].check()
        self.durations[(name, "mirrors")] = time.monotonic() - started

    def _kube_changed(self, name: str) -> None:
        if not self.leading.get(name) or name in self._kube_pending:
            return
        self._kube_pending[name] = asyncio.get_running_loop().create_task(self._kube_soon(name))

    async def _kube_soon(self, name: str) -> None:
        try:
            await asyncio.sleep(KUBE_DEBOUNCE_S)
            # From here on a new change schedules a new evaluation, which may start while this one
            # still runs: each task removes its own entry only, never a newer task's.
            self._forget_pending(name)
            await self.monitors[name].check_kubernetes()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("evaluating the Kubernetes state of %s failed", name)
        finally:
            self._forget_pending(name)

    def _forget_pending(self, name: str) -> None:
        if self._kube_pending.get(name) is asyncio.current_task():
            del self._kube_pending[name]

    def _on_job_event(self, event: JobExecutionEvent) -> None:
        job, _, cluster = str(event.job_id).partition(":")
        if event.code == EVENT_JOB_MAX_INSTANCES:
            key = (cluster, job)
            self.overruns[key] = self.overruns.get(key, 0) + 1
            log.warning("%s poll of %s overran its interval (the previous one is still running): this run is "
                        "skipped, not stacked (%d so far)", job, cluster, self.overruns[key])
        elif event.code == EVENT_JOB_MISSED:
            log.warning("%s poll of %s started late and was skipped (the event loop was busy)", job, cluster)
        elif event.code == EVENT_JOB_ERROR and not isinstance(event.exception, asyncio.CancelledError):
            log.error("%s poll of %s failed: %s: %s", job, cluster, type(event.exception).__name__, event.exception)

    def streaming(self, name: str) -> bool:
        """Whether this replica reads the cluster's committed offsets from its stream right now."""
        return isinstance(self._lag_reader, StreamingLag) and self._lag_reader.streaming(name)

    def relists(self) -> dict[str, int]:
        return {name: w.relists for name, w in self.watches.items()}


class _Clock:
    def now(self) -> datetime:
        return datetime.now(UTC)
