"""The simulated Strimzi operator against real brokers, driven through the real kubernetes client.

One sandbox (3 dual-role nodes, Kafka 4.2.2) serves the whole module, and the tests run in file
order on purpose: each leaves the cluster Ready for the next (topic, manual roll, upgrade, config,
scale up, scale down, delete-pod-and-pvc, pause). A sandbox start costs tens of seconds on 2 cores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_until
from tests.sandbox.cluster_helpers import (
    PodReadinessRecorder,
    StrimziCluster,
    consume_all,
    end_offsets,
    jvm_cmdline,
    pod_ready,
    produce,
    with_admin,
)

pytestmark = pytest.mark.sandbox

POOL = "dual-role"


@pytest.fixture(scope="module")
def sbx(sandbox_factory: Callable[..., SandboxInfo]) -> Iterator[SandboxInfo]:
    info = sandbox_factory("ops", kafka_version="4.2.2", brokers=3)
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


def pod(n: int) -> str:
    return f"ops-{POOL}-{n}"


def broker_config(bootstrap: str, broker: int, key: str) -> str | None:
    res = [ConfigResource(ConfigResourceType.BROKER, str(broker), [key])]
    desc = with_admin(bootstrap, lambda a: a.describe_configs(res, config_filter="all"))
    return desc["broker"][str(broker)][key]["value"]


def test_new_kafka_is_ready_with_strimzi_status(cluster: StrimziCluster, sbx: SandboxInfo) -> None:
    """A fresh sandbox's Kafka carries Strimzi's status fields, pods, podset and PVCs."""
    status = cluster.kafka()["status"]
    assert [c["type"] for c in status["conditions"]] == ["Ready"]
    assert status["observedGeneration"] == cluster.kafka()["metadata"]["generation"]
    assert status["kafkaVersion"] == "4.2.2"
    assert status["kafkaMetadataVersion"] == "4.2-IV1"
    assert status["operatorLastSuccessfulVersion"] == "1.2.0"
    assert status["kafkaNodePools"] == [{"name": POOL}]
    assert status["listeners"][0]["name"] == "plain"
    assert status["listeners"][0]["bootstrapServers"] == sbx.bootstrap_servers
    assert status["clusterId"]
    labels = cluster.pods()[pod(0)].metadata.labels
    assert labels["strimzi.io/pool-name"] == POOL and labels["strimzi.io/broker-role"] == "true"
    assert labels["strimzi.io/controller-name"] == f"ops-{POOL}" and labels["strimzi.io/name"] == "ops-kafka"
    podset = cluster.custom.get_namespaced_custom_object("core.strimzi.io", "v1", "kafka", "strimzipodsets",
                                                         f"ops-{POOL}")
    assert podset["status"] == {"observedGeneration": podset["metadata"]["generation"], "pods": 3,
                                "readyPods": 3, "currentPods": 3}
    pvcs = {p.metadata.name for p in cluster.core.list_namespaced_persistent_volume_claim("kafka").items}
    assert pvcs == {f"data-{pod(n)}" for n in range(3)}
    pool = cluster.get("kafkanodepools", POOL)["status"]
    assert pool["nodeIds"] == [0, 1, 2] and pool["replicas"] == 3


def test_kafkatopic_becomes_a_topic_that_takes_produce_and_consume(cluster: StrimziCluster) -> None:
    """A KafkaTopic becomes a real topic (partitions, RF, config) and records go through it."""
    cluster.create_topic("orders", partitions=3, replicas=3, config={"retention.ms": 3600000})
    status = cluster.wait_topic_ready("orders")
    assert status["topicName"] == "orders" and len(status["topicId"]) == 22
    boot = cluster.bootstrap()
    described = with_admin(boot, lambda a: a.describe_topics(["orders"]))[0]
    assert len(described["partitions"]) == 3
    assert all(len(p["replica_nodes"]) == 3 for p in described["partitions"])
    cfg = with_admin(boot, lambda a: a.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, "orders", ["retention.ms"])], config_filter="all"))
    assert cfg["topic"]["orders"]["retention.ms"]["value"] == "3600000"
    values = [f"order-{i}".encode() for i in range(50)]
    produce(boot, "orders", values)
    assert sorted(consume_all(boot, "orders", len(values))) == sorted(values)


def test_manual_rolling_update_restarts_only_the_annotated_pod(cluster: StrimziCluster) -> None:
    """strimzi.io/manual-rolling-update on a pod: that pod gets a new uid and a restart event; others keep theirs."""
    before = cluster.pod_uids()
    cluster.annotate_pod(pod(1), "strimzi.io/manual-rolling-update")
    wait_until(lambda: cluster.pod_uids().get(pod(1)) not in (None, before[pod(1)]) and
               pod_ready(cluster.pods()[pod(1)]), timeout=120, interval=0.5, message="pod 1 recreated and Ready")
    after = cluster.pod_uids()
    assert after[pod(0)] == before[pod(0)] and after[pod(2)] == before[pod(2)]
    assert "strimzi.io/manual-rolling-update" not in (cluster.pods()[pod(1)].metadata.annotations or {})
    events = [e for e in cluster.restart_events() if e.related.name == pod(1)]
    assert [e.reason for e in events] == ["ManualRollingUpdate"]
    assert events[0].regarding.kind == "Kafka" and events[0].regarding.name == "ops"
    assert events[0].note == f"Rolling Pod {pod(1)} due to Pod was manually annotated to be rolled"


def test_metadata_version_newer_than_the_running_kafka_is_refused_with_a_warning(cluster: StrimziCluster) -> None:
    """metadataVersion 4.3-IV0 on Kafka 4.2.2: the current level stays, with a KafkaMetadataVersion warning."""
    generation = cluster.patch_kafka({"spec": {"kafka": {"metadataVersion": "4.3-IV0"}}})
    status = cluster.wait_reconciled(generation)
    assert status["kafkaMetadataVersion"] == "4.2-IV1"
    warnings = [c for c in status["conditions"] if c["type"] == "Warning"]
    assert [w["reason"] for w in warnings] == ["KafkaMetadataVersion"]
    assert warnings[0]["message"].startswith("Desired metadata version (4.3-IV0) is newer than the used Kafka "
                                             "version (4.2.2)")
    features = with_admin(cluster.bootstrap(), lambda a: a.describe_features())
    assert features["metadata.version"]["finalized"][1] == 29


def test_version_upgrade_rolls_each_broker_once_then_metadata_version_applies_live(
        cluster: StrimziCluster, sbx: SandboxInfo) -> None:
    """4.2.2 -> 4.3.1 with a pinned metadataVersion: one pod at a time, each once, new jars; then MV live."""
    names = {pod(n) for n in range(3)}
    events_before = {e.metadata.name for e in cluster.restart_events()}
    with PodReadinessRecorder(cluster) as recorder:
        cluster.patch_kafka({"spec": {"kafka": {"metadataVersion": "4.2-IV1"}}})
        generation = cluster.patch_kafka({"spec": {"kafka": {"version": "4.3.1"}}})
        status = cluster.wait_reconciled(generation, timeout=400)
        time.sleep(1.0)  # let the watch deliver the last readiness change
    assert recorder.max_not_ready(names) == 1, "two brokers were down at the same time"
    for name in names:
        assert len(recorder.uids(name)) == 2, f"{name} was not restarted exactly once: {recorder.uids(name)}"
    assert status["kafkaVersion"] == "4.3.1"
    assert status["kafkaMetadataVersion"] == "4.2-IV1"  # pinned: unchanged by the roll
    assert [c["reason"] for c in status["conditions"] if c["type"] == "Warning"] == ["KafkaMetadataVersion"]
    new_events = [e for e in cluster.restart_events() if e.metadata.name not in events_before]
    assert sorted((e.related.name, e.reason) for e in new_events) == [(n, "PodHasOldRevision") for n in sorted(names)]
    for node in sbx.status()["nodes"]:
        assert node["version"] == "4.3.1"
        assert "/4.3.1/libs/*" in jvm_cmdline(node["pid"]), "the JVM does not run the 4.3.1 jars"
    for p in cluster.pods().values():
        assert p.metadata.annotations["strimzi.io/kafka-version"] == "4.3.1"

    uids = cluster.pod_uids()
    generation = cluster.patch_kafka({"spec": {"kafka": {"metadataVersion": "4.3-IV0"}}})
    status = cluster.wait_reconciled(generation)
    assert status["kafkaMetadataVersion"] == "4.3-IV0"
    assert not [c for c in status["conditions"] if c["type"] == "Warning"]
    assert cluster.pod_uids() == uids, "raising metadataVersion must not restart anything"
    features = with_admin(cluster.bootstrap(), lambda a: a.describe_features())
    assert features["metadata.version"]["finalized"][1] == 30
    assert "finalized" not in features.get("kraft.version", {}), "kraft.version must stay 0 (static quorum)"


def test_metadata_downgrade_kafka_refuses_is_a_warning_not_a_failure(cluster: StrimziCluster) -> None:
    """metadataVersion below 4.3-IV0 (which has metadata changes): Kafka refuses; Warning MetadataUpdateFailed."""
    uids = cluster.pod_uids()
    generation = cluster.patch_kafka({"spec": {"kafka": {"metadataVersion": "4.2-IV1"}}})
    status = cluster.wait_reconciled(generation)
    assert status["kafkaMetadataVersion"] == "4.3-IV0"
    warnings = {c["reason"]: c["message"] for c in status["conditions"] if c["type"] == "Warning"}
    assert warnings["MetadataUpdateFailed"] == "Failed to update metadata version to 4.2-IV1"
    generation = cluster.patch_kafka({"spec": {"kafka": {"metadataVersion": "4.3-IV0"}}})
    status = cluster.wait_reconciled(generation)
    assert not [c for c in status["conditions"] if c["type"] == "Warning"]
    assert cluster.pod_uids() == uids


def test_dynamic_broker_config_applies_without_restart(cluster: StrimziCluster) -> None:
    """A dynamically updatable broker config is set through IncrementalAlterConfigs, no pod restarts."""
    uids = cluster.pod_uids()
    generation = cluster.patch_kafka({"spec": {"kafka": {"config": {"log.retention.ms": 7200000}}}})
    cluster.wait_reconciled(generation)
    boot = cluster.bootstrap()
    for broker in range(3):
        assert broker_config(boot, broker, "log.retention.ms") == "7200000"
    assert cluster.pod_uids() == uids


def test_static_broker_config_change_rolls_with_config_reason(cluster: StrimziCluster) -> None:
    """A config Kafka cannot change live rolls every broker with reason ConfigChangeRequiresRestart."""
    events_before = {e.metadata.name for e in cluster.restart_events()}
    uids = cluster.pod_uids()
    generation = cluster.patch_kafka({"spec": {"kafka": {"config": {"auto.create.topics.enable": True}}}})
    cluster.wait_reconciled(generation, timeout=400)
    after = cluster.pod_uids()
    assert all(after[name] != uids[name] for name in uids)
    reasons = [e.reason for e in cluster.restart_events() if e.metadata.name not in events_before]
    assert sorted(reasons) == ["ConfigChangeRequiresRestart"] * 3
    assert broker_config(cluster.bootstrap(), 0, "auto.create.topics.enable") == "true"


def test_scale_up_adds_a_broker_that_takes_traffic(cluster: StrimziCluster) -> None:
    """KafkaNodePool 3 -> 4: node 3 joins (broker-only, static quorum) and leads partitions that take records."""
    generation = cluster.kafka()["metadata"]["generation"]
    cluster.patch("kafkanodepools", POOL, {"spec": {"replicas": 4}})
    wait_until(lambda: cluster.get("kafkanodepools", POOL).get("status", {}).get("nodeIds") == [0, 1, 2, 3],
               timeout=180, interval=0.5, message="node pool status lists node 3")
    cluster.wait_reconciled(generation)
    new_pod = cluster.pods()[pod(3)]
    assert pod_ready(new_pod)
    assert new_pod.metadata.labels["strimzi.io/broker-role"] == "true"
    assert new_pod.metadata.labels["strimzi.io/controller-role"] == "false"
    boot = cluster.bootstrap()
    assert len(boot.split(",")) == 4
    cluster.create_topic("spread", partitions=8, replicas=2)
    cluster.wait_topic_ready("spread")
    partitions = with_admin(boot, lambda a: a.describe_topics(["spread"]))[0]["partitions"]
    led_by_3 = [p["partition_index"] for p in partitions if p["leader_id"] == 3]
    assert led_by_3, f"broker 3 leads no partition of 'spread': {partitions}"
    produce(boot, "spread", [b"x"] * 10, partition=led_by_3[0])
    assert end_offsets(boot, "spread", 8)[led_by_3[0]] == 10


def test_scale_down_is_reverted_while_the_broker_holds_replicas(cluster: StrimziCluster) -> None:
    """4 -> 3 while node 3 holds replicas: reverted in memory with Strimzi's ScaleDownPreventionCheck warning."""
    generation = cluster.kafka()["metadata"]["generation"]
    cluster.patch("kafkanodepools", POOL, {"spec": {"replicas": 3}})
    wait_until(lambda: [c for c in cluster.conditions("Warning") if c.get("reason") == "ScaleDownPreventionCheck"],
               timeout=60, interval=0.5, message="ScaleDownPreventionCheck warning")
    warning = next(c for c in cluster.conditions("Warning") if c["reason"] == "ScaleDownPreventionCheck")
    assert warning["message"] == f"Reverting scale-down of KafkaNodePool {POOL} by changing number of replicas to 4"
    assert cluster.conditions("Ready"), "a reverted scale-down does not fail the reconciliation"
    assert int(cluster.kafka()["status"]["observedGeneration"]) >= generation
    assert pod_ready(cluster.pods()[pod(3)])
    assert cluster.get("kafkanodepools", POOL)["status"]["nodeIds"] == [0, 1, 2, 3]


