"""One reconciliation of one Kafka cluster, in the order Strimzi's ``KafkaReconciler`` runs it.

pause check -> initial status -> version check -> config check (Kafka's own verdict on every node's
properties) -> node pools (create / scale up / scale-down check) -> delete-pod-and-pvc (one pod) ->
rolling update (version, config, manual annotation; a crash-looping node with a fix first) ->
dynamic broker config -> scale down -> pods ready -> metadata version -> status, written once at
the end with ``observedGeneration`` = the generation read at the start (docs/strimzi.md §1-§7).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.sandbox.errors import SandboxError
from bot.sandbox.kube.store import ApiError, ObjectStore
from bot.sandbox.node_spec import free_ports
from bot.sandbox.operator import names
from bot.sandbox.operator import status as st
from bot.sandbox.operator.brokerconfig import diff, user_config
from bot.sandbox.operator.cluster import ClusterRuntime, pod_revision
from bot.sandbox.operator.config_check import KafkaConfigChecker, invalid_config
from bot.sandbox.operator.events import RestartReason, publish_restart_events
from bot.sandbox.operator.faults import FaultRules
from bot.sandbox.operator.kafka_admin import AdminError
from bot.sandbox.operator.listeners import Listener, ListenerError, parse_listeners
from bot.sandbox.operator.nodepools import PoolRequest, assign_node_ids
from bot.sandbox.operator.pods import BrokerPod
from bot.sandbox.operator.roller import Roller, RollSettings
from bot.sandbox.operator.scaling import NodePoolScaler, pool_roles
from bot.sandbox.operator.status_writer import ReconcileState, write_final_status, write_status
from bot.sandbox.operator.upgrade import plan_version_change
from bot.sandbox.operator.versions import (
    DEFAULT_KAFKA_VERSION,
    check_supported,
    metadata_level,
    metadata_line,
    metadata_name,
    release_line,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OperatorSettings:
    reconcile_interval_s: float = 3.0  # STRIMZI_FULL_RECONCILIATION_INTERVAL_MS is 120 s; tests want less
    debounce_s: float = 0.3
    ready_timeout_s: float = 300.0
    heap_mb: int = 384
    roll: RollSettings = field(default_factory=RollSettings)
    # Zones of the emulated Kubernetes nodes: with spec.kafka.rack, node <id> runs in zone-<id % zones>.
    zones: int = 1


class KafkaReconciler:
    def __init__(self, store: ObjectStore, *, namespace: str, name: str, work_root: Path,
                 settings: OperatorSettings, faults: FaultRules | None = None,
                 config_checker: KafkaConfigChecker | None = None) -> None:
        self.store = store
        self.namespace = namespace
        self.name = name
        self.work_dir = work_root / namespace / name
        self.settings = settings
        self.faults = faults
        self.config_checker = config_checker or KafkaConfigChecker()
        self.runtime: ClusterRuntime | None = None
        self._rack_key: str | None = None  # spec.kafka.rack.topologyKey as of this reconciliation
        self._listeners: list[Listener] = parse_listeners(None)
        self._declared_pools: set[str] = set()

    # -- entry point -------------------------------------------------------------------------
    async def reconcile(self) -> bool:
        """Reconcile once; False when the Kafka resource is gone (its brokers are stopped)."""
        try:
            kafka = self.store.get(names.KAFKA_GROUP, names.KAFKAS, self.namespace, self.name)
        except ApiError as e:
            if e.status != 404:
                raise
            await self.shutdown(delete_objects=True)
            return False
        meta = kafka["metadata"]
        generation = int(meta.get("generation", 1))
        old_status = kafka.get("status") or {}
        if names.is_true(meta.get("annotations"), names.ANNO_PAUSE):
            write_status(self.store, namespace=self.namespace, name=self.name,
                         status={**old_status, "conditions": [st.paused()],
                                 "observedGeneration": old_status.get("observedGeneration", 0)})
            return True
        if not old_status.get("conditions"):
            write_status(self.store, namespace=self.namespace, name=self.name,
                         status={"conditions": [st.creating()]})
        state = ReconcileState(kafka_version=old_status.get("kafkaVersion"),
                               metadata_version=old_status.get("kafkaMetadataVersion"))
        try:
            await self._reconcile(kafka, state)
            conditions = [*state.warnings, st.ready()]
        except (st.ReconcileFailure, SandboxError, AdminError, ApiError) as e:
            log.warning("Kafka %s/%s: reconciliation failed: %s", self.namespace, self.name, e)
            conditions = [*state.warnings, st.error_condition(e)]
        except Exception as e:  # a bug in the twin: still end the reconciliation the Strimzi way
            log.exception("Kafka %s/%s: reconciliation crashed", self.namespace, self.name)
            conditions = [*state.warnings, st.error_condition(e)]
        write_final_status(self.store, namespace=self.namespace, name=self.name, runtime=self.runtime,
                           declared_pools=self._declared_pools, generation=generation, conditions=conditions,
                           state=state)
        return True

    async def shutdown(self, *, delete_objects: bool = False) -> None:
        runtime, self.runtime = self.runtime, None
        if runtime is None:
            return
        await runtime.shutdown()
        if delete_objects:  # the Kafka is gone: its podsets (and, through them, pods) go too
            for pool in runtime.pools():
                runtime.delete_podset(pool)

    # -- the steps ---------------------------------------------------------------------------
    async def _reconcile(self, kafka: dict[str, Any], state: ReconcileState) -> None:
        spec = (kafka.get("spec") or {}).get("kafka") or {}
        version = str(spec.get("version") or DEFAULT_KAFKA_VERSION)
        check_supported(version)
        cfg, dropped = user_config(spec.get("config"))
        if dropped:
            log.warning("Kafka %s: ignoring options Strimzi manages itself: %s", self.name, ", ".join(dropped))
        desired_md = spec.get("metadataVersion")
        if desired_md is not None:
            desired_md = str(desired_md)
            try:
                metadata_level(desired_md)
            except ValueError as e:
                raise st.ReconcileFailure("InvalidResourceException", f"Invalid metadataVersion: {e}") from e
        try:
            self._listeners = parse_listeners(spec.get("listeners"))
        except ListenerError as e:
            raise st.ReconcileFailure("InvalidResourceException", f"The Kafka cluster {self.name} is invalid: "
                                      f"[{e}]") from e
        pools = self._node_pools()
        self._declared_pools = {str(p["metadata"]["name"]) for p in pools}  # an empty pool is listed too
        self._rack_key = str((spec.get("rack") or {}).get("topologyKey") or "") or None
        if self.runtime is not None:
            self.runtime.rack_topology_key = self._rack_key
            self.runtime.security.set_listeners(self._listeners)
        if self.runtime is None:
            await self._create_cluster(pools, version, cfg, desired_md)
        runtime = self.runtime
        assert runtime is not None
        await self._check_config(runtime, list(runtime.pods.values()), version, cfg)
        current_md = metadata_name(await runtime.admin.metadata_level())
        state.metadata_version = current_md
        change = plan_version_change([p.version for p in runtime.pods.values()], version, desired_md, current_md)
        state.warnings.extend(change.warnings)

        scaler = NodePoolScaler(runtime, kafka, pools, ready_timeout_s=self.settings.ready_timeout_s)
        removals = await scaler.scale_up_and_check_down(
            version=version, metadata_version=current_md, state_warnings=state.warnings,
            config_for=lambda pod: runtime.node_config(pod, cfg))
        await self._delete_pod_and_pvc(runtime, version, cfg, current_md)
        await self._rolling_update(runtime, version, cfg)
        await self._dynamic_config(runtime, version, cfg)
        await scaler.scale_down(removals, version=version)
        await self._pods_ready(runtime)
        state.metadata_version = await self._metadata_version(runtime, change.metadata_version, current_md,
                                                              state)
        if metadata_line(change.metadata_version) != release_line(version):  # KafkaSpecChecker's rule
            state.warnings.append(st.warning(
                "KafkaMetadataVersion",
                "Metadata version is older than the Kafka version used by the cluster, which suggests that an "
                "upgrade is incomplete."))
        state.kafka_version = version

    def _node_pools(self) -> list[dict[str, Any]]:
        pools, _ = self.store.list(names.KAFKA_GROUP, names.NODE_POOLS, self.namespace,
                                   label_selector=f"{names.LABEL_CLUSTER}={self.name}")
        if not pools:
            raise st.ReconcileFailure(
                "InvalidResourceException",
                f"The Kafka cluster {self.name} is invalid: no KafkaNodePool with the label "
                f"{names.LABEL_CLUSTER}={self.name} (KRaft clusters need node pools)")
        return pools

    async def _create_cluster(self, pools: list[dict[str, Any]], version: str, cfg: dict[str, str],
                              desired_md: str | None) -> None:
        """A new cluster: format every node with one cluster id, start them together, wait for all."""
        plan = plan_version_change([], version, desired_md, None)
        # Strimzi's NodeIdAssignor at creation too: strimzi.io/next-node-ids first, else the lowest free id.
        warnings: list[dict[str, Any]] = []
        assignment = assign_node_ids(PoolRequest(
            name=pool["metadata"]["name"], replicas=int((pool.get("spec") or {}).get("replicas") or 0),
            current_ids=(), next_ids=tuple(NodePoolScaler.ids_annotation(
                pool["metadata"].get("annotations") or {}, names.ANNO_NEXT_NODE_IDS, pool["metadata"]["name"],
                warnings))) for pool in pools)
        roles_of = {pool["metadata"]["name"]: pool_roles(pool) for pool in pools}
        nodes = sorted(((pool_name, nid, roles_of[pool_name]) for pool_name, a in assignment.items()
                        for nid in a.node_ids), key=lambda node: node[1])
        if not any(names.ROLE_CONTROLLER in r for _, _, r in nodes):
            raise st.ReconcileFailure("InvalidResourceException", f"The Kafka cluster {self.name} is invalid: [At "
                                      "least one KafkaNodePool with the controller role and at least one replica "
                                      "is required when KRaft mode is enabled]")
        if not any(names.ROLE_BROKER in r for _, _, r in nodes):
            raise st.ReconcileFailure("InvalidResourceException", f"The Kafka cluster {self.name} is invalid: [At "
                                      "least one KafkaNodePool with the broker role and at least one replica is "
                                      "required when KRaft mode is enabled]")
        # A brand-new cluster gets new storage: left-overs of an earlier cluster of this name would
        # carry another cluster id and the brokers would refuse to start.
        shutil.rmtree(self.work_dir, ignore_errors=True)
        runtime = ClusterRuntime(self.store, namespace=self.namespace, name=self.name, work_dir=self.work_dir,
                                 heap_mb=self.settings.heap_mb, faults=self.faults, zones=self.settings.zones)
        runtime.rack_topology_key = self._rack_key
        runtime.security.set_listeners(self._listeners)  # the CAs, before any broker config is rendered
        ports = free_ports(2 * len(nodes))
        port_of = {nid: (ports[2 * i], ports[2 * i + 1]) for i, (_, nid, _) in enumerate(nodes)}
        runtime.set_quorum([(nid, port_of[nid][1]) for _, nid, r in nodes if names.ROLE_CONTROLLER in r])
        pods = [runtime.new_pod(pool, nid, roles, ports=port_of[nid]) for pool, nid, roles in nodes]
        # The config check runs while the storage is formatted (a JVM each, seconds): it must pass
        # before any broker starts, and a failed check leaves no runtime, pods or podsets behind.
        outcomes = await asyncio.gather(
            self._check_config(runtime, pods, version, cfg),
            *(p.format_storage(version=version, config=runtime.node_config(p, cfg),
                               metadata_version=plan.metadata_version) for p in pods),
            return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        self.runtime = runtime
        for pool_name in sorted({p for p, _, _ in nodes}):
            runtime.apply_podset(pool_name, {nid: (version, r) for p, nid, r in nodes if p == pool_name})
        await asyncio.gather(*(
            p.create(version=version, config=runtime.node_config(p, cfg), revision=pod_revision(version, p.roles),
                     metadata_version=plan.metadata_version, owner=runtime.podset_owner(p.pool))
            for p in pods))
        ready = await asyncio.gather(*(p.wait_ready(self.settings.ready_timeout_s) for p in pods))
        if not all(ready):
            slow = [p for p, ok in zip(pods, ready, strict=True) if not ok]
            raise st.ReconcileFailure("FatalProblem", f"Pods {', '.join(p.name for p in slow)} did not become ready; "
                                      f"{slow[0].log_excerpt()}")

    async def _check_config(self, runtime: ClusterRuntime, pods: list[BrokerPod], version: str,
                            cfg: dict[str, str]) -> None:
        """InvalidResourceException with Kafka's words when a node would refuse its properties."""
        configs = [p.node.rendered_config(runtime.node_config(p, cfg)) for p in pods]
        # Keyed by what can change the verdict: ports, paths and cluster ids differ between creation
        # attempts, and a retried failed creation must not start a JVM every pass.
        key = (version, sorted(cfg.items()), sorted((sorted(p.roles), p.node_id) for p in pods),
               runtime.security.listeners)
        problems = await self.config_checker.problems(version, configs, cache_key=repr(key))
        if problems:
            raise invalid_config(self.namespace, self.name, problems)

    async def _delete_pod_and_pvc(self, runtime: ClusterRuntime, version: str, cfg: dict[str, str],
                                  current_md: str) -> None:
        """``strimzi.io/delete-pod-and-pvc``: one pod per reconciliation (ManualPodCleaner)."""
        for pod in [p for _, p in sorted(runtime.pods.items())]:
            if not names.is_true(pod.annotations(), names.ANNO_DELETE_POD_AND_PVC):
                continue
            log.info("deleting pod %s and its PVC %s as annotated", pod.name, pod.pvc)
            await pod.recreate_with_empty_storage(
                version=version, config=runtime.node_config(pod, cfg), revision=pod_revision(version, pod.roles),
                metadata_version=current_md, owner=runtime.podset_owner(pod.pool))
            if not await pod.wait_ready(self.settings.ready_timeout_s):
                raise st.ReconcileFailure("FatalProblem", f"Error while waiting for pod {pod.name} to become ready")
            return

    async def _rolling_update(self, runtime: ClusterRuntime, version: str, cfg: dict[str, str]) -> None:
        manual_pools = {pool for pool in runtime.pools()
                        if names.is_true(runtime.podset_annotations(pool), names.ANNO_MANUAL_ROLL)}
        plan: dict[int, tuple[BrokerPod, list[RestartReason]]] = {}
        for nid, pod in sorted(runtime.pods.items()):
            reasons = []
            if pod.version != version or pod.revision != pod_revision(version, pod.roles):
                reasons.append(RestartReason.POD_HAS_OLD_REVISION)
            if pod.pool in manual_pools or names.is_true(pod.annotations(), names.ANNO_MANUAL_ROLL):
                reasons.append(RestartReason.MANUAL_ROLLING_UPDATE)
            if diff(pod.config, runtime.node_config(pod, cfg)).needs_restart:
                reasons.append(RestartReason.CONFIG_CHANGE_REQUIRES_RESTART)
            if reasons:
                plan[nid] = (pod, reasons)  # a crash-looping pod with a fix is rolled first (roll_order)
            elif not pod.is_ready() and not await self._becomes_ready(pod):
                # KafkaRoller: a stuck pod with nothing to change cannot be fixed by a restart, and
                # rolling others meanwhile would only take more of the cluster down.
                raise st.ReconcileFailure("FatalProblem", f"Pod {pod.name} is unschedulable or is not starting")
        for pool in runtime.pools():
            runtime.apply_podset(pool, {p.node_id: (version, p.roles) for p in runtime.pool_pods(pool)})
        if plan:
            await self._roller(runtime, version, cfg).roll(plan)
        for pool in manual_pools:  # the PodSet annotation is removed by the operator once rolled
            runtime.clear_podset_annotation(pool, names.ANNO_MANUAL_ROLL)

    async def _becomes_ready(self, pod: BrokerPod) -> bool:
        """KafkaRoller gives a starting pod time to get ready; one in CrashLoopBackOff is stuck."""
        if pod.is_crash_looping():
            return False
        return await pod.wait_ready(self.settings.ready_timeout_s)

    def _roller(self, runtime: ClusterRuntime, version: str, cfg: dict[str, str]) -> Roller:
        async def restart(pod: BrokerPod, reasons: list[RestartReason]) -> None:
            publish_restart_events(self.store, namespace=self.namespace, cluster=self.name, pod=pod.name,
                                   reasons=reasons)
            await pod.restart(version=version, config=runtime.node_config(pod, cfg),
                              revision=pod_revision(version, pod.roles), owner=runtime.podset_owner(pod.pool))

        return Roller(runtime.admin, self.settings.roll, restart)

    async def _dynamic_config(self, runtime: ClusterRuntime, version: str, cfg: dict[str, str]) -> None:
        """Changes Kafka can take live go through IncrementalAlterConfigs; a refusal means a restart."""
        refused: dict[int, tuple[BrokerPod, list[RestartReason]]] = {}
        for nid, pod in sorted(runtime.pods.items()):
            change = diff(pod.config, runtime.node_config(pod, cfg))
            if not change.has_dynamic:
                continue
            try:
                await runtime.admin.alter_broker_configs(nid, change.dynamic_set, change.dynamic_delete)
            except AdminError as e:
                if e.transient:  # not a refusal: the broker or the client is catching up; next time
                    raise
                log.warning("broker %d refused a dynamic config change (%s): it will be restarted", nid, e)
                refused[nid] = (pod, [RestartReason.CONFIG_CHANGE_REQUIRES_RESTART])
                continue
            pod.config.dynamic.update(change.dynamic_set)
            for key in change.dynamic_delete:
                pod.config.dynamic.pop(key, None)
            log.info("broker %d reconfigured without restart: %s", nid,
                     ", ".join([*change.dynamic_set, *change.dynamic_delete]))
        if refused:
            await self._roller(runtime, version, cfg).roll(refused)

    async def _pods_ready(self, runtime: ClusterRuntime) -> None:
        for pod in [p for _, p in sorted(runtime.pods.items())]:
            if pod.is_ready():
                continue
            if not await self._becomes_ready(pod):
                if pod.is_failing():
                    raise st.ReconcileFailure("FatalProblem", f"Pod {pod.name} is unschedulable or is not starting")
                raise st.ReconcileFailure(
                    "TimeoutException", f"Exceeded timeout of {int(self.settings.ready_timeout_s * 1000)}ms while "
                    f"waiting for Pods resource {pod.name} in namespace {self.namespace} to be ready")

    async def _metadata_version(self, runtime: ClusterRuntime, desired: str, current: str,
                                state: ReconcileState) -> str:
        """KRaftMetadataManager: UpdateFeatures on metadata.version only; a failure is only a warning."""
        want, have = metadata_level(desired), metadata_level(current)
        if want == have:
            return current
        try:
            log.info("Updating metadata version from %s to %s", current, desired)
            await runtime.admin.update_metadata_level(want, downgrade=want < have)
            return metadata_name(want)
        except AdminError as e:
            log.warning("Failed to update metadata version to %s (the current version is %s): %s", desired,
                        current, e)
            state.warnings.append(st.warning("MetadataUpdateFailed", f"Failed to update metadata version to {desired}"))
            try:
                return metadata_name(await runtime.admin.metadata_level())
            except AdminError:
                return current
