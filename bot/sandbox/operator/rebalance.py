"""KafkaRebalance, as Strimzi's KafkaRebalanceAssemblyOperator drives it against Cruise Control.

States (one condition whose type is the state, status "True") and the ``strimzi.io/rebalance``
values each one acts on (docs/strimzi.md §6)::

    New -> PendingProposal (stop, refresh) -> ProposalReady (approve, refresh)
        -> Rebalancing (stop, refresh) -> Ready (refresh);  Stopped (refresh);  NotReady (refresh)

A valid annotation is removed once acted on; one that is not valid in the current state is left in
place and ignored. ``strimzi.io/rebalance-auto-approval: "true"`` goes from the proposal straight
to Rebalancing. Without ``spec.cruiseControl`` on the Kafka the resource is NotReady. A template
(``strimzi.io/rebalance-template: "true"``) is never acted on. While Rebalancing, the ConfigMap
named after the KafkaRebalance carries the progress (``rebalance_executor.Progress``). The twin's
Cruise Control is its own planner (``rebalance_proposal``) executing real reassignments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from bot.sandbox.kube.store import ApiError, ObjectStore
from bot.sandbox.operator import names
from bot.sandbox.operator import status as st
from bot.sandbox.operator.cluster import ClusterRuntime
from bot.sandbox.operator.kafka_admin import AdminError, OperatorAdmin
from bot.sandbox.operator.rebalance_executor import Execution
from bot.sandbox.operator.rebalance_proposal import PartitionLoad, Proposal, ProposalError, propose

log = logging.getLogger(__name__)

NEW, PENDING, PROPOSAL_READY, REBALANCING = "New", "PendingProposal", "ProposalReady", "Rebalancing"
READY, STOPPED, NOT_READY, PAUSED = "Ready", "Stopped", "NotReady", "ReconciliationPaused"
STATES = (NEW, PENDING, PROPOSAL_READY, REBALANCING, READY, STOPPED, NOT_READY, PAUSED)
VALID_ACTIONS = {
    NEW: (), PENDING: ("stop", "refresh"), PROPOSAL_READY: ("approve", "refresh"), REBALANCING: ("stop", "refresh"),
    READY: ("refresh",), STOPPED: ("refresh",), NOT_READY: ("refresh",), PAUSED: (),
}
ANNO_REBALANCE = "strimzi.io/rebalance"
ANNO_AUTO_APPROVAL = "strimzi.io/rebalance-auto-approval"
ANNO_TEMPLATE = "strimzi.io/rebalance-template"
DEFAULT_PER_BROKER = 5  # Cruise Control's num.concurrent.partition.movements.per.broker


def rebalance_state(obj: dict[str, Any]) -> str:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") in STATES and cond.get("status") == "True":
            return str(cond["type"])
    return NEW


class RebalanceOperator:
    """The KafkaRebalances of one Kafka cluster (and the twin's Cruise Control behind them)."""

    def __init__(self, store: ObjectStore, *, namespace: str, cluster: str,
                 runtime: Callable[[], ClusterRuntime | None]) -> None:
        self.store = store
        self.namespace = namespace
        self.cluster = cluster
        self._runtime = runtime
        self._admin: OperatorAdmin | None = None
        self.executions: dict[str, Execution] = {}
        self._orphans: list[Execution] = []  # executions of deleted KafkaRebalances, still winding down

    def _cruise_control(self) -> OperatorAdmin | None:
        runtime = self._runtime()
        if runtime is None:
            return None
        if self._admin is None:
            self._admin = OperatorAdmin(runtime.bootstrap, client_id="strimzi-cruise-control")
        return self._admin

    async def shutdown(self) -> None:
        running = [*self.executions.values(), *self._orphans]
        for execution in running:
            execution.task.cancel()
        for execution in running:
            await execution.wait()
        self.executions.clear()
        self._orphans.clear()
        if self._admin is not None:
            await asyncio.to_thread(self._admin.close)

    # -- reconciliation ----------------------------------------------------------------------
    async def reconcile_all(self) -> None:
        items, _ = self.store.list(names.KAFKA_GROUP, names.REBALANCES, self.namespace,
                                   label_selector=f"{names.LABEL_CLUSTER}={self.cluster}")
        present = {i["metadata"]["name"] for i in items}
        for gone in [n for n in self.executions if n not in present]:  # deleted while Rebalancing
            orphan = self.executions.pop(gone)
            orphan.stop()  # it cancels its in-flight moves and clears its throttles by itself
            self._orphans.append(orphan)
        self._orphans = [o for o in self._orphans if not o.task.done()]
        for item in sorted(items, key=lambda i: i["metadata"]["name"]):
            try:
                await self.reconcile(item)
            except AdminError as e:  # Kafka is busy (a roll): try again on the next pass
                log.info("KafkaRebalance %s postponed: %s", item["metadata"]["name"], e)

    async def reconcile(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        name = meta["name"]
        annotations = meta.get("annotations") or {}
        if names.is_true(annotations, ANNO_TEMPLATE):
            return
        state = rebalance_state(obj)
        if names.is_true(annotations, names.ANNO_PAUSE):
            if state != PAUSED:
                self._write(obj, PAUSED)
            return
        action = str(annotations.get(ANNO_REBALANCE, "")).strip()
        if action and action not in VALID_ACTIONS[state]:
            action = ""  # left in place and ignored, as Strimzi does
        kafka = self._kafka()
        if kafka is None:
            if state != NOT_READY:
                self._write(obj, NOT_READY, reason="NoSuchResourceException",
                            message=f"Kafka resource '{self.cluster}' identified by label '{names.LABEL_CLUSTER}' "
                                    f"does not exist in namespace {self.namespace}.")
            return
        if "cruiseControl" not in (kafka.get("spec") or {}) and state not in (NOT_READY, STOPPED, READY):
            await self._end_execution(name)
            self._write(obj, NOT_READY, reason="InvalidResourceException",
                        message="Kafka resource lacks 'cruiseControl' declaration")
            self._done_with(obj, action)
            return
        if state == PAUSED:
            state = NEW
        if action == "stop":
            stopped = self.executions.get(name)
            await self._end_execution(name)
            if stopped is not None:  # what moved before the stop stays visible
                self._publish_progress(obj, stopped)
            self._write(obj, STOPPED, keep_result=True)
        elif action == "refresh" or state == NEW:
            await self._end_execution(name)
            self._write(obj, PENDING, session=str(uuid.uuid4()))
        elif state == PENDING:
            await self._proposal_ready(obj, annotations)
        elif action == "approve":
            await self._approve(obj)
        elif state == REBALANCING:
            self._follow(obj)
            return
        else:
            return
        self._done_with(obj, action)

    async def _proposal_ready(self, obj: dict[str, Any], annotations: dict[str, str]) -> None:
        try:
            proposal, _ = await self._propose(obj)
        except ProposalError as e:
            self._write(obj, NOT_READY, reason=e.reason, message=str(e))
            return
        self._write(obj, PROPOSAL_READY, result=self._result(obj, proposal))
        self._config_map(obj, {"brokerLoad.json": "{}"})
        if names.is_true(annotations, ANNO_AUTO_APPROVAL):
            await self._approve(self._get(obj) or obj)

    async def _approve(self, obj: dict[str, Any]) -> None:
        """Cruise Control re-checks the proposal against the cluster as it is now, then executes it."""
        admin = self._cruise_control()
        try:
            proposal, current = await self._propose(obj)
        except ProposalError as e:
            self._write(obj, NOT_READY, reason=e.reason, message=str(e))
            return
        if admin is None:
            return
        spec = obj.get("spec") or {}
        throttle = spec.get("replicationThrottle")
        session = str(uuid.uuid4())
        execution = Execution(admin, proposal, current, throttle=int(throttle) if throttle else None,
                              per_broker=int(spec.get("concurrentPartitionMovementsPerBroker") or DEFAULT_PER_BROKER),
                              session=session)
        self.executions[obj["metadata"]["name"]] = execution
        log.info("KafkaRebalance %s: executing %d replica movement(s)", obj["metadata"]["name"],
                 proposal.num_replica_movements)
        self._write(obj, REBALANCING, session=session, result=self._result(obj, proposal))
        self._publish_progress(obj, execution)

    def _follow(self, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        execution = self.executions.get(name)
        if execution is None:  # the operator lost it (cannot happen in one daemon): say so
            self._write(obj, NOT_READY, reason="CruiseControlRestException",
                        message="The Cruise Control user task of this rebalance is no longer known", keep_result=True)
            return
        self._publish_progress(obj, execution)
        if execution.outcome is None:
            return
        self.executions.pop(name, None)
        if execution.outcome == "done":
            self._write(obj, READY, keep_result=True)
        elif execution.outcome.startswith("failed"):
            self._write(obj, NOT_READY, reason="CruiseControlRestException", message=execution.outcome[8:],
                        keep_result=True)

    async def _end_execution(self, name: str) -> None:
        execution = self.executions.pop(name, None)
        if execution is not None:
            execution.stop()
            await execution.wait()

    # -- Cruise Control's view of the cluster ------------------------------------------------
    async def _propose(self, obj: dict[str, Any]) -> tuple[Proposal, dict[tuple[str, int], tuple[int, ...]]]:
        admin = self._cruise_control()
        if admin is None:
            raise ProposalError("CruiseControlRestException", "Cruise Control is not running yet (no brokers)")
        try:
            racks = await admin.broker_racks()
            partitions = await admin.partitions()
            sizes = await admin.partition_sizes(racks)
        except AdminError as e:
            if e.transient:  # a broker restarting: ask again on the next pass rather than fail the resource
                raise
            raise ProposalError("CruiseControlRestException", f"Cruise Control cannot read the cluster: {e}") from e
        loads = [PartitionLoad(p.topic, p.partition, p.replicas,
                               max((sizes.get((p.topic, p.partition)) or {0: 0}).values()))
                 for p in partitions]
        spec = obj.get("spec") or {}
        proposal = propose(str(spec.get("mode") or "full"), [int(b) for b in spec.get("brokers") or []], racks, loads)
        return proposal, {(p.topic, p.partition): p.replicas for p in partitions}

    # -- objects -----------------------------------------------------------------------------
    def _kafka(self) -> dict[str, Any] | None:
        try:
            return self.store.get(names.KAFKA_GROUP, names.KAFKAS, self.namespace, self.cluster)
        except ApiError:
            return None

    def _get(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self.store.get(names.KAFKA_GROUP, names.REBALANCES, self.namespace, obj["metadata"]["name"])
        except ApiError:
            return None

    def _result(self, obj: dict[str, Any], proposal: Proposal) -> dict[str, Any]:
        return proposal.optimization_result(load_config_map=obj["metadata"]["name"])

    def _write(self, obj: dict[str, Any], state: str, *, reason: str | None = None, message: str | None = None,
               session: str | None = None, result: dict[str, Any] | None = None, keep_result: bool = False) -> None:
        current = self._get(obj)
        if current is None:
            return
        old = current.get("status") or {}
        status: dict[str, Any] = {
            "conditions": st.keep_transition_times([st.condition(state, reason=reason, message=message)],
                                                   old.get("conditions")),
            "observedGeneration": int(current["metadata"].get("generation", 1)),
        }
        if session or (keep_result and old.get("sessionId")):
            status["sessionId"] = session or old.get("sessionId")
        if result is not None or (keep_result and old.get("optimizationResult")):
            status["optimizationResult"] = result if result is not None else old["optimizationResult"]
        if state in (PROPOSAL_READY, REBALANCING, READY, STOPPED) and ("optimizationResult" in status):
            status["progress"] = {"rebalanceProgressConfigMap": current["metadata"]["name"]}
        if st.without_times(status) == st.without_times(old):
            return
        if state != rebalance_state(current):
            log.info("KafkaRebalance %s/%s: %s -> %s", self.namespace, current["metadata"]["name"],
                     rebalance_state(current), state)
        current["status"] = status
        with contextlib.suppress(ApiError):
            self.store.replace(names.KAFKA_GROUP, names.REBALANCES, self.namespace, current["metadata"]["name"],
                               current, subresource="status")

    def _done_with(self, obj: dict[str, Any], action: str) -> None:
        """A valid annotation is removed once acted on."""
        if not action:
            return
        with contextlib.suppress(ApiError):
            self.store.merge_patch(names.KAFKA_GROUP, names.REBALANCES, self.namespace, obj["metadata"]["name"],
                                   {"metadata": {"annotations": {ANNO_REBALANCE: None}}})

    def _publish_progress(self, obj: dict[str, Any], execution: Execution) -> None:
        self._config_map(obj, execution.progress.config_map_data(
            throttle=execution.throttle, per_broker=execution.per_broker, session=execution.session))

    def _config_map(self, obj: dict[str, Any], data: dict[str, str]) -> None:
        name = obj["metadata"]["name"]
        try:
            existing = self.store.get(names.CORE_GROUP, names.CONFIG_MAPS, self.namespace, name)
        except ApiError:
            existing = None
        if existing is not None:
            if {**(existing.get("data") or {}), **data} != existing.get("data"):
                self.store.merge_patch(names.CORE_GROUP, names.CONFIG_MAPS, self.namespace, name, {"data": data})
            return
        owner = {"apiVersion": names.KAFKA_API_VERSION, "kind": "KafkaRebalance", "name": name,
                 "uid": obj["metadata"].get("uid"), "controller": False, "blockOwnerDeletion": False}
        body = {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": self.namespace, "ownerReferences": [owner],
                             "labels": {names.LABEL_CLUSTER: self.cluster, names.LABEL_KIND: "KafkaRebalance"}},
                "data": data}
        with contextlib.suppress(ApiError):
            self.store.create(names.CORE_GROUP, names.CONFIG_MAPS, self.namespace, body)