def test_scale_down_goes_ahead_once_the_broker_is_empty(cluster: StrimziCluster) -> None:
    """Deleting the KafkaTopic empties node 3 (finalizer deletes the topic); then the scale-down happens."""
    cluster.custom.delete_namespaced_custom_object("kafka.strimzi.io", "v1", "kafka", "kafkatopics", "spread")
    wait_until(lambda: "spread" not in with_admin(cluster.bootstrap(), lambda a: a.list_topics()),
               timeout=60, interval=0.5, message="topic 'spread' deleted")
    wait_until(lambda: pod(3) not in cluster.pods(), timeout=120, interval=0.5, message="pod 3 removed")
    wait_until(lambda: not cluster.conditions("Warning") and cluster.conditions("Ready"), timeout=60, interval=0.5,
               message="Ready without warnings")
    assert cluster.get("kafkanodepools", POOL)["status"]["nodeIds"] == [0, 1, 2]
    brokers = with_admin(cluster.bootstrap(), lambda a: a.describe_cluster())["brokers"]
    assert sorted(b["broker_id"] for b in brokers) == [0, 1, 2], "node 3 must be unregistered from KRaft"


def test_delete_pod_and_pvc_gives_the_same_broker_id_an_empty_log_dir(cluster: StrimziCluster,
                                                                      sbx: SandboxInfo) -> None:
    """strimzi.io/delete-pod-and-pvc: new pod and PVC, data dir wiped and reformatted, same node id back."""
    node = next(n for n in sbx.status()["nodes"] if n["id"] == 2)
    data_dir = Path(node["data_dir"])
    marker = data_dir / "written-before-the-wipe"
    marker.write_text("x")
    meta_before = (data_dir / "meta.properties").read_text()
    pvc_uid = cluster.core.read_namespaced_persistent_volume_claim(f"data-{pod(2)}", "kafka").metadata.uid
    pod_uid = cluster.pod_uids()[pod(2)]
    cluster.annotate_pod(pod(2), "strimzi.io/delete-pod-and-pvc")
    wait_until(lambda: cluster.pod_uids().get(pod(2)) not in (None, pod_uid) and pod_ready(cluster.pods()[pod(2)]),
               timeout=120, interval=0.5, message="pod 2 recreated and Ready")
    assert not marker.exists(), "the log dir was not emptied"
    meta_after = (data_dir / "meta.properties").read_text()
    assert "node.id=2" in meta_after
    dir_id = [line for line in meta_after.splitlines() if line.startswith("directory.id=")]
    assert dir_id and dir_id[0] not in meta_before, "the log dir was not formatted again"
    assert cluster.core.read_namespaced_persistent_volume_claim(f"data-{pod(2)}", "kafka").metadata.uid != pvc_uid
    brokers = with_admin(cluster.bootstrap(), lambda a: a.describe_cluster())["brokers"]
    assert 2 in [b["broker_id"] for b in brokers]
    values = consume_all(cluster.bootstrap(), "orders", 50)  # replicas re-fetched from the other brokers
    assert len(values) == 50


