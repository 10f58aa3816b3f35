"""An in-memory Strimzi operator and Kafka cluster behind the bot's ports (ClusterGateway, KafkaAdmin).

For what the sandbox cannot run (a ZooKeeper cluster of Strimzi 0.45) and for fast runs of the
upgrade and config runbooks through the real worker. It is written from Strimzi's documented
behaviour (docs/strimzi.md §3-§4), not from the bot's rules, so it can disagree with them:

- a spec change bumps the generation; the operator notices it, rolls every pod that needs it one at
  a time (the version changed, or a config key Kafka only reads at start-up), waiting for each to be
  Ready and checking that no other broker is down first; it applies the other config keys live;
- KRaft: metadataVersion applies live once every pod runs a version that supports it; ZooKeeper:
  ``inter.broker.protocol.version`` / ``log.message.format.version`` are static keys (a roll each);
- status.observedGeneration / kafkaVersion / kafkaMetadataVersion / Ready are written when a
  reconciliation ends;
- a pod annotated for a manual rolling update (``request_pod_roll``, only while it still has the
  expected uid) is restarted by the operator on its next round; with ``instant_rolls`` (no
  operator task) it is replaced at once;
- a pod restart is a new uid that is not Ready for a few ticks; ``crash(node)`` kills a broker (same
  uid, CrashLoopBackOff) until ``recover(node)``;
- IncrementalAlterConfigs with validate_only is judged as a broker judges a live update (Kafka's
  ``DynamicBrokerConfig``): a key it cannot change live is refused, a number must parse as its type,
  and a thread pool may at most double or halve at a time (``DynamicThreadPool``). Keys it does not
  know pass, as they do on a real broker. Every such request is recorded in ``validations``;
- the roller restarts pods that are not Ready first, without availability checks; a stuck pod
  (crash loop) with nothing to change fails the reconciliation (``FatalProblem``), as does a
  restarted pod that does not come up;
- ``poison``: config values the "brokers" cannot start with (a value Kafka accepts but that keeps
  the broker from starting), ``broken_versions`` versions they cannot start on: a pod restarted
  with one crash-loops;
- pods carry their creation, start and Ready times from ``clock``, as Kubernetes reports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from handlers.ports import (
    BrokerPod,
    ClusterRef,
    KafkaResourceStatus,
    KafkaSpecEdit,
    PatchRejected,
    SecretLookup,
)
from runbooks.rules.versions import default_metadata, metadata_level, release_line
from tests.fakes.broker_admin import BrokerAdmin
from tests.fakes.broker_configs import CATALOGUE
from tests.fakes.node_pools import NodePools
from tests.fakes.replicas import ReplicaMoves


def _text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass
class FakePod:
    node: int
    version: str
    static: dict[str, str]
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    ready: bool = True
    terminating: bool = False
    crashed: bool = False
    restart_count: int = 0
    incarnations: int = 1  # 1 + operator restarts
    created_at: datetime | None = None
    started_at: datetime | None = None
    ready_since: datetime | None = None


class _ReconcileFailure(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class FakeStrimzi(ReplicaMoves, NodePools, BrokerAdmin):
    """One cluster, ``name``, in namespace kafka: both ports, and the operator as an asyncio task.
    Replica moves and throttles are :class:`~tests.fakes.replicas.ReplicaMoves`'s; its topic "orders"
    is the snapshot's. The rest of the KafkaAdmin port (snapshot, broker configs, features) is
    :class:`~tests.fakes.broker_admin.BrokerAdmin`'s."""

    def __init__(self, name: str = "legacy", *, version: str = "3.8.1", brokers: int = 3, zookeeper: bool = True,
                 config: dict[str, Any] | None = None, tick_s: float = 0.01, restart_ticks: int = 5,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), startup_s: float = 5.0,
                 instant_rolls: bool = False, delay_s: float = 0.0) -> None:
        self.name = name
        self.zookeeper = zookeeper
        self.spec: dict[str, Any] = {"version": version, "config": dict(config or {})}
        self.generation = 1
        self.observed = 1
        self.kafka_version = version
        self.metadata = None if zookeeper else default_metadata(version)
        self.ready = True
        self.cruise_control = False  # spec.cruiseControl
        self.topic_operator = True  # spec.entityOperator.topicOperator, as Strimzi's examples deploy it
        self.reason = ""
        self.message = ""
        self.clock = clock
        born = clock() - timedelta(hours=1)
        self.pods = {n: FakePod(n, version, self._rendered(), created_at=born, started_at=born,
                                ready_since=born + timedelta(seconds=startup_s)) for n in range(brokers)}
        self.poison: dict[str, str] = {}
        # Kafka's view of a broker's ISR membership where it differs from its pod's readiness: Kafka
        # notices a broker leave or rejoin the ISR only after replica.lag.time.max.ms.
        self.isr_view: dict[int, bool] = {}
        self.broken_versions: set[str] = set()
        self._look_again = False
        self.dynamic: dict[str, str] = {}
        self.restart_order: list[int] = []  # every operator restart, in order
        self.validations: list[tuple[int, dict[str, str]]] = []  # (broker, values) of each validate-only request
        self.tick_s = tick_s
        self.restart_ticks = restart_ticks
        self._task: asyncio.Task[None] | None = None
        # A pod annotated for a manual rolling update: the operator restarts it on its next round.
        # ``instant_rolls``: the pod is replaced at once (a new uid, Ready), with no operator running:
        # a run goes through every engine and worker step in milliseconds.
        self.instant_rolls = instant_rolls
        self.annotated: set[int] = set()
        self.rolls: dict[int, int] = {}  # node -> manual rolls requested (annotations that took)
        self.under_replicated = False  # broker 0 is out of the ISR of orders-0
        self.delay_s = delay_s  # a slow Kubernetes API and Kafka (kafka_status, validations)
        # Secrets in its namespace, by name: their keys (the values never matter to the bot's use cases
        # that look them up); a name in ``forbidden_secrets`` is refused as the bot's Role refuses it.
        self.secrets: dict[str, tuple[str, ...]] = {}
        self.forbidden_secrets: set[str] = set()
        self.secret_reads: list[str] = []
        self.init_replica_moves()
        self.init_node_pools(sorted(self.pods))
        self.create_topic("orders", {i: sorted(self.pods) for i in range(3)})
        for i, partition in self.topics["orders"].items():
            partition.leader = i % brokers

    def live_brokers(self) -> list[int]:
        return [n for n, p in sorted(self.pods.items()) if p.ready]

    # -- the operator -------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._operate())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _rendered(self) -> dict[str, str]:
        return {k: _text(v) for k, v in (self.spec.get("config") or {}).items()}

    def _needs_restart(self, pod: FakePod) -> bool:
        if pod.node in self.annotated:
            return True
        if pod.version != self.spec["version"]:
            return True
        wanted = self._rendered()
        static = {k for k, (_, dynamic) in CATALOGUE.items() if not dynamic}
        return any(wanted.get(k) != pod.static.get(k) for k in static)

    async def _operate(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            if self.generation > self.observed or self._look_again or any(
                    self._needs_restart(p) for p in self.pods.values()):
                self._look_again = False
                await self._reconcile()

    def _name(self, pod: FakePod) -> str:
        return f"{self.name}-kafka-{pod.node}"

    async def _roll(self) -> None:
        controller = max(self.pods)  # the "active controller" rolls last, as in Strimzi
        queue = sorted((p for p in self.pods.values() if self._needs_restart(p)),
                       key=lambda p: (p.ready, p.node == controller, p.node))  # unready pods first
        for pod in queue:
            while pod.ready and any(not p.ready for p in self.pods.values() if p is not pod):
                stuck = [p for p in self.pods.values() if p.crashed and not self._needs_restart(p)]
                if stuck:
                    raise _ReconcileFailure("FatalProblem", f"Pod {self._name(stuck[0])} is unschedulable or is not "
                                                            "starting")
                await asyncio.sleep(self.tick_s)  # polls like canRoll
            await self._restart(pod)
            if pod.crashed:
                raise _ReconcileFailure("FatalProblem", f"Error while waiting for restarted pod {self._name(pod)} "
                                                        "to become ready")

    async def _reconcile(self) -> None:
        generation = self.generation
        try:
            await self._roll()
        except _ReconcileFailure as failure:
            self.ready, self.reason, self.message, self.observed = False, failure.reason, failure.message, generation
            return
        wanted = self._rendered()
        self.dynamic = {k: v for k, v in wanted.items() if CATALOGUE.get(k, ("", False))[1]}
        if not self.zookeeper:
            desired = self.spec.get("metadataVersion")
            line_default = default_metadata(self.spec["version"])
            target = desired if desired is not None else line_default
            if all(release_line(p.version) == release_line(self.spec["version"]) for p in self.pods.values()) \
                    and metadata_level(target) <= metadata_level(line_default):
                self.metadata = target
        self.kafka_version = self.spec["version"]
        self.observed = generation
        self.ready, self.reason, self.message = True, "", ""

    async def _restart(self, pod: FakePod) -> None:
        self.restart_order.append(pod.node)
        self.annotated.discard(pod.node)
        pod.ready, pod.terminating = False, True
        await asyncio.sleep(self.tick_s * self.restart_ticks)
        pod.uid, pod.terminating, pod.crashed, pod.restart_count = str(uuid.uuid4()), False, False, 0
        pod.version, pod.static = self.spec["version"], self._rendered()
        pod.created_at = pod.started_at = self.clock()
        pod.ready_since = None
        pod.incarnations += 1
        await asyncio.sleep(self.tick_s * self.restart_ticks)
        if pod.version in self.broken_versions or any(pod.static.get(k) == v for k, v in self.poison.items()):
            pod.crashed, pod.restart_count = True, 1
            return
        pod.ready, pod.ready_since = True, self.clock()

    # -- chaos --------------------------------------------------------------------------------
    def crash(self, node: int) -> None:
        pod = self.pods[node]
        pod.ready, pod.crashed = False, True
        pod.restart_count += 1

    def recover(self, node: int) -> None:
        pod = self.pods[node]
        pod.ready, pod.crashed, pod.ready_since = True, False, self.clock()
        self._look_again = True

    # -- node pools (tests.fakes.node_pools) ------------------------------------------------------
    def add_node(self, node: int) -> None:
        now = self.clock()
        self.pods[node] = FakePod(node, self.spec["version"], self._rendered(), created_at=now, started_at=now,
                                  ready_since=now)

    def remove_node(self, node: int) -> None:
        self.pods.pop(node, None)
        self.broker_throttles.pop(node, None)

    def replace_node(self, node: int) -> None:
        pod = self.pods[node]
        pod.uid, pod.incarnations = str(uuid.uuid4()), pod.incarnations + 1
        pod.ready, pod.crashed, pod.restart_count = True, False, 0
        pod.created_at = pod.started_at = pod.ready_since = self.clock()
        self.wipe_replicas(node)

    def pod_uid(self, pod_name: str) -> tuple[int, str] | None:
        pod = next((p for p in self.pods.values() if self._name(p) == pod_name), None)
        return None if pod is None else (pod.node, pod.uid)

    def brokers_in_use(self) -> set[int]:
        return {b for ps in self.topics.values() for p in ps.values() for b in (*p.replicas, *(p.target or ()))}

    # -- ClusterGateway -----------------------------------------------------------------------
    async def _slow(self) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)

    async def kafka_status(self, cluster: ClusterRef) -> KafkaResourceStatus:
        await self._slow()
        return KafkaResourceStatus(
            ready=self.ready, reason=self.reason, message=self.message, generation=self.generation,
            observed_generation=self.observed,
            kafka_version=self.kafka_version, metadata_version=self.metadata,
            spec_kafka_version=self.spec["version"], spec_metadata_version=self.spec.get("metadataVersion"),
            operator_version="0.45.0" if self.zookeeper else "1.2.0", bootstrap_servers=f"{self.name}:9092",
            spec={**self.spec, "config": dict(self.spec.get("config") or {})}, warnings=tuple(self.scale_warnings),
            cruise_control=self.cruise_control, topic_operator=self.topic_operator,
        )

    async def secret_keys(self, cluster: ClusterRef, name: str) -> SecretLookup:
        self.secret_reads.append(name)
        if name in self.forbidden_secrets:
            return SecretLookup(name=name, found=False, forbidden=f'secrets "{name}" is forbidden: User '
                                f'"system:serviceaccount:bots:chatops" cannot get resource "secrets" in the '
                                f'namespace "{cluster.namespace}"')
        if name not in self.secrets:
            return SecretLookup(name=name, found=False)
        return SecretLookup(name=name, found=True, keys=tuple(sorted(self.secrets[name])))

    async def broker_pods(self, cluster: ClusterRef) -> list[BrokerPod]:
        return [BrokerPod(node_id=p.node, name=self._name(p), uid=p.uid, ready=p.ready,
                          kafka_version=p.version, restart_count=p.restart_count, terminating=p.terminating,
                          waiting_reason="CrashLoopBackOff" if p.crashed else "", created_at=p.created_at,
                          started_at=None if p.crashed or p.terminating else p.started_at,
                          ready_since=p.ready_since if p.ready else None)
                for p in sorted(self.pods.values(), key=lambda p: p.node)]

    async def request_pod_roll(self, cluster: ClusterRef, pod_name: str, expected_uid: str) -> bool:
        pod = next((p for p in self.pods.values() if self._name(p) == pod_name), None)
        if pod is None or pod.uid != expected_uid:
            return False
        self.rolls[pod.node] = self.rolls.get(pod.node, 0) + 1
        if self.instant_rolls:
            pod.uid, pod.incarnations = str(uuid.uuid4()), pod.incarnations + 1
            pod.created_at = pod.started_at = pod.ready_since = self.clock()
            self.restart_order.append(pod.node)
        else:
            self.annotated.add(pod.node)
        return True

    async def patch_kafka_spec(self, cluster: ClusterRef, edits: Sequence[KafkaSpecEdit], *,
                               expect: Sequence[KafkaSpecEdit] = (), expected_generation: int | None = None) -> int:
        if expected_generation is not None and expected_generation != self.generation:
            raise PatchRejected(f"generation is {self.generation}, not {expected_generation}")
        for want in expect:
            if _text(self._at(want.path)) != _text(want.value):
                raise PatchRejected(f"{'.'.join(want.path)} is {self._at(want.path)}, not {want.value}")
        changed = False
        for e in edits:
            parent: dict[str, Any] = self.spec
            for part in e.path[:-1]:
                parent = parent.setdefault(part, {})
            if e.value is None:
                changed |= parent.pop(e.path[-1], None) is not None
            elif parent.get(e.path[-1]) != e.value:
                parent[e.path[-1]], changed = e.value, True
        if changed:
            self.generation += 1
        return self.generation

    def _at(self, path: Sequence[str]) -> Any:
        node: Any = self.spec
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        return node
