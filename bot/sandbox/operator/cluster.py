"""What the operator keeps about one running Kafka cluster: its pods, quorum, admin clients, podsets.

Strimzi keeps this in Kubernetes (pods, PVCs, podsets, the cluster CA...) and re-reads it each
reconciliation; the twin's brokers live and die with the sandbox daemon, so it keeps the process
side in memory and mirrors it into the store as Strimzi's objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from pathlib import Path
from typing import Any

from bot.sandbox import jars
from bot.sandbox.kube.store import ApiError, ObjectStore
from bot.sandbox.node import KafkaNode
from bot.sandbox.node_spec import NodeSpec, free_ports, new_cluster_id
from bot.sandbox.operator import names
from bot.sandbox.operator.faults import FaultRules
from bot.sandbox.operator.kafka_admin import OperatorAdmin
from bot.sandbox.operator.pods import BrokerPod
from bot.sandbox.operator.security import ClusterSecurity

log = logging.getLogger(__name__)


def pod_revision(version: str, roles: frozenset[str]) -> str:
    """Stand-in for Strimzi's pod-template hash: what changes the pod definition (not the config)."""
    return hashlib.sha256(f"{version}|{','.join(sorted(roles))}".encode()).hexdigest()[:8]


def zone_of(node_id: int, zones: int) -> str:
    """The zone (rack) the twin schedules node ``node_id`` in."""
    return f"zone-{node_id % max(1, zones)}"