def test_pause_reconciliation_holds_spec_changes_until_unpaused(cluster: StrimziCluster) -> None:
    """With pause-reconciliation a spec change waits (ReconciliationPaused); removing it applies the change."""
    cluster.patch_kafka({"metadata": {"annotations": {"strimzi.io/pause-reconciliation": "true"}}})
    wait_until(lambda: cluster.conditions("ReconciliationPaused"), timeout=30, interval=0.3,
               message="ReconciliationPaused condition")
    generation = cluster.patch_kafka({"spec": {"kafka": {"config": {"log.retention.ms": 1800000}}}})
    time.sleep(8)  # more than two reconciliation intervals
    status: dict[str, Any] = cluster.kafka()["status"]
    assert [c["type"] for c in status["conditions"]] == ["ReconciliationPaused"]
    assert int(status["observedGeneration"]) < generation
    assert broker_config(cluster.bootstrap(), 0, "log.retention.ms") == "7200000"
    cluster.patch_kafka({"metadata": {"annotations": {"strimzi.io/pause-reconciliation": None}}})
    cluster.wait_reconciled(generation)
    assert broker_config(cluster.bootstrap(), 0, "log.retention.ms") == "1800000"


def test_unsupported_kafka_version_is_not_ready_with_the_supported_list(cluster: StrimziCluster) -> None:
    """spec.kafka.version without jars / outside 4.2-4.3: NotReady UnsupportedKafkaVersionException, nothing rolls."""
    uids = cluster.pod_uids()
    generation = cluster.patch_kafka({"spec": {"kafka": {"version": "4.1.0"}}})
    status = cluster.wait_reconciled(generation, ready=False)
    failure = next(c for c in status["conditions"] if c["type"] == "NotReady")
    assert failure["reason"] == "UnsupportedKafkaVersionException"
    assert failure["message"].startswith("Unsupported Kafka.spec.kafka.version: 4.1.0. Supported versions are: [")
    assert "4.3.1" in failure["message"]
    assert status["kafkaVersion"] == "4.3.1"
    assert cluster.pod_uids() == uids
    generation = cluster.patch_kafka({"spec": {"kafka": {"version": "4.3.1"}}})
    cluster.wait_reconciled(generation)
