"""A broker-only node pool, racks and the Cruise Control twin, on real brokers through the Kubernetes API.

One sandbox (``up --brokers 3 --broker-only 0 --racks 3 --cruise-control``) serves the module, and
the tests run in file order on purpose, as one story: the broker pool scales 0 -> 1 (broker 3 joins
in zone-0), takes replicas, a scale back to 0 is reverted while it holds them, a throttled
KafkaRebalance ``remove-brokers`` is stopped mid-move, a refreshed one drains the broker, and the
pending scale-down then goes ahead. Data stays small (a few MB): the throttle makes the moves slow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_until
from tests.sandbox.cluster_helpers import StrimziCluster, pod_ready, produce, with_admin

pytestmark = pytest.mark.sandbox

POOL = "brokers"
TOPIC = "payload"
REBALANCES = "kafkarebalances"
ZONE_LABEL = "topology.kubernetes.io/zone"
THROTTLE = 20_000  # bytes/s: a 2 MB partition takes a minute to move, so a stop lands mid-move


@pytest.fixture(scope="module")
def sbx(sandbox_factory: Callable[..., SandboxInfo]) -> Iterator[SandboxInfo]:
    info = sandbox_factory("cc", brokers=3, extra_args=("--broker-only", "0", "--racks", "3", "--cruise-control"))
    try:
        yield info
    finally:
        info.down()  # free the 2 cores for the next module


@pytest.fixture(scope="module")
def cluster(sbx: SandboxInfo) -> Iterator[StrimziCluster]:
    api = sbx.api_client()
    try:
        yield StrimziCluster(api, sbx.namespace, sbx.cluster)
    finally:
        api.close()


def racks(bootstrap: str) -> dict[int, str | None]:
    brokers = with_admin(bootstrap, lambda a: a.describe_cluster())["brokers"]
    return {int(b["broker_id"]): b.get("rack") for b in brokers}


def replicas_on(bootstrap: str, broker: int) -> list[str]:
    topics = with_admin(bootstrap, lambda a: a.describe_topics())
    return [f"{t['name']}-{p['partition_index']}" for t in topics for p in t["partitions"]
            if broker in p["replica_nodes"]]


def in_flight(bootstrap: str) -> dict[Any, Any]:
    moving: dict[Any, Any] = with_admin(bootstrap, lambda a: a.list_partition_reassignments())
    return moving


def throttle_configs(bootstrap: str, broker: int) -> dict[str, str | None]:
    keys = ["leader.replication.throttled.rate", "follower.replication.throttled.rate"]
    res = [ConfigResource(ConfigResourceType.BROKER, str(broker), keys)]
    desc = with_admin(bootstrap, lambda a: a.describe_configs(res, config_filter="all"))["broker"][str(broker)]
    return {k: desc[k]["value"] for k in keys if k in desc and desc[k].get("config_source") == "DYNAMIC_BROKER_CONFIG"}


def create_rebalance(cluster: StrimziCluster, name: str, spec: dict[str, Any]) -> None:
    body = {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaRebalance",
            "metadata": {"name": name, "labels": {"strimzi.io/cluster": cluster.name}}, "spec": spec}
    cluster.custom.create_namespaced_custom_object("kafka.strimzi.io", "v1", cluster.namespace, REBALANCES, body)


def annotate(cluster: StrimziCluster, name: str, value: str) -> None:
    cluster.patch(REBALANCES, name, {"metadata": {"annotations": {"strimzi.io/rebalance": value}}})


def state(cluster: StrimziCluster, name: str) -> str | None:
    conditions = (cluster.get(REBALANCES, name).get("status") or {}).get("conditions") or []
    return next((c["type"] for c in conditions if c.get("status") == "True"), None)


def wait_state(cluster: StrimziCluster, name: str, wanted: str, *, timeout: float = 90.0) -> dict[str, Any]:
    wait_until(lambda: state(cluster, name) == wanted, timeout=timeout, interval=0.3,
               message=f"KafkaRebalance {name} {wanted} (it is {state(cluster, name)})")
    return cluster.get(REBALANCES, name)


def test_sandbox_has_an_empty_broker_pool_and_nodes_in_racks(cluster: StrimziCluster) -> None:
    """--broker-only 0 --racks 3: pool 'brokers' with no nodes; nodes 0..2 in zone-0..2, in Kafka and on the pods."""
    status = cluster.kafka()["status"]
    assert status["kafkaNodePools"] == [{"name": "brokers"}, {"name": "dual-role"}]
    pool = cluster.get("kafkanodepools", POOL)
    assert pool["spec"]["roles"] == ["broker"] and pool["status"]["nodeIds"] == []
    assert racks(cluster.bootstrap()) == {0: "zone-0", 1: "zone-1", 2: "zone-2"}
    pods = cluster.pods()
    assert {name: p.metadata.labels[ZONE_LABEL] for name, p in pods.items()} == {
        "cc-dual-role-0": "zone-0", "cc-dual-role-1": "zone-1", "cc-dual-role-2": "zone-2"}


def test_scaling_the_broker_pool_up_adds_a_broker_only_node_in_its_zone(cluster: StrimziCluster) -> None:
    """spec.replicas 0 -> 1 (a kubectl-style merge patch): broker 3 joins, broker-only, rack zone-0."""
    generation = cluster.kafka()["metadata"]["generation"]
    cluster.patch("kafkanodepools", POOL, {"spec": {"replicas": 1}})
    wait_until(lambda: cluster.get("kafkanodepools", POOL).get("status", {}).get("nodeIds") == [3],
               timeout=180, interval=0.5, message="pool 'brokers' lists node 3")
    cluster.wait_reconciled(generation)
    pod = cluster.pods()["cc-brokers-3"]
    assert pod_ready(pod)
    assert pod.metadata.labels["strimzi.io/broker-role"] == "true"
    assert pod.metadata.labels["strimzi.io/controller-role"] == "false"
    assert pod.metadata.labels[ZONE_LABEL] == "zone-0"
    assert racks(cluster.bootstrap())[3] == "zone-0"


def test_replaced_broker_only_node_comes_back_empty_in_the_same_zone(cluster: StrimziCluster,
                                                                    sbx: SandboxInfo) -> None:
    """strimzi.io/delete-pod-and-pvc on broker 3: a new pod (new uid), same id, still zone-0 (status shows it)."""
    old_uid = cluster.pods()["cc-brokers-3"].metadata.uid
    cluster.annotate_pod("cc-brokers-3", "strimzi.io/delete-pod-and-pvc")
    wait_until(lambda: (p := cluster.pods().get("cc-brokers-3")) is not None and p.metadata.uid != old_uid
               and pod_ready(p), timeout=180, interval=0.5, message="broker 3 replaced and Ready")
    assert cluster.pods()["cc-brokers-3"].metadata.labels[ZONE_LABEL] == "zone-0"
    wait_until(lambda: racks(cluster.bootstrap()).get(3) == "zone-0", timeout=60, interval=0.5,
               message="broker 3 registered again with rack zone-0")
    node = next(n for n in sbx.status()["nodes"] if n["id"] == 3)
    assert (node["pool"], node["roles"], node["rack"]) == ("brokers", ["broker"], "zone-0")


def test_scaling_the_broker_pool_down_is_reverted_while_the_broker_holds_replicas(cluster: StrimziCluster) -> None:
    """1 -> 0 with replicas on broker 3: ScaleDownPreventionCheck, the pod stays."""
    cluster.create_topic(TOPIC, partitions=4, replicas=2)
    cluster.wait_topic_ready(TOPIC)
    boot = cluster.bootstrap()
    assert replicas_on(boot, 3), "Kafka places new partitions on every broker, 3 included"
    for partition in range(4):
        produce(boot, TOPIC, [bytes(1000)] * 2000, partition=partition)  # 2 MB each
    cluster.patch("kafkanodepools", POOL, {"spec": {"replicas": 0}})
    wait_until(lambda: [c for c in cluster.conditions("Warning") if c.get("reason") == "ScaleDownPreventionCheck"],
               timeout=60, interval=0.5, message="ScaleDownPreventionCheck warning")
    warning = next(c for c in cluster.conditions("Warning") if c["reason"] == "ScaleDownPreventionCheck")
    assert warning["message"] == f"Reverting scale-down of KafkaNodePool {POOL} by changing number of replicas to 1"
    assert pod_ready(cluster.pods()["cc-brokers-3"])
    assert cluster.get("kafkanodepools", POOL)["status"]["nodeIds"] == [3]


def test_rebalance_for_an_unknown_broker_is_not_ready_with_the_reason(cluster: StrimziCluster) -> None:
    create_rebalance(cluster, "bad", {"mode": "remove-brokers", "brokers": [7]})
    obj = wait_state(cluster, "bad", "NotReady")
    condition = obj["status"]["conditions"][0]
    assert condition["reason"] == "CruiseControlRestException"
    assert "[7] do not exist" in condition["message"]


def test_throttled_remove_brokers_rebalance_stops_mid_move(cluster: StrimziCluster) -> None:
    """ProposalReady -> approve -> Rebalancing (progress ConfigMap) -> stop: in-flight moves cancelled, no throttle."""
    boot = cluster.bootstrap()
    before = replicas_on(boot, 3)
    create_rebalance(cluster, "drain", {"mode": "remove-brokers", "brokers": [3], "replicationThrottle": THROTTLE,
                                        "concurrentPartitionMovementsPerBroker": 1})
    proposal = wait_state(cluster, "drain", "ProposalReady")
    result = proposal["status"]["optimizationResult"]
    assert result["numReplicaMovements"] == len(before)
    assert result["dataToMoveMB"] >= 2 * len(before) - 1
    assert result["onDemandBalancednessScoreBefore"] < result["onDemandBalancednessScoreAfter"]
    assert {"numLeaderMovements", "excludedTopics"} <= set(result)
    annotate(cluster, "drain", "approve")
    wait_state(cluster, "drain", "Rebalancing")
    assert "strimzi.io/rebalance" not in (cluster.get(REBALANCES, "drain")["metadata"].get("annotations") or {})
    wait_until(lambda: in_flight(boot), timeout=30, interval=0.3, message="a reassignment in flight")
    assert throttle_configs(boot, 3) == {"leader.replication.throttled.rate": str(THROTTLE),
                                         "follower.replication.throttled.rate": str(THROTTLE)}
    progress = cluster.core.read_namespaced_config_map("drain", cluster.namespace).data
    assert {"estimatedTimeToCompletionInMinutes", "completedByteMovementPercentage",
            "executorState.json"} <= set(progress)
    annotate(cluster, "drain", "stop")
    stopped = wait_state(cluster, "drain", "Stopped")
    assert "strimzi.io/rebalance" not in (stopped["metadata"].get("annotations") or {})
    assert not in_flight(boot), "stop cancels the in-flight reassignments"
    assert throttle_configs(boot, 3) == {}, "the throttles are removed when the execution ends"
    assert replicas_on(boot, 3), "a stopped drain leaves the broker partly full"


def test_deleting_a_rebalance_mid_move_cancels_its_moves_and_throttles(cluster: StrimziCluster) -> None:
    """A KafkaRebalance deleted while Rebalancing: its in-flight reassignments and throttles do not outlive it."""
    boot = cluster.bootstrap()
    create_rebalance(cluster, "gone", {"mode": "remove-brokers", "brokers": [3], "replicationThrottle": THROTTLE,
                                       "concurrentPartitionMovementsPerBroker": 1})
    wait_state(cluster, "gone", "ProposalReady")
    annotate(cluster, "gone", "approve")
    wait_state(cluster, "gone", "Rebalancing")
    wait_until(lambda: in_flight(boot), timeout=30, interval=0.3, message="a reassignment in flight")
    cluster.custom.delete_namespaced_custom_object("kafka.strimzi.io", "v1", cluster.namespace, REBALANCES, "gone")
    wait_until(lambda: not in_flight(boot) and throttle_configs(boot, 3) == {}, timeout=30, interval=0.3,
               message="no reassignment in flight and no throttle left")
    configmaps = cluster.core.list_namespaced_config_map(cluster.namespace).items
    assert "gone" not in {c.metadata.name for c in configmaps}, "the progress ConfigMap goes with its owner"


def test_refreshed_rebalance_drains_the_broker_and_the_scale_down_then_happens(cluster: StrimziCluster) -> None:
    """refresh -> ProposalReady -> approve -> Rebalancing -> Ready: broker 3 empty; then pod 3 goes away."""
    boot = cluster.bootstrap()
    cluster.patch(REBALANCES, "drain", {"spec": {"replicationThrottle": None,
                                                 "concurrentPartitionMovementsPerBroker": None}})
    annotate(cluster, "drain", "refresh")
    proposal = wait_state(cluster, "drain", "ProposalReady")
    assert proposal["status"]["optimizationResult"]["numReplicaMovements"] == len(replicas_on(boot, 3))
    annotate(cluster, "drain", "approve")
    done = wait_state(cluster, "drain", "Ready", timeout=180)
    assert "strimzi.io/rebalance" not in (done["metadata"].get("annotations") or {})
    assert done["status"]["progress"] == {"rebalanceProgressConfigMap": "drain"}
    assert replicas_on(boot, 3) == []
    progress = cluster.core.read_namespaced_config_map("drain", cluster.namespace).data
    assert progress["completedByteMovementPercentage"] == "100.0"
    annotate(cluster, "drain", "approve")  # not valid in Ready: ignored, left in place
    wait_until(lambda: "cc-brokers-3" not in cluster.pods(), timeout=120, interval=0.5,
               message="the pending scale-down removes pod 3 once it is empty")
    wait_until(lambda: cluster.get("kafkanodepools", POOL)["status"]["nodeIds"] == [], timeout=60, interval=0.5,
               message="pool 'brokers' lists no node (its status is written when the reconciliation ends)")
    wait_until(lambda: sorted(racks(cluster.bootstrap())) == [0, 1, 2], timeout=60, interval=0.5,
               message="broker 3 unregistered from KRaft")
    assert state(cluster, "drain") == "Ready"
    assert cluster.get(REBALANCES, "drain")["metadata"]["annotations"]["strimzi.io/rebalance"] == "approve"


def test_auto_approved_full_rebalance_runs_without_an_approval(cluster: StrimziCluster) -> None:
    """strimzi.io/rebalance-auto-approval: mode full goes from the proposal to Ready with no annotation."""
    body = {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaRebalance",
            "metadata": {"name": "even", "labels": {"strimzi.io/cluster": cluster.name},
                         "annotations": {"strimzi.io/rebalance-auto-approval": "true"}},
            "spec": {"mode": "full"}}
    cluster.custom.create_namespaced_custom_object("kafka.strimzi.io", "v1", cluster.namespace, REBALANCES, body)
    done = wait_state(cluster, "even", "Ready")
    assert "numReplicaMovements" in done["status"]["optimizationResult"]
    counts: dict[int, int] = {}
    for t in with_admin(cluster.bootstrap(), lambda a: a.describe_topics()):
        for p in t["partitions"]:
            for r in p["replica_nodes"]:
                counts[r] = counts.get(r, 0) + 1
    assert max(counts.values()) - min(counts.values()) <= 1, counts


def test_rebalance_on_a_kafka_without_cruise_control_is_not_ready(cluster: StrimziCluster) -> None:
    """Without spec.cruiseControl: NotReady InvalidResourceException, as Strimzi says it."""
    generation = cluster.patch_kafka({"spec": {"cruiseControl": None}})
    cluster.wait_reconciled(generation)
    create_rebalance(cluster, "no-cc", {"mode": "full"})
    condition = wait_state(cluster, "no-cc", "NotReady")["status"]["conditions"][0]
    assert condition["reason"] == "InvalidResourceException"
    assert condition["message"] == "Kafka resource lacks 'cruiseControl' declaration"