class ClusterRuntime:
    def __init__(self, store: ObjectStore, *, namespace: str, name: str, work_dir: Path, heap_mb: int,
                 faults: FaultRules | None = None, zones: int = 1) -> None:
        self.store = store
        self.faults = faults
        self.namespace = namespace
        self.name = name
        self.work_dir = work_dir
        self.heap_mb = heap_mb
        self.cluster_id = new_cluster_id()
        self.voters = ""  # static quorum, fixed when the cluster is created
        self.voter_ids: frozenset[int] = frozenset()
        self.pods: dict[int, BrokerPod] = {}
        self.zones = max(1, zones)
        self.rack_topology_key: str | None = None  # spec.kafka.rack.topologyKey; None: no broker.rack
        self.admin = OperatorAdmin(self.bootstrap, client_id="strimzi-cluster-operator")
        self.topic_admin = OperatorAdmin(self.bootstrap, client_id="strimzi-topic-operator")
        self.user_admin = OperatorAdmin(self.bootstrap, client_id="strimzi-user-operator")
        # Listeners, CAs, broker certificates (the operator's admin clients stay on the internal listener).
        self.security = ClusterSecurity(store, namespace=namespace, cluster=name, directory=work_dir / "security")

    # -- views -------------------------------------------------------------------------------
    def broker_pods(self) -> list[BrokerPod]:
        return [p for _, p in sorted(self.pods.items()) if p.is_broker]

    def broker_addresses(self) -> list[tuple[str, int]]:
        return [p.address for p in self.broker_pods()]

    def bootstrap(self) -> str:
        return ",".join(f"{h}:{p}" for h, p in self.broker_addresses())

    def pool_pods(self, pool: str) -> list[BrokerPod]:
        return [p for _, p in sorted(self.pods.items()) if p.pool == pool]

    def pools(self) -> set[str]:
        return {p.pool for p in self.pods.values()}

    # -- nodes -------------------------------------------------------------------------------
    def set_quorum(self, voters: list[tuple[int, int]]) -> None:
        """(node id, controller port) of the voters, chosen once at creation (static quorum)."""
        self.voters = ",".join(f"{nid}@127.0.0.1:{port}" for nid, port in sorted(voters))
        self.voter_ids = frozenset(nid for nid, _ in voters)

    def new_pod(self, pool: str, node_id: int, roles: frozenset[str], *, ports: tuple[int, int] | None = None
                ) -> BrokerPod:
        client_port, controller_port = ports or tuple(free_ports(2))
        node_dir = self.work_dir / f"{pool}-{node_id}"
        spec = NodeSpec(node_id=node_id, cluster_id=self.cluster_id, client_port=client_port,
                        controller_port=controller_port, voters=self.voters, data_dir=node_dir / "data",
                        work_dir=node_dir / "work", heap_mb=self.heap_mb)
        pod = BrokerPod(self.store, KafkaNode(spec), namespace=self.namespace, cluster=self.name, pool=pool,
                        roles=roles, on_change=lambda: self.publish_podset_status(pool), faults=self.faults)
        self.pods[node_id] = pod
        return pod

    def node_config(self, pod: BrokerPod, user_config: dict[str, str]) -> dict[str, str]:
        """The user's config plus what the node's roles demand of listeners (Strimzi owns those)."""
        cfg = dict(user_config)
        spec = pod.node.spec
        if self.rack_topology_key:
            # Strimzi's init container copies the zone label of the Kubernetes node the pod runs on
            # into broker.rack; the twin's "nodes" are zone-<id % zones>, so a replaced or restarted
            # node keeps its rack.
            cfg["broker.rack"] = zone_of(pod.node_id, self.zones)
        if pod.is_broker and pod.is_controller:
            return {**cfg, **self.security.broker_config(pod, cfg)}
        if pod.is_broker:
            cfg["process.roles"] = "broker"
            cfg["listeners"] = f"PLAINTEXT://{spec.host}:{spec.client_port}"
            cfg.update(self.security.broker_config(pod, cfg))
        else:
            cfg["process.roles"] = "controller"
            cfg["listeners"] = f"CONTROLLER://{spec.host}:{spec.controller_port}"
            cfg["advertised.listeners"] = f"CONTROLLER://{spec.host}:{spec.controller_port}"
        return cfg

    async def unregister_broker(self, node_id: int, version: str) -> None:
        """Remove a scaled-down broker's registration (Strimzi's KafkaNodeUnregistration).

        kafka-python has no UnregisterBroker call, so Kafka's own ClusterTool does it. A stale
        registration would otherwise linger as a fenced broker and block metadata.version upgrades.
        """
        cmd = [jars.require_java(), "-Xmx128m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
               "-cp", f"{jars.libs_dir(version)}/*", "org.apache.kafka.tools.ClusterTool", "unregister",
               "--bootstrap-server", self.bootstrap(), "--id", str(node_id)]
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            log.warning("unregistering broker %d timed out", node_id)
            return
        if proc.returncode != 0:
            log.warning("unregistering broker %d failed: %s", node_id, out.decode(errors="replace")[-500:])

    # -- podsets -----------------------------------------------------------------------------
    def kafka_owner(self) -> dict[str, Any] | None:
        try:
            kafka = self.store.get(names.KAFKA_GROUP, names.KAFKAS, self.namespace, self.name)
        except ApiError:
            return None
        return {"apiVersion": kafka["apiVersion"], "kind": "Kafka", "name": self.name,
                "uid": kafka["metadata"]["uid"], "controller": False, "blockOwnerDeletion": False}

    def podset_owner(self, pool: str) -> dict[str, Any] | None:
        try:
            podset = self.store.get(names.PODSET_GROUP, names.PODSETS, self.namespace,
                                    names.podset_name(self.name, pool))
        except ApiError:
            return None
        return {"apiVersion": names.PODSET_API_VERSION, "kind": "StrimziPodSet", "name": podset["metadata"]["name"],
                "uid": podset["metadata"]["uid"], "controller": True, "blockOwnerDeletion": False}

    def apply_podset(self, pool: str, desired: dict[int, tuple[str, frozenset[str]]]) -> None:
        """Create or update the pool's StrimziPodSet with the desired pods (id -> (version, roles))."""
        podset = names.podset_name(self.name, pool)
        selector = names.pool_selector_labels(self.name, pool)
        pods = []
        for nid, (version, roles) in sorted(desired.items()):
            pods.append({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {
                    "name": names.pod_name(self.name, pool, nid),
                    "labels": names.pod_labels(self.name, pool, nid, broker=names.ROLE_BROKER in roles,
                                               controller=names.ROLE_CONTROLLER in roles),
                    "annotations": {names.ANNO_KAFKA_VERSION: version,
                                    names.ANNO_REVISION: pod_revision(version, roles)},
                },
            })
        spec = {"selector": {"matchLabels": selector}, "pods": pods}
        try:
            self.store.merge_patch(names.PODSET_GROUP, names.PODSETS, self.namespace, podset, {"spec": spec})
        except ApiError as e:
            if e.status != 404:
                raise
            owner = self.kafka_owner()
            labels = {**selector, "app.kubernetes.io/name": "kafka", "app.kubernetes.io/instance": self.name,
                      "app.kubernetes.io/part-of": f"strimzi-{self.name}",
                      "app.kubernetes.io/managed-by": "strimzi-cluster-operator"}
            labels.pop(names.LABEL_POOL_NAME, None)
            labels[names.LABEL_POOL_NAME] = pool
            body = {"apiVersion": names.PODSET_API_VERSION, "kind": "StrimziPodSet",
                    "metadata": {"name": podset, "namespace": self.namespace, "labels": labels,
                                 "ownerReferences": [owner] if owner else []},
                    "spec": spec}
            self.store.create(names.PODSET_GROUP, names.PODSETS, self.namespace, body)
        self.publish_podset_status(pool)

    def delete_podset(self, pool: str) -> None:
        with contextlib.suppress(ApiError):
            self.store.delete(names.PODSET_GROUP, names.PODSETS, self.namespace, names.podset_name(self.name, pool))

    def publish_podset_status(self, pool: str) -> None:
        """pods / readyPods / currentPods, as the StrimziPodSet controller reports them."""
        name = names.podset_name(self.name, pool)
        try:
            podset = self.store.get(names.PODSET_GROUP, names.PODSETS, self.namespace, name)
        except ApiError:
            return
        wanted = {p["metadata"]["name"]: p["metadata"]["annotations"].get(names.ANNO_REVISION)
                  for p in podset.get("spec", {}).get("pods", [])}
        pods = [p for p in self.pool_pods(pool) if p.name in wanted]
        status = {
            "observedGeneration": podset["metadata"].get("generation", 1),
            "pods": len(wanted),
            "readyPods": sum(1 for p in pods if p.is_ready()),
            "currentPods": sum(1 for p in pods if p.uid and p.revision == wanted[p.name]),
        }
        if podset.get("status") != status:
            with contextlib.suppress(ApiError):
                self.store.merge_patch(names.PODSET_GROUP, names.PODSETS, self.namespace, name,
                                       {"status": status}, subresource="status")

    def podset_annotations(self, pool: str) -> dict[str, str]:
        try:
            podset = self.store.get(names.PODSET_GROUP, names.PODSETS, self.namespace,
                                    names.podset_name(self.name, pool))
        except ApiError:
            return {}
        return dict(podset["metadata"].get("annotations") or {})

    def clear_podset_annotation(self, pool: str, key: str) -> None:
        with contextlib.suppress(ApiError):
            self.store.merge_patch(names.PODSET_GROUP, names.PODSETS, self.namespace,
                                   names.podset_name(self.name, pool), {"metadata": {"annotations": {key: None}}})

    # -- teardown ----------------------------------------------------------------------------
    async def shutdown(self) -> None:
        """Stop every JVM (SIGTERM together, SIGKILL stragglers); objects stay."""
        self.admin.close()
        self.topic_admin.close()
        self.user_admin.close()
        # Together, not one by one: the sandbox is going away, nobody needs the data moved. 20 s is
        # plenty for a controlled shutdown; stragglers get SIGKILL.
        await asyncio.gather(*(p.shutdown(20.0) for p in self.pods.values()), return_exceptions=True)
