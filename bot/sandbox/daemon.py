"""The background process of one sandbox: emulator + simulated operator + the brokers it starts.

Started detached by ``kafka-chatops sandbox up`` (``python -m bot.sandbox.daemon ...``, own
session, output in ``daemon.log``). It serves the Kubernetes API emulator on a free port (with the
brokers' logs behind ``kubectl logs``), writes the kubeconfig, applies a Kafka and a dual-role
KafkaNodePool as a user would, and runs the operator, which starts the brokers. Everything lives
in this one process: the brokers get PDEATHSIG, so nothing outlives it, even a SIGKILL.

Control endpoints for the CLI live next to the Kubernetes API on the same server:
``GET /sandbox/status``, ``POST /sandbox/brokers/<id>/kill?down_for=S``,
``POST /sandbox/faults/<kind>?when=...`` (``start-failure``: KEY=VALUE; ``mirror-task-fail``: a
Mirror connector's name), ``DELETE /sandbox/faults/<kind>``,
``POST /sandbox/shutdown``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.sandbox.errors import SandboxError
from bot.sandbox.kube.kubeconfig import write_kubeconfig
from bot.sandbox.kube.server import create_app, start_server
from bot.sandbox.kube.store import ApiError, ObjectStore
from bot.sandbox.operator import names
from bot.sandbox.operator.deployment import APPS_GROUP, DEPLOYMENTS, operator_deployment
from bot.sandbox.operator.faults import KINDS, FaultRules, StartFailure, parse_rule
from bot.sandbox.operator.listeners import PRESETS
from bot.sandbox.operator.loop import Operator
from bot.sandbox.operator.pods import BrokerPod
from bot.sandbox.operator.reconciler import OperatorSettings
from bot.sandbox.operator.roller import RollSettings
from bot.sandbox.state import (
    KUBECONFIG_FILE,
    PHASE_FAILED,
    PHASE_READY,
    PHASE_STOPPED,
    PHASE_STOPPING,
    DaemonLock,
    SandboxState,
    write_state,
)

log = logging.getLogger("bot.sandbox.daemon")
POOL_NAME = "dual-role"
BROKER_POOL_NAME = "brokers"
RACK_TOPOLOGY_KEY = "topology.kubernetes.io/zone"
LAST_BROKER_ID = 99  # the broker pool's ids run from the dual-role nodes' count up to this


def kafka_resources(*, name: str, namespace: str, brokers: int, version: str, broker_only: int | None = None,
                    racks: int = 0, cruise_control: bool = False,
                    listeners: tuple[str, ...] = ("plain",)) -> list[dict[str, Any]]:
    """The Kafka and KafkaNodePools a user would apply (Strimzi's kafka-with-dual-role-nodes example).

    ``broker_only`` (None: no such pool) adds the pool ``brokers`` with roles [broker]: the pool a
    static quorum can scale. Its ids start after the dual-role nodes' (``strimzi.io/next-node-ids``),
    so the dual-role nodes keep ids 0..brokers-1 whatever the pools' names sort like. ``listeners``
    names entries of ``listeners.PRESETS`` (plain; tls: TLS + SCRAM-SHA-512; mtls: TLS + client
    certificates).
    """
    rf, isr = min(3, brokers), min(2, brokers)
    storage = {"type": "persistent-claim", "size": "1Gi", "deleteClaim": False}
    pools = [{
        "apiVersion": names.KAFKA_API_VERSION, "kind": "KafkaNodePool",
        "metadata": {"name": POOL_NAME, "namespace": namespace, "labels": {names.LABEL_CLUSTER: name}},
        # One volume, so PVCs are data-<cluster>-<pool>-<id> (JBOD would add the volume id).
        "spec": {"replicas": brokers, "roles": ["controller", "broker"], "storage": dict(storage)},
    }]
    if broker_only is not None:
        pools.append({
            "apiVersion": names.KAFKA_API_VERSION, "kind": "KafkaNodePool",
            "metadata": {"name": BROKER_POOL_NAME, "namespace": namespace, "labels": {names.LABEL_CLUSTER: name},
                         "annotations": {names.ANNO_NEXT_NODE_IDS: f"[{brokers}-{LAST_BROKER_ID}]"}},
            # deleteClaim: a broker scaled away leaves no disk behind, so scaling back up starts empty.
            "spec": {"replicas": broker_only, "roles": ["broker"], "storage": {**storage, "deleteClaim": True}},
        })
    kafka_spec: dict[str, Any] = {
        "kafka": {
            "version": version,
            "listeners": [dict(PRESETS[name]) for name in listeners],
            "config": {
                "offsets.topic.replication.factor": rf, "transaction.state.log.replication.factor": rf,
                "transaction.state.log.min.isr": isr, "default.replication.factor": rf,
                "min.insync.replicas": isr,
            },
        },
        "entityOperator": {"topicOperator": {}, "userOperator": {}},
    }
    if racks:
        kafka_spec["kafka"]["rack"] = {"topologyKey": RACK_TOPOLOGY_KEY}
    if cruise_control:
        kafka_spec["cruiseControl"] = {}
    kafka = {"apiVersion": names.KAFKA_API_VERSION, "kind": "Kafka",
             "metadata": {"name": name, "namespace": namespace}, "spec": kafka_spec}
    return [*pools, kafka]


class Daemon:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.directory = Path(args.state_dir)
        self.store = ObjectStore()
        self.stopping = asyncio.Event()
        settings = OperatorSettings(reconcile_interval_s=args.reconcile_interval, heap_mb=args.heap_mb,
                                    roll=RollSettings(backoff_attempts=args.roll_attempts), zones=max(1, args.racks))
        self.faults = FaultRules()
        self.operator = Operator(self.store, work_root=self.directory / "clusters", settings=settings,
                                 faults=self.faults)
        self.state = SandboxState(
            name=args.name, namespace=args.namespace, cluster=args.name, state_dir=str(self.directory),
            kafka_version=args.kafka_version, brokers=args.brokers, daemon_pid=os.getpid(), started_at=time.time(),
            broker_only=args.broker_only or 0, racks=args.racks, cruise_control=args.cruise_control,
        )
        self.listener_names = tuple(n for n in args.listeners.split(",") if n)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self.stopping.set)
        app = create_app(self.store, pod_logs=self.operator.container_log)
        app.router.add_get("/sandbox/status", self._status)
        app.router.add_post("/sandbox/brokers/{node_id}/kill", self._kill)
        app.router.add_post("/sandbox/faults/{kind}", self._add_fault)
        app.router.add_delete("/sandbox/faults/{kind}", self._clear_faults)
        app.router.add_post("/sandbox/shutdown", self._shutdown)
        runner, url = await start_server(self.store, app=app)
        kubeconfig = write_kubeconfig(self.directory / KUBECONFIG_FILE, url, namespace=self.args.namespace,
                                      context_name=f"sandbox-{self.args.name}")
        self.state.api_url, self.state.kubeconfig = url, str(kubeconfig)
        self.state.ports = {"api": int(url.rsplit(":", 1)[1])}
        write_state(self.state)
        log.info("Kubernetes API emulator on %s", url)
        code = 0
        try:
            await self.operator.start()
            self._apply_resources()
            code = await self._until_ready()
            if code == 0:
                await self._serve_until_stopped()
        finally:
            self.state.phase = PHASE_STOPPING
            write_state(self.state)
            await self.operator.stop()
            await runner.cleanup()
            self.state.phase = PHASE_FAILED if code else PHASE_STOPPED
            self.state.broker_pids = {}
            write_state(self.state)
            log.info("sandbox %s stopped", self.args.name)
        return code

    def _apply_resources(self) -> None:
        namespace = self.args.namespace
        with contextlib.suppress(ApiError):
            self.store.create("", "namespaces", None, {"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": namespace}})
        with contextlib.suppress(ApiError):  # the operator's own Deployment: the versions it runs
            self.store.create(APPS_GROUP, DEPLOYMENTS, namespace, operator_deployment(namespace))
        for resource in kafka_resources(name=self.args.name, namespace=namespace, brokers=self.args.brokers,
                                        version=self.args.kafka_version, broker_only=self.args.broker_only,
                                        racks=self.args.racks, cruise_control=self.args.cruise_control,
                                        listeners=self.listener_names):
            plural = names.KAFKAS if resource["kind"] == "Kafka" else names.NODE_POOLS
            self.store.create(names.KAFKA_GROUP, plural, namespace, resource)

    def _kafka(self) -> dict[str, Any]:
        return self.store.get(names.KAFKA_GROUP, names.KAFKAS, self.args.namespace, self.args.name)

    async def _until_ready(self) -> int:
        deadline = time.monotonic() + self.args.ready_timeout
        while not self.stopping.is_set():
            status = self._kafka().get("status") or {}
            conditions = status.get("conditions") or []
            if any(c.get("type") == "Ready" for c in conditions):
                self.state.phase, self.state.ready_at = PHASE_READY, time.time()
                self._refresh_state(status)
                log.info("Kafka %s is Ready after %.1f s", self.args.name,
                         self.state.ready_at - (self.state.started_at or 0))
                return 0
            failed = [c for c in conditions if c.get("type") == "NotReady" and c.get("reason") != "Creating"]
            if time.monotonic() > deadline or (failed and failed[0].get("reason") in (
                    "UnsupportedKafkaVersionException", "InvalidResourceException", "FatalProblem")):
                problem = failed[0] if failed else {"reason": "TimeoutException",
                                                    "message": f"not Ready after {self.args.ready_timeout:.0f} s"}
                self.state.phase = PHASE_FAILED
                self.state.error = f"{problem.get('reason')}: {problem.get('message')}"
                write_state(self.state)
                log.error("Kafka %s did not become Ready: %s", self.args.name, self.state.error)
                return 1
            await asyncio.sleep(0.5)
        return 0

    def _refresh_state(self, status: dict[str, Any] | None = None) -> None:
        status = status if status is not None else (self._kafka().get("status") or {})
        listeners = status.get("listeners") or []
        if listeners:
            self.state.bootstrap_servers = listeners[0].get("bootstrapServers")
            self.state.listeners = {str(lst.get("name")): str(lst.get("bootstrapServers")) for lst in listeners}
        pods = self.operator.pods()
        self.state.broker_pids = {str(p.node_id): p.node.pid for p in pods if p.node.pid}
        self.state.ports["brokers"] = {str(p.node_id): p.node.spec.client_port for p in pods}
        self.state.kafka_version = status.get("kafkaVersion") or self.state.kafka_version
        write_state(self.state)

    async def _serve_until_stopped(self) -> None:
        # Keep state.json's pids current: `sandbox down` falls back on them if this process hangs.
        while not self.stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=2.0)
            if not self.stopping.is_set():
                with contextlib.suppress(ApiError):
                    self._refresh_state()

    # -- control endpoints -------------------------------------------------------------------
    async def _status(self, request: web.Request) -> web.Response:
        try:
            status = self._kafka().get("status") or {}
        except ApiError:
            status = {}
        return web.json_response({
            **self.state.to_json(),
            "kafka": {"conditions": status.get("conditions") or [], "kafkaVersion": status.get("kafkaVersion"),
                      "kafkaMetadataVersion": status.get("kafkaMetadataVersion"),
                      "observedGeneration": status.get("observedGeneration")},
            "nodes": [node_status(p) for p in self.operator.pods()],
            "mirror_makers": [w for m in self.operator.mirror_makers.values() for w in m.workers()],
        })

    async def _kill(self, request: web.Request) -> web.Response:
        try:
            node_id = int(request.match_info["node_id"])
            down_for = float(request.query.get("down_for", "0"))
            if down_for < 0:
                raise ValueError("down_for must be >= 0")
        except ValueError as e:
            return web.json_response({"error": f"bad request: {e}"}, status=400)
        try:
            pod = self.operator.find_pod(node_id)
        except SandboxError as e:
            return web.json_response({"error": str(e)}, status=404)
        pid = pod.node.pid
        if pid is None:
            return web.json_response({"error": f"broker {node_id} is not running right now (pod {pod.name})"},
                                     status=409)
        pod.kill(down_for=down_for)
        log.info("kill-broker: SIGKILL broker %d (pid %s), restart in %.0f s", node_id, pid, down_for)
        return web.json_response({"killed": node_id, "pid": pid, "pod": pod.name, "down_for": down_for})

    async def _add_fault(self, request: web.Request) -> web.Response:
        try:
            rule = parse_rule(request.match_info["kind"], request.query.get("when", ""))
        except SandboxError as e:
            return web.json_response({"error": str(e)}, status=400)
        self.faults.add(rule)
        if isinstance(rule, StartFailure):
            log.warning("fault injected: a node whose config has %s=%s fails at its next start", rule.key, rule.value)
        else:
            log.warning("fault injected: every start of the tasks of %s fails", rule.connector)
        return self._faults_changed({"added": rule.to_json()})

    async def _clear_faults(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind not in KINDS:
            return web.json_response({"error": f"unknown fault kind {kind!r}; valid: {', '.join(KINDS)}"}, status=400)
        cleared = self.faults.clear(kind)
        log.info("%s faults cleared (%d)", kind, cleared)
        return self._faults_changed({"cleared": cleared})

    def _faults_changed(self, extra: dict[str, Any]) -> web.Response:
        self.state.faults = self.faults.to_json()
        write_state(self.state)
        self.operator.mirror_wake.set()  # a mirror fault acts through the KafkaMirrorMaker2 reconciler
        return web.json_response({**extra, "faults": self.state.faults})

    async def _shutdown(self, request: web.Request) -> web.Response:
        self.stopping.set()
        return web.json_response({"stopping": self.args.name})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bot.sandbox.daemon", description=__doc__)
    p.add_argument("--name", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--brokers", type=int, required=True)
    p.add_argument("--kafka-version", required=True)
    p.add_argument("--state-dir", required=True)
    p.add_argument("--reconcile-interval", type=float, default=3.0)
    p.add_argument("--heap-mb", type=int, default=384)
    p.add_argument("--ready-timeout", type=float, default=300.0)
    p.add_argument("--roll-attempts", type=int, default=RollSettings.backoff_attempts)
    p.add_argument("--broker-only", type=int, default=None, help="replicas of the broker-only pool (none: no pool)")
    p.add_argument("--racks", type=int, default=0)
    p.add_argument("--cruise-control", action="store_true")
    p.add_argument("--listeners", default="plain", help="comma-separated names of listeners.PRESETS")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)  # kafka-python narrates every reconnect
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    lock = DaemonLock(Path(args.state_dir))
    if not lock.acquire():
        print(f"sandbox {args.name} is already running (its daemon holds {args.state_dir}/daemon.lock)",
              file=sys.stderr)
        return 3
    try:
        return asyncio.run(Daemon(args).run())
    finally:
        lock.release()


def node_status(pod: BrokerPod) -> dict[str, Any]:
    """What ``sandbox status`` shows for one node."""
    return {
        "id": pod.node_id,
        "pool": pod.pool,
        "pod": pod.name,
        "uid": pod.uid,
        "pid": pod.node.pid,
        "version": pod.version,
        "roles": sorted(pod.roles),
        "rack": pod.config.static.get("broker.rack"),  # None without spec.kafka.rack
        "ready": pod.is_ready(),
        "crash_looping": pod.is_crash_looping(),
        "restart_count": pod.restart_count,
        "last_exit_code": pod.last_exit_code,
        "injected_fault": pod.injected.to_json() if pod.injected else None,
        "client_port": pod.node.spec.client_port,
        "data_dir": str(pod.node.spec.data_dir),
    }


if __name__ == "__main__":
    sys.exit(main())

