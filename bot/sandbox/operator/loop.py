"""The operator process: watch the store, reconcile each Kafka cluster and its topics.

Like Strimzi's cluster operator, a cluster is reconciled on a timer (every few seconds here, 120 s
in Strimzi) and when its Kafka or KafkaNodePool resources change (spec, labels or annotations; a
status write does not trigger). Triggers are debounced, and one worker per cluster guarantees that
two reconciliations of a cluster never overlap. KafkaTopics have their own worker per cluster, as
the Topic Operator is a separate process in Strimzi (a long roll does not hold topics up).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from bot.sandbox.errors import SandboxError
from bot.sandbox.kube.api_errors import bad_request
from bot.sandbox.kube.pod_logs import ContainerLog
from bot.sandbox.kube.store import ObjectStore, WatchEvent
from bot.sandbox.operator import names
from bot.sandbox.operator.config_check import KafkaConfigChecker
from bot.sandbox.operator.faults import FaultRules
from bot.sandbox.operator.kafka_admin import AdminError
from bot.sandbox.operator.mirrormaker2 import MirrorMakerOperator
from bot.sandbox.operator.mirrormaker2_spec import MM2_PLURAL
from bot.sandbox.operator.pods import BrokerPod
from bot.sandbox.operator.rebalance import RebalanceOperator
from bot.sandbox.operator.reconciler import KafkaReconciler, OperatorSettings
from bot.sandbox.operator.topics import TopicOperator
from bot.sandbox.operator.users import UserOperator

log = logging.getLogger(__name__)
ClusterKey = tuple[str, str]  # (namespace, name)
REBALANCE_POLL_S = 1.0  # Strimzi polls Cruise Control every 5 s (cruiseControl.*.rebalance polling); tests want less
MIRROR_POLL_S = 2.0  # KafkaMirrorMaker2 status (the Connect REST status) refreshed this often; Strimzi: 120 s


class ClusterWorker:
    """Serialises the reconciliations of one Kafka cluster, and of its KafkaTopics."""

    def __init__(self, store: ObjectStore, key: ClusterKey, *, work_root: Path, settings: OperatorSettings,
                 faults: FaultRules, config_checker: KafkaConfigChecker) -> None:
        self.key = key
        self.settings = settings
        self.reconciler = KafkaReconciler(store, namespace=key[0], name=key[1], work_root=work_root,
                                          settings=settings, faults=faults, config_checker=config_checker)
        self.topics = TopicOperator(store, namespace=key[0], cluster=key[1])
        self.users = UserOperator(store, namespace=key[0], cluster=key[1])
        self.rebalances = RebalanceOperator(store, namespace=key[0], cluster=key[1],
                                            runtime=lambda: self.reconciler.runtime)
        self.wake = asyncio.Event()
        self.topic_wake = asyncio.Event()
        self.user_wake = asyncio.Event()
        self.rebalance_wake = asyncio.Event()
        self.wake.set()
        self.topic_wake.set()
        self.user_wake.set()
        self.reconciliations = 0
        self._tasks = [asyncio.create_task(self._cluster_loop(), name=f"reconcile-{key[1]}"),
                       asyncio.create_task(self._topic_loop(), name=f"topics-{key[1]}"),
                       asyncio.create_task(self._user_loop(), name=f"users-{key[1]}"),
                       asyncio.create_task(self._rebalance_loop(), name=f"rebalances-{key[1]}")]

    @property
    def done(self) -> bool:
        return self._tasks[0].done()

    async def _cluster_loop(self) -> None:
        while True:
            await self.wake.wait()
            await asyncio.sleep(self.settings.debounce_s)  # let a burst of changes land first
            self.wake.clear()
            try:
                alive = await self.reconciler.reconcile()
            except Exception:  # keep reconciling next time, as Strimzi does after a failure
                log.exception("reconciliation of %s/%s failed unexpectedly", *self.key)
                alive = True
            self.reconciliations += 1
            if not alive:
                log.info("Kafka %s/%s deleted: its brokers are stopped", *self.key)
                return

    async def _topic_loop(self) -> None:
        while not self.done:
            await self.topic_wake.wait()
            await asyncio.sleep(self.settings.debounce_s)
            self.topic_wake.clear()
            runtime = self.reconciler.runtime
            if runtime is None or not any(p.is_ready() for p in runtime.broker_pods()):
                continue
            try:
                await self.topics.reconcile_all(runtime.topic_admin)
            except AdminError as e:
                log.info("topic reconciliation of %s/%s postponed: %s", *self.key, e)
            except Exception:
                log.exception("topic reconciliation of %s/%s failed unexpectedly", *self.key)

    async def _user_loop(self) -> None:
        """KafkaUsers: the User Operator is a process of its own in Strimzi, like the Topic Operator."""
        while not self.done:
            await self.user_wake.wait()
            await asyncio.sleep(self.settings.debounce_s)
            self.user_wake.clear()
            runtime = self.reconciler.runtime
            if runtime is None or not any(p.is_ready() for p in runtime.broker_pods()):
                continue
            try:
                await self.users.reconcile_all(runtime.user_admin, runtime.security)
            except AdminError as e:
                log.info("user reconciliation of %s/%s postponed: %s", *self.key, e)
            except Exception:
                log.exception("user reconciliation of %s/%s failed unexpectedly", *self.key)

    async def _rebalance_loop(self) -> None:
        """KafkaRebalances: on a change, and every second while anything may be in progress."""
        while not self.done:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.rebalance_wake.wait(), timeout=REBALANCE_POLL_S)
            await asyncio.sleep(self.settings.debounce_s)
            self.rebalance_wake.clear()
            runtime = self.reconciler.runtime
            if runtime is None or not any(p.is_ready() for p in runtime.broker_pods()):
                continue
            try:
                await self.rebalances.reconcile_all()
            except Exception:
                log.exception("KafkaRebalance reconciliation of %s/%s failed unexpectedly", *self.key)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.rebalances.shutdown()
        await self.reconciler.shutdown()


class Operator:
    def __init__(self, store: ObjectStore, *, work_root: Path, settings: OperatorSettings | None = None,
                 faults: FaultRules | None = None) -> None:
        self.store = store
        self.work_root = work_root
        self.settings = settings or OperatorSettings()
        self.faults = faults or FaultRules()  # injected by tests through the sandbox's control API
        self.config_checker = KafkaConfigChecker()  # one verdict cache for every cluster
        self.workers: dict[ClusterKey, ClusterWorker] = {}
        self._seen: dict[tuple[str, str, str], Any] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # KafkaMirrorMaker2s, per namespace: they name their clusters by bootstrap address, not by label.
        self.mirror_makers: dict[str, MirrorMakerOperator] = {}
        self.mirror_wake = asyncio.Event()

    async def start(self) -> None:
        queue = self.store.subscribe()
        kafkas, _ = self.store.list(names.KAFKA_GROUP, names.KAFKAS)
        for kafka in kafkas:
            self._worker(_key(kafka))
        self._tasks = [asyncio.create_task(self._watch(queue), name="operator-watch"),
                       asyncio.create_task(self._tick(), name="operator-timer"),
                       asyncio.create_task(self._mirror_loop(), name="mirrormaker2")]

    async def stop(self) -> None:
        """Stop reconciling and stop every broker (SIGTERM, then SIGKILL stragglers)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*(w.stop() for w in self.workers.values()),
                             *(m.shutdown() for m in self.mirror_makers.values()), return_exceptions=True)
        self.workers.clear()
        self.mirror_makers.clear()

    async def _mirror_loop(self) -> None:
        """KafkaMirrorMaker2s: on a change, and every MIRROR_POLL_S for their connectors' status."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.mirror_wake.wait(), timeout=MIRROR_POLL_S)
            await asyncio.sleep(self.settings.debounce_s)
            self.mirror_wake.clear()
            found, _ = self.store.list(names.KAFKA_GROUP, MM2_PLURAL)
            for namespace in sorted({str(m["metadata"]["namespace"]) for m in found} | set(self.mirror_makers)):
                mirror = self.mirror_makers.get(namespace)
                if mirror is None:
                    mirror = MirrorMakerOperator(self.store, namespace=namespace,
                                                 work_root=self.work_root / "mirrormaker2" / namespace,
                                                 faults=self.faults)
                    self.mirror_makers[namespace] = mirror
                try:
                    await mirror.reconcile_all()
                except Exception:
                    log.exception("KafkaMirrorMaker2 reconciliation in %s failed unexpectedly", namespace)

    def _worker(self, key: ClusterKey) -> ClusterWorker:
        worker = self.workers.get(key)
        if worker is None or worker.done:
            worker = ClusterWorker(self.store, key, work_root=self.work_root, settings=self.settings,
                                   faults=self.faults, config_checker=self.config_checker)
            self.workers[key] = worker
        return worker

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reconcile_interval_s)
            for key, worker in list(self.workers.items()):
                if worker.done:
                    self.workers.pop(key, None)
                    continue
                worker.wake.set()
                worker.topic_wake.set()
                worker.user_wake.set()

    async def _watch(self, queue: asyncio.Queue[WatchEvent]) -> None:
        try:
            while True:
                event = await queue.get()
                try:
                    self._dispatch(event)
                except Exception:
                    log.exception("watch event %s %s/%s not handled", event.type, event.group, event.plural)
        finally:
            self.store.unsubscribe(queue)

    def _dispatch(self, event: WatchEvent) -> None:
        if event.group != names.KAFKA_GROUP or event.plural not in (names.KAFKAS, names.NODE_POOLS, names.TOPICS,
                                                                     names.USERS, names.REBALANCES, MM2_PLURAL):
            return
        meta = event.object.get("metadata") or {}
        ident = (event.plural, meta.get("namespace", ""), meta.get("name", ""))
        # Only what a user changes matters: spec (generation), labels, annotations, deletion.
        fingerprint = (meta.get("generation"), meta.get("labels"), meta.get("annotations"),
                       meta.get("deletionTimestamp"))
        if event.type == "MODIFIED" and self._seen.get(ident) == fingerprint:
            return
        if event.type == "DELETED":
            self._seen.pop(ident, None)
        else:
            self._seen[ident] = fingerprint
        if event.plural == MM2_PLURAL:
            self.mirror_wake.set()
            return
        if event.plural == names.KAFKAS:
            worker = self._worker(_key(event.object))
            worker.wake.set()
            worker.topic_wake.set()
            worker.user_wake.set()
            return
        cluster = (meta.get("labels") or {}).get(names.LABEL_CLUSTER)
        if not cluster:
            return
        existing = self.workers.get((meta.get("namespace", ""), cluster))
        if existing is None:
            return
        if event.plural == names.NODE_POOLS:
            existing.wake.set()
        elif event.plural == names.REBALANCES:
            existing.rebalance_wake.set()
        elif event.plural == names.USERS:
            existing.user_wake.set()
        else:
            existing.topic_wake.set()

    # -- what the sandbox's control endpoints need -------------------------------------------
    def pods(self) -> list[BrokerPod]:
        out: list[BrokerPod] = []
        for worker in self.workers.values():
            runtime = worker.reconciler.runtime
            if runtime is not None:
                out.extend(p for _, p in sorted(runtime.pods.items()))
        return out

    def container_log(self, namespace: str, pod: str, container: str | None, previous: bool) -> ContainerLog:
        """The ``PodLogSource`` of the API server: where a broker pod's container log is."""
        for candidate in self.pods():
            if candidate.namespace == namespace and candidate.name == pod and candidate.uid is not None:
                return candidate.container_log(container, previous)
        mirror = self.mirror_makers.get(namespace)
        found = mirror.container_log(pod) if mirror is not None and not previous else None
        if found is not None:
            return found
        raise bad_request(f"pod {pod} does not have a host assigned")

    def find_pod(self, node_id: int) -> BrokerPod:
        matches = [p for p in self.pods() if p.node_id == node_id]
        if not matches:
            known = ", ".join(str(p.node_id) for p in self.pods()) or "none"
            raise SandboxError(f"no broker with id {node_id} (broker ids: {known})")
        return matches[0]


def _key(obj: dict[str, Any]) -> ClusterKey:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))
