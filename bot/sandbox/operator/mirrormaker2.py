"""KafkaMirrorMaker2 in the operator: each resource becomes a real Connect worker running the Mirror connectors.

For every KafkaMirrorMaker2 of the namespace, each pass: start (or replace, when ``spec.target`` or
the version changes) a Kafka Connect distributed worker (``connect_worker``) and its pod object
``<name>-mirrormaker2-0``; create or update each connector through the Connect REST API (``PUT
/connectors/<n>/config``) and delete those no longer in the spec; apply each connector's ``state``
(``PUT .../pause|resume|stop``); serve the restart annotations (then remove them); restart FAILED
connectors and tasks of connectors with ``autoRestart`` (backoff and count as Strimzi keeps them,
in seconds here instead of minutes); write the status: ``Ready`` (or ``NotReady`` with the reason),
``url``, ``connectors`` = the raw ``GET /connectors/<n>/status`` of each, ``autoRestartStatuses``.
As in Strimzi, ``Ready`` says the worker runs and the connectors were configured: a FAILED task
leaves it ``Ready`` (Strimzi issue #5715), which is why readers must look at ``connectors``.
A deleted resource's worker is stopped and its pod deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.sandbox import jars
from bot.sandbox.errors import SandboxError
from bot.sandbox.kube.pod_logs import ContainerLog
from bot.sandbox.kube.store import ApiError, ObjectStore
from bot.sandbox.node_files import atomic_write
from bot.sandbox.operator import names
from bot.sandbox.operator import status as st
from bot.sandbox.operator.connect_worker import ConnectRestError, ConnectWorker, connector_path
from bot.sandbox.operator.faults import MISSING_INTERCEPTOR, FaultRules
from bot.sandbox.operator.mirrormaker2_spec import (
    ANNO_RESTART_CONNECTOR,
    ANNO_RESTART_TASK,
    MM2_PLURAL,
    MirrorPlan,
    label_selector,
    plan_mirror,
    pod_body,
    pod_name,
)

log = logging.getLogger(__name__)
REST_START_TIMEOUT_S = 120.0
_STATE_PATHS = {"running": "resume", "paused": "pause", "stopped": "stop"}
_CONNECT_STATES = {"running": "RUNNING", "paused": "PAUSED", "stopped": "STOPPED"}


@dataclass
class AutoRestart:
    count: int = 0
    last: float = 0.0
    last_iso: str = ""


@dataclass
class Instance:
    """One KafkaMirrorMaker2 the twin runs."""

    uid: str
    work_dir: Path
    worker: ConnectWorker | None = None
    started_iso: str = ""
    faulted: set[str] = field(default_factory=set)  # connectors whose tasks were restarted into a fault
    restarts: dict[str, AutoRestart] = field(default_factory=dict)

    @property
    def fault_file(self) -> Path:
        return self.work_dir / "faults.properties"


class MirrorMakerOperator:
    def __init__(self, store: ObjectStore, *, namespace: str, work_root: Path, faults: FaultRules,
                 heap_mb: int = 256) -> None:
        self.store = store
        self.namespace = namespace
        self.work_root = work_root
        self.faults = faults
        self.heap_mb = heap_mb
        self.instances: dict[str, Instance] = {}

    async def reconcile_all(self) -> None:
        found, _ = self.store.list(names.KAFKA_GROUP, MM2_PLURAL, self.namespace)
        present = {mm2["metadata"]["name"]: mm2 for mm2 in found}
        for name in sorted(set(self.instances) - set(present)):
            await self._remove(name)
        for name, mm2 in sorted(present.items()):
            instance = self.instances.get(name)
            if instance is not None and instance.uid != mm2["metadata"]["uid"]:  # deleted and created again
                await self._remove(name)
            try:
                await self._reconcile(mm2)
            except Exception:
                log.exception("KafkaMirrorMaker2 %s/%s: reconciliation failed unexpectedly", self.namespace, name)

    async def shutdown(self) -> None:
        await asyncio.gather(*(i.worker.stop() for i in self.instances.values() if i.worker),
                             return_exceptions=True)

    def container_log(self, pod: str) -> ContainerLog | None:
        for name, instance in self.instances.items():
            if pod_name(name) == pod and instance.worker is not None:
                return ContainerLog(instance.worker.log_path, instance.worker.log_start_offset)
        return None

    def workers(self) -> list[dict[str, Any]]:
        """What ``sandbox status`` shows of each KafkaMirrorMaker2's worker."""
        return [{"namespace": self.namespace, "name": n, "pod": pod_name(n), "pid": i.worker.pid if i.worker else None,
                 "url": i.worker.url if i.worker else None} for n, i in sorted(self.instances.items())]

    # -- one resource ------------------------------------------------------------------------
    async def _reconcile(self, mm2: dict[str, Any]) -> None:
        meta = mm2["metadata"]
        name, generation = meta["name"], int(meta.get("generation", 1))
        if names.is_true(meta.get("annotations"), names.ANNO_PAUSE):
            self._write_status(mm2, {"conditions": [st.paused()]}, keep=True)
            return
        work_dir = (self.work_root / name).resolve()
        try:
            plan = plan_mirror(mm2, fault_file=str(Instance(uid="", work_dir=work_dir).fault_file))
        except st.ReconcileFailure as e:  # a worker already running keeps running, as in Strimzi
            self._write_status(mm2, {"conditions": [st.error_condition(e)], "observedGeneration": generation})
            return
        instance = self.instances.setdefault(name, Instance(uid=meta["uid"], work_dir=work_dir))
        warnings = [st.warning("SandboxLimitation", w) for w in plan.warnings]
        if plan.replicas == 0:
            await self._stop_worker(name, instance)
            self._write_status(mm2, {"conditions": [*warnings, st.ready()], "observedGeneration": generation,
                                     "replicas": 0, "labelSelector": label_selector(name), "connectors": []})
            return
        try:
            worker = await self._ensure_worker(mm2, instance, plan)
            await self._apply_faults(instance, plan, worker)
            await self._apply_connectors(worker, plan)
            await self._restart_annotations(mm2, worker)
            statuses = await self._connector_statuses(worker, plan)
            await self._auto_restart(worker, plan, instance, statuses)
        except (ConnectRestError, SandboxError) as e:
            reason = "ConnectRestException" if isinstance(e, ConnectRestError) else "FatalProblem"
            self._write_status(mm2, {"conditions": [*warnings, st.not_ready(reason, str(e))],
                                     "observedGeneration": generation, "replicas": 1,
                                     "labelSelector": label_selector(name),
                                     **({"url": instance.worker.url} if instance.worker else {})})
            return
        self._write_status(mm2, {
            "conditions": [*warnings, st.ready()], "observedGeneration": generation, "url": worker.url,
            "connectors": statuses, "replicas": 1, "labelSelector": label_selector(name),
            "autoRestartStatuses": [{"connectorName": n, "count": r.count, "lastRestartTimestamp": r.last_iso}
                                    for n, r in sorted(instance.restarts.items()) if r.count],
        })

    async def _ensure_worker(self, mm2: dict[str, Any], instance: Instance, plan: MirrorPlan) -> ConnectWorker:
        name = mm2["metadata"]["name"]
        worker = instance.worker
        if worker is not None and (worker.settings != plan.worker or not worker.is_alive()):
            log.info("KafkaMirrorMaker2 %s: replacing its Connect worker (%s)", name,
                     "spec.target or version changed" if worker.is_alive() else "the worker exited")
            await self._stop_worker(name, instance)
            worker = None
        if worker is None:
            if not jars.is_mirror_fetched(plan.worker.kafka_version):
                log.info("fetching the MirrorMaker 2 jars for Kafka %s (once)", plan.worker.kafka_version)
                await asyncio.to_thread(jars.fetch_mirror, plan.worker.kafka_version)
            instance.work_dir.mkdir(parents=True, exist_ok=True)
            self._write_fault_file(instance, plan)
            worker = ConnectWorker(plan.worker, instance.work_dir, heap_mb=self.heap_mb)
            worker.start()
            instance.worker, instance.started_iso = worker, st.now_iso()
            instance.faulted.clear()
            self._publish_pod(mm2, instance, ready=False)
            log.info("KafkaMirrorMaker2 %s: Connect worker pid %s, REST %s", name, worker.pid, worker.url)
        if not await worker.serving():
            deadline = time.monotonic() + REST_START_TIMEOUT_S
            while not await worker.serving():
                if not worker.is_alive():
                    raise SandboxError(f"the Connect worker exited during start-up; its log ends with:\n"
                                       f"{worker.log_tail()}")
                if time.monotonic() > deadline:
                    raise SandboxError(f"the Connect REST API did not answer within {REST_START_TIMEOUT_S:.0f} s")
                await asyncio.sleep(0.5)
        self._publish_pod(mm2, instance, ready=True)  # a no-op write when nothing changed
        return worker

    async def _apply_connectors(self, worker: ConnectWorker, plan: MirrorPlan) -> None:
        existing = set(await self._retrying(worker, "GET", "/connectors") or [])
        wanted = {c.name for c in plan.connectors}
        for stale in sorted(existing - wanted):
            await self._retrying(worker, "DELETE", connector_path(stale))
            log.info("connector %s deleted (no longer in the KafkaMirrorMaker2)", stale)
        for conn in plan.connectors:
            current = None
            if conn.name in existing:
                current = await self._retrying(worker, "GET", connector_path(conn.name, "config"))
                current = {k: v for k, v in (current or {}).items() if k != "name"}
            if current != conn.config:
                await self._retrying(worker, "PUT", connector_path(conn.name, "config"), conn.config)
                log.info("connector %s %s", conn.name, "reconfigured" if current is not None else "created")
            status = await self._retrying(worker, "GET", connector_path(conn.name, "status"))
            state = ((status or {}).get("connector") or {}).get("state")
            if state != _CONNECT_STATES[conn.state] and state != "FAILED":
                await self._retrying(worker, "PUT", connector_path(conn.name, _STATE_PATHS[conn.state]))
                log.info("connector %s: %s -> %s", conn.name, state, conn.state)

    async def _retrying(self, worker: ConnectWorker, method: str, path: str, body: Any = None) -> Any:
        """A REST call retried while the worker is still joining its group (409) or just created it (404)."""
        deadline = time.monotonic() + 60.0
        while True:
            try:
                return await worker.rest(method, path, body)
            except ConnectRestError as e:
                retry = e.status == 409 or (e.status == 404 and method == "GET" and path.endswith("/status"))
                if not retry or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.5)

    async def _restart_annotations(self, mm2: dict[str, Any], worker: ConnectWorker) -> None:
        """``restart-connector=<name>[:includeTasks,onlyFailed]`` and ``restart-connector-task=<name>:<id>``."""
        annotations = mm2["metadata"].get("annotations") or {}
        value = annotations.get(ANNO_RESTART_CONNECTOR)
        if value:
            connector, _, options = str(value).partition(":")
            flags = {o.strip() for o in options.split(",") if o.strip()}
            query = "?" + "&".join(f"{f}=true" for f in sorted(flags & {"includeTasks", "onlyFailed"})) if flags else ""
            await self._annotated_restart(mm2, worker, ANNO_RESTART_CONNECTOR,
                                          connector_path(connector, "restart") + query, connector)
        value = annotations.get(ANNO_RESTART_TASK)
        if value:
            connector, _, task = str(value).rpartition(":")
            if connector and task.isdigit():
                await self._annotated_restart(mm2, worker, ANNO_RESTART_TASK,
                                              connector_path(connector, "tasks", task, "restart"), str(value))
            else:
                log.warning("%s=%r is not <connector>:<task id>; annotation removed", ANNO_RESTART_TASK, value)
                self._remove_annotation(mm2, ANNO_RESTART_TASK)

    async def _annotated_restart(self, mm2: dict[str, Any], worker: ConnectWorker, key: str, path: str,
                                 what: str) -> None:
        try:
            await worker.rest("POST", path)
            log.info("restarted %s as annotated (%s)", what, key)
        except ConnectRestError as e:
            if e.status == 409 or e.status == 0:
                return  # rebalancing: keep the annotation, next pass
            log.warning("restart of %s (%s) refused: %s; annotation removed", what, key, e)
        self._remove_annotation(mm2, key)

    def _remove_annotation(self, mm2: dict[str, Any], key: str) -> None:
        with contextlib.suppress(ApiError):
            self.store.merge_patch(names.KAFKA_GROUP, MM2_PLURAL, self.namespace, mm2["metadata"]["name"],
                                   {"metadata": {"annotations": {key: None}}})

    async def _connector_statuses(self, worker: ConnectWorker, plan: MirrorPlan) -> list[dict[str, Any]]:
        out = []
        for conn in plan.connectors:
            status = await self._retrying(worker, "GET", connector_path(conn.name, "status"))
            out.append(status)
        return out

    async def _auto_restart(self, worker: ConnectWorker, plan: MirrorPlan, instance: Instance,
                            statuses: list[dict[str, Any]]) -> None:
        """Strimzi's backoff: after n restarts the next waits n*n + n minutes (at most 60); seconds here."""
        now = time.monotonic()
        for conn, status in zip(plan.connectors, statuses, strict=True):
            tracker = instance.restarts.setdefault(conn.name, AutoRestart())
            failed = _failed(status)
            backoff = min(tracker.count * tracker.count + tracker.count, 60)
            if not failed:
                if tracker.count and now - tracker.last > max(backoff, 10):  # healthy for a while: start over
                    tracker.count = 0
                continue
            if not conn.auto_restart or now - tracker.last < backoff:
                continue
            if conn.max_restarts is not None and tracker.count >= conn.max_restarts:
                continue
            await worker.rest("POST", connector_path(conn.name, "restart") + "?includeTasks=true&onlyFailed=true")
            tracker.count, tracker.last, tracker.last_iso = tracker.count + 1, now, st.now_iso()
            log.info("autoRestart: connector %s restarted (restart %d)", conn.name, tracker.count)

    # -- the fault hook ----------------------------------------------------------------------
    def _write_fault_file(self, instance: Instance, plan: MirrorPlan) -> None:
        failing = self.faults.failing_connectors()
        lines = [f"{c.name}={MISSING_INTERCEPTOR if c.name in failing else ''}" for c in plan.connectors]
        text = "# the sandbox's mirror-task-fail fault (bot/sandbox/operator/faults.py); read at every task start\n"
        text += "".join(line + "\n" for line in lines)
        if not instance.fault_file.is_file() or instance.fault_file.read_text(encoding="utf-8") != text:
            atomic_write(instance.fault_file, text)

    async def _apply_faults(self, instance: Instance, plan: MirrorPlan, worker: ConnectWorker) -> None:
        """A newly failing connector's tasks are restarted once, so the fault reaches them now."""
        self._write_fault_file(instance, plan)
        failing = self.faults.failing_connectors() & {c.name for c in plan.connectors}
        for connector in sorted(failing - instance.faulted):
            await self._retrying(worker, "POST", connector_path(connector, "restart") + "?includeTasks=true")
            log.warning("fault: the tasks of %s restarted into an injected failure", connector)
        instance.faulted = failing

    # -- objects -----------------------------------------------------------------------------
    def _publish_pod(self, mm2: dict[str, Any], instance: Instance, *, ready: bool) -> None:
        worker = instance.worker
        if worker is None:
            return
        body = pod_body(mm2, version=worker.settings.kafka_version, port=worker.port, pid=worker.pid, ready=ready,
                        started_at=instance.started_iso)
        pod = pod_name(mm2["metadata"]["name"])
        with contextlib.suppress(ApiError):
            try:
                self.store.get(names.CORE_GROUP, names.PODS, self.namespace, pod)
            except ApiError:  # created without its status (a subresource), which the kubelet then writes
                self.store.create(names.CORE_GROUP, names.PODS, self.namespace, body)
            self.store.merge_patch(names.CORE_GROUP, names.PODS, self.namespace, pod, {"status": body["status"]},
                                   subresource="status")

    async def _stop_worker(self, name: str, instance: Instance) -> None:
        if instance.worker is not None:
            await instance.worker.stop()
            instance.worker = None
        with contextlib.suppress(ApiError):
            self.store.delete(names.CORE_GROUP, names.PODS, self.namespace, pod_name(name))

    async def _remove(self, name: str) -> None:
        instance = self.instances.pop(name)
        await self._stop_worker(name, instance)
        log.info("KafkaMirrorMaker2 %s/%s deleted: its Connect worker is stopped", self.namespace, name)

    def _write_status(self, mm2: dict[str, Any], new: dict[str, Any], *, keep: bool = False) -> None:
        name = mm2["metadata"]["name"]
        try:
            current = self.store.get(names.KAFKA_GROUP, MM2_PLURAL, self.namespace, name)
        except ApiError:
            return
        old = current.get("status") or {}
        if keep:
            new = {**old, **new}
        new["conditions"] = st.keep_transition_times(new.get("conditions") or [], old.get("conditions"))
        if st.without_times(new) == st.without_times(old):
            return
        current["status"] = new
        with contextlib.suppress(ApiError):
            self.store.replace(names.KAFKA_GROUP, MM2_PLURAL, self.namespace, name, current, subresource="status")


def _failed(status: dict[str, Any]) -> bool:
    if ((status.get("connector") or {}).get("state")) == "FAILED":
        return True
    return any(t.get("state") == "FAILED" for t in status.get("tasks") or [])

