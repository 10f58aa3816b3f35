"""Broker pods: a Pod object in the store backed by a KafkaNode JVM, plus the kubelet's part.

What a real cluster splits between the StrimziPodSet controller, the kubelet and the container
runtime lives here for one pod:

- the Pod object (Strimzi's labels and annotations) and its PVC object;
- its status from the process: Ready only while the broker is RUNNING (Strimzi's readiness probe
  asks the Kafka Agent for BrokerState 3); CrashLoopBackOff while a crashed JVM is held down;
- a crashed JVM is restarted in the same pod (same uid, restartCount + 1), after the hold the
  ``kill-broker --down-for`` asked for (0 = at once, like a kubelet's first restart);
- an operator-initiated restart deletes the Pod object and creates it again: a new uid, which is
  how callers prove a restart happened. The old pod shows a deletionTimestamp (Terminating) while
  its JVM stops. Like the StrimziPodSet controller, none of this honours ``pause-reconciliation``
  (docs/strimzi.md §1, §9);
- the kubelet's events about the pod (Started, Killing, BackOff) and its container log, which
  ``kubectl logs`` reads (``container_log``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from bot.sandbox.kube.api_errors import bad_request
from bot.sandbox.kube.pod_logs import ContainerLog
from bot.sandbox.kube.store import ApiError, ObjectStore
from bot.sandbox.node import KafkaNode
from bot.sandbox.operator import names
from bot.sandbox.operator.brokerconfig import BrokerConfigState, config_hash
from bot.sandbox.operator.events import CONTAINER, publish_kubelet_event
from bot.sandbox.operator.faults import FaultRules, StartFailure
from bot.sandbox.operator.pod_objects import ContainerView, PodIdentity, pod_body, pod_status, pvc_body
from bot.sandbox.operator.status import now_iso

log = logging.getLogger(__name__)

MONITOR_INTERVAL_S = 0.5
STOP_TIMEOUT_S = 60.0  # SIGTERM, then SIGKILL: Kafka's controlled shutdown is normally seconds
TERMINATION_GRACE_S = 30  # what a terminating pod shows (Strimzi's default terminationGracePeriodSeconds)


class BrokerPod:
    """One ``<cluster>-<pool>-<id>`` pod and the JVM behind it."""

    def __init__(
        self,
        store: ObjectStore,
        node: KafkaNode,
        *,
        namespace: str,
        cluster: str,
        pool: str,
        roles: frozenset[str],
        on_change: Callable[[], None],
        faults: FaultRules | None = None,
    ) -> None:
        self.store = store
        self.node = node
        self.namespace = namespace
        self.cluster = cluster
        self.pool = pool
        self.roles = roles  # the process roles (a scaled-up dual-role node runs broker-only)
        self._on_change = on_change
        self._faults = faults
        self.injected: StartFailure | None = None  # the fault the latest JVM start was given, if any
        self._last_exit_code: int | None = None
        self._last_exit_at: str | None = None
        # Where the current and the previous container's output begin in the node's log file.
        self._log_start: int | None = None
        self._previous_log_start: int | None = None
        self.version = ""
        self.config = BrokerConfigState()
        self.revision = ""
        self.uid: str | None = None
        self.restart_count = 0
        self._lock = asyncio.Lock()  # one lifecycle operation at a time
        self._operator_stop = False  # the operator stopped the JVM on purpose: not a crash
        self._crashed_at: float | None = None
        self._hold_until: float | None = None
        self._next_crash_hold = 0.0
        self._consecutive_crashes = 0
        self._started_at = now_iso()
        self._published: tuple[Any, ...] | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._recreating: asyncio.Task[None] | None = None
        self._owner: dict[str, Any] | None = None

    # -- names -------------------------------------------------------------------------------
    @property
    def node_id(self) -> int:
        return self.node.spec.node_id

    @property
    def name(self) -> str:
        return names.pod_name(self.cluster, self.pool, self.node_id)

    @property
    def pvc(self) -> str:
        return names.pvc_name(self.cluster, self.pool, self.node_id)

    @property
    def is_broker(self) -> bool:
        return names.ROLE_BROKER in self.roles

    @property
    def is_controller(self) -> bool:
        return names.ROLE_CONTROLLER in self.roles

    @property
    def address(self) -> tuple[str, int]:
        return self.node.spec.host, self.node.spec.client_port

    # -- state -------------------------------------------------------------------------------
    def is_ready(self) -> bool:
        return not self._operator_stop and self.node.is_running()

    def is_crash_looping(self) -> bool:
        """Crashed and held down (the state a kubelet reports as CrashLoopBackOff)."""
        return self._crashed_at is not None

    def is_failing(self) -> bool:
        """Not Ready, and its JVM died since the operator last started it (held down or retrying)."""
        return not self.is_ready() and self._consecutive_crashes > 0

    def pod_object(self) -> dict[str, Any] | None:
        try:
            return self.store.get(names.CORE_GROUP, names.PODS, self.namespace, self.name)
        except ApiError:
            return None

    def annotations(self) -> dict[str, str]:
        pod = self.pod_object()
        return dict((pod or {}).get("metadata", {}).get("annotations") or {})

    @property
    def last_exit_code(self) -> int | None:
        return self._last_exit_code

    def container_log(self, container: str | None, previous: bool) -> ContainerLog:
        """What ``kubectl logs [--previous]`` reads: the output of this pod's current (or last) JVM."""
        if container not in (None, CONTAINER):
            raise bad_request(f"container {container} is not valid for pod {self.name}")
        if self._log_start is None:
            raise bad_request(f'container "{CONTAINER}" in pod "{self.name}" is waiting to start: ContainerCreating')
        if previous:
            if self._previous_log_start is None:
                raise bad_request(f'previous terminated container "{CONTAINER}" in pod "{self.name}" not found')
            return ContainerLog(self.node.log_path, self._previous_log_start, self._log_start)
        return ContainerLog(self.node.log_path, self._log_start)

    def log_excerpt(self, lines: int = 5) -> str:
        """Where the broker's log is and how it ends (lines cut short: Kafka's can be huge)."""
        tail = [line[:200] for line in self.node.log_tail(lines).splitlines()]
        return f"broker log {self.node.log_path} ends with:\n" + "\n".join(tail)

    # -- lifecycle ---------------------------------------------------------------------------
    async def create(self, *, version: str, config: dict[str, str], revision: str, metadata_version: str,
                     owner: dict[str, Any] | None) -> None:
        """First start: PVC, format (with the cluster's metadata level), pod, JVM. Does not wait."""
        async with self._lock:
            self._ensure_pvc(owner)
            await self._format(version, config, metadata_version)
            self._start(version, config, revision, owner)
        self._ensure_monitor()

    async def format_storage(self, *, version: str, config: dict[str, str], metadata_version: str) -> None:
        """Format the data dir ahead of ``create`` (which then finds it formatted)."""
        async with self._lock:
            await self._format(version, config, metadata_version)

    async def restart(self, *, version: str, config: dict[str, str], revision: str,
                      owner: dict[str, Any] | None) -> None:
        """Operator restart: stop the JVM, replace the Pod object (new uid), start again. Does not wait."""
        async with self._lock:
            await self._stop_and_delete_pod()
            self._start(version, config, revision, owner)

    async def recreate_with_empty_storage(self, *, version: str, config: dict[str, str], revision: str,
                                          metadata_version: str, owner: dict[str, Any] | None) -> None:
        """``strimzi.io/delete-pod-and-pvc``: pod and PVC deleted, data wiped, both created again."""
        async with self._lock:
            await self._stop_and_delete_pod()
            with contextlib.suppress(ApiError):
                self.store.delete(names.CORE_GROUP, names.PVCS, self.namespace, self.pvc)
            self.node.wipe_data()
            self._ensure_pvc(owner)
            await self._format(version, config, metadata_version)
            self._start(version, config, revision, owner)

    async def remove(self, *, delete_claim: bool) -> None:
        """Scale-down: stop for good, delete the pod (and the PVC + data when deleteClaim is set)."""
        async with self._lock:
            await self._stop_and_delete_pod()
            if delete_claim:
                with contextlib.suppress(ApiError):
                    self.store.delete(names.CORE_GROUP, names.PVCS, self.namespace, self.pvc)
                self.node.wipe_data()
        await self.close()

    async def shutdown(self, grace_s: float = STOP_TIMEOUT_S) -> None:
        """Stop the JVM (sandbox teardown); objects are left as they are."""
        await self.close()
        self._operator_stop = True
        await self.node.stop(grace_s)

    async def close(self) -> None:
        task, self._monitor = self._monitor, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def kill(self, *, down_for: float) -> None:
        """SIGKILL the JVM (a crash); the kubelet restarts it ``down_for`` seconds later."""
        self._next_crash_hold = max(0.0, down_for)
        self.node.kill()

    async def wait_ready(self, limit_s: float) -> bool:
        """True once Ready; False after ``limit_s``, or at once if the JVM keeps dying at startup."""
        deadline = time.monotonic() + limit_s
        while not self.is_ready():
            if time.monotonic() >= deadline or self._consecutive_crashes >= 3:
                return False
            await asyncio.sleep(0.2)
        self.publish_status()
        return True

    # -- internals ---------------------------------------------------------------------------
    async def _format(self, version: str, config: dict[str, str], metadata_version: str) -> None:
        self.node.write_config(config)  # format reads node.id / process.roles / log.dirs from it
        await self.node.format_async(version, release_version=metadata_version)

    async def _stop_and_delete_pod(self) -> None:
        self._operator_stop = True
        self.publish_status()  # not Ready from the moment it starts terminating
        if self.uid is not None:
            with contextlib.suppress(ApiError):  # gone already when deleted behind the operator's back
                self.store.mark_terminating(names.CORE_GROUP, names.PODS, self.namespace, self.name,
                                            TERMINATION_GRACE_S)
                self._kubelet_event("Killing", f"Stopping container {CONTAINER}")
        if self.node.is_alive():
            await self.node.stop(STOP_TIMEOUT_S)
        with contextlib.suppress(ApiError):
            self.store.delete(names.CORE_GROUP, names.PODS, self.namespace, self.name)
        self.uid = None
        self._published = None

    def _start(self, version: str, config: dict[str, str], revision: str, owner: dict[str, Any] | None) -> None:
        # The JVM is spawned from the event-loop thread (PDEATHSIG is tied to the spawning thread).
        self.version = version
        # Per-broker dynamic configs live in the KRaft metadata log: they survive the restart.
        self.config = BrokerConfigState(static=dict(config), dynamic=self.config.dynamic)
        self.revision = revision
        self._owner = owner
        self.restart_count = 0
        self._crashed_at = self._hold_until = None
        self._consecutive_crashes = 0
        self._last_exit_code = self._last_exit_at = None
        self._previous_log_start = None  # a new pod: its first container has no predecessor
        self._start_jvm(version, config)
        pod = self.store.create(names.CORE_GROUP, names.PODS, self.namespace, self._pod_body(owner))
        self.uid = pod["metadata"]["uid"]
        self._operator_stop = False
        self._published = None
        self._kubelet_event("Started", f"Started container {CONTAINER}")
        self.publish_status()

    def _start_jvm(self, version: str, config: dict[str, str]) -> None:
        extra: dict[str, str] = {}
        self.injected = None
        if self._faults is not None:
            rendered = self.node.rendered_config(config)
            self.injected = self._faults.matching(rendered)
            extra = self._faults.start_overrides(rendered)
        if self.injected is not None:
            log.warning("pod %s: injected start failure (%s=%s): starting broker %d with metric.reporters=%s",
                        self.name, self.injected.key, self.injected.value, self.node_id, extra["metric.reporters"])
        self.node.start(version, config, this_start_only=extra)
        self._log_start = self.node.log_start_offset
        self._started_at = now_iso()

    def _kubelet_event(self, reason: str, message: str, *, warning: bool = False) -> None:
        if self.uid is not None:
            publish_kubelet_event(self.store, namespace=self.namespace, pod=self.name, uid=self.uid, reason=reason,
                                  message=message, warning=warning)

    def _identity(self) -> PodIdentity:
        return PodIdentity(self.namespace, self.cluster, self.pool, self.node_id, self.is_broker, self.is_controller)

    def _ensure_pvc(self, owner: dict[str, Any] | None) -> None:
        with contextlib.suppress(ApiError):  # 409: it survived a scale-down with deleteClaim false
            self.store.create(names.CORE_GROUP, names.PVCS, self.namespace, pvc_body(self._identity()))

    def _pod_body(self, owner: dict[str, Any] | None) -> dict[str, Any]:
        return pod_body(self._identity(), version=self.version, revision=self.revision,
                        config_hash=config_hash(self.config.static), client_port=self.node.spec.client_port,
                        owner=owner, rack=self.config.static.get("broker.rack"))

    def _ensure_monitor(self) -> None:
        if self._monitor is None or self._monitor.done():
            self._monitor = asyncio.create_task(self._watch_process(), name=f"kubelet-{self.name}")

    async def _watch_process(self) -> None:
        """The kubelet: notice crashes, hold the pod down as asked, restart the container."""
        while True:
            try:
                self._check_process()
            except Exception:  # keep the kubelet alive whatever one status write did
                log.exception("pod %s: kubelet step failed", self.name)
            await asyncio.sleep(MONITOR_INTERVAL_S)

    def _check_process(self) -> None:
        if self._lock.locked() or self._operator_stop or self.uid is None:
            return
        if self.pod_object() is None:
            # Deleted behind the operator's back (kubectl delete pod). The StrimziPodSet controller
            # recreates what its podset lists: a restart that bypasses KafkaRoller's checks.
            if self._podset_lists_me() and (self._recreating is None or self._recreating.done()):
                self._recreating = asyncio.create_task(self._recreate_deleted_pod())
            return
        now = time.monotonic()
        if self._crashed_at is None and not self.node.is_alive():
            self._crashed_at = now
            self._last_exit_code = self.node.exit_code
            self._last_exit_at = now_iso()
            self._hold_until = now + self._next_crash_hold
            self._next_crash_hold = 0.0
            self.restart_count += 1
            self._consecutive_crashes += 1
            if self._hold_until == now and self._consecutive_crashes > 1:
                # A JVM that keeps dying before it is ever ready backs off like a kubelet does
                # (10 s doubling to 5 min there; shorter here, the twin is for tests).
                self._hold_until = now + min(2.0 ** (self._consecutive_crashes - 1), 30.0)
            log.info("pod %s: broker %d exited; restart in %.0f s", self.name, self.node_id,
                     self._hold_until - now)
            if self._hold_until > now:
                self._kubelet_event("BackOff", f"Back-off restarting failed container {CONTAINER} in pod "
                                    f"{self.name}_{self.namespace}({self.uid})", warning=True)
        if self._crashed_at is not None and self._hold_until is not None and now >= self._hold_until:
            self._crashed_at = self._hold_until = None
            self._previous_log_start = self._log_start  # the same pod's next container: --previous
            self._start_jvm(self.version, self.config.static)
            self._kubelet_event("Started", f"Started container {CONTAINER}")
        self.publish_status()

    def _podset_lists_me(self) -> bool:
        try:
            podset = self.store.get(names.PODSET_GROUP, names.PODSETS, self.namespace,
                                    names.podset_name(self.cluster, self.pool))
        except ApiError:
            return False
        return any(p.get("metadata", {}).get("name") == self.name for p in podset.get("spec", {}).get("pods", []))

    async def _recreate_deleted_pod(self) -> None:
        async with self._lock:
            if self.pod_object() is not None or self._operator_stop:
                return
            log.info("pod %s was deleted: recreating it, as the StrimziPodSet controller does", self.name)
            await self._stop_and_delete_pod()
            self._start(self.version, self.config.static, self.revision, self._owner)

    def publish_status(self) -> None:
        """Write the pod status if what it shows changed (readiness, crash loop, restarts)."""
        if self.uid is None:
            return
        ready = self.is_ready()
        if ready:
            self._consecutive_crashes = 0
        state = (ready, self.is_crash_looping(), self._operator_stop, self.restart_count, self.node.pid)
        if state == self._published:
            return
        try:
            self.store.merge_patch(names.CORE_GROUP, names.PODS, self.namespace, self.name,
                                   {"status": self._status_body(ready)}, subresource="status")
        except ApiError as e:
            log.debug("pod %s: status not written: %s", self.name, e)
            return
        self._published = state
        self._on_change()

    def _status_body(self, ready: bool) -> dict[str, Any]:
        return pod_status(self._identity(), ContainerView(
            version=self.version, ready=ready, alive=self.node.is_alive(), pid=self.node.pid,
            crash_looping=self.is_crash_looping(), terminating=self._operator_stop,
            restart_count=self.restart_count, last_exit_code=self._last_exit_code, last_exit_at=self._last_exit_at,
            started_at=self._started_at, host=self.node.spec.host))
