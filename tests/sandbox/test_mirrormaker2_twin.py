"""The sandbox runs real MirrorMaker 2: a KafkaMirrorMaker2 between two sandboxes, seen as the bot will see it.

Two sandboxes of one dual-role node each, ``east`` (source, Kafka 4.2.2) and ``west`` (target, 4.3.1). The
KafkaMirrorMaker2 is created in west's Kubernetes API and names east by its bootstrap address. What
is asserted comes from public interfaces only: the resource's status (the raw Connect REST status in
``status.connectors``), the pod object, Kafka's protocol on both clusters, ``/proc`` for the worker
process, and the sandbox CLI for the fault.
"""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.structs import OffsetAndMetadata
from kubernetes.client.rest import ApiException

from bot.sandbox import jars
from bot.sandbox.operator.mirrormaker2_spec import FAULT_HOOK_KEY, plan_mirror
from bot.sandbox.operator.status import ReconcileFailure
from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_until
from tests.sandbox.cluster_helpers import StrimziCluster, consume_all, end_offsets, produce, with_admin

pytestmark = pytest.mark.sandbox
MM2 = "dr"
PLURAL = "kafkamirrormaker2s"
SOURCE = "east->west.MirrorSourceConnector"
CHECKPOINT = "east->west.MirrorCheckpointConnector"
TOPIC = "orders.eu"
RECORDS = 50


@pytest.fixture(scope="module")
def clusters(sandbox_factory: Callable[..., SandboxInfo]) -> Iterator[tuple[SandboxInfo, SandboxInfo]]:
    with ThreadPoolExecutor(2) as pool:  # two 1-node sandboxes side by side, started together
        # east on 4.2.2: the 4.3.1 MirrorMaker 2 jars a 4.2.x resource runs must read from 4.2 brokers.
        east_f = pool.submit(sandbox_factory, "east", brokers=1, kafka_version="4.2.2")
        west_f = pool.submit(sandbox_factory, "west", brokers=1)
        east, west = east_f.result(), west_f.result()
    try:
        yield east, west
    finally:
        east.down()
        west.down()


@pytest.fixture(scope="module")
def west(clusters: tuple[SandboxInfo, SandboxInfo]) -> Iterator[StrimziCluster]:
    api = clusters[1].api_client()
    try:
        yield StrimziCluster(api, clusters[1].namespace, clusters[1].cluster)
    finally:
        api.close()


def mirror_resource(name: str, east: SandboxInfo, west: SandboxInfo, **mirror: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaMirrorMaker2", "metadata": {"name": name},
        "spec": {
            "version": "4.2.2", "replicas": 1,
            "target": {"alias": "west", "bootstrapServers": west.bootstrap_servers, "groupId": f"{name}-mm2",
                       "configStorageTopic": f"{name}-mm2-config", "offsetStorageTopic": f"{name}-mm2-offset",
                       "statusStorageTopic": f"{name}-mm2-status"},
            "mirrors": [{"source": {"alias": "east", "bootstrapServers": east.bootstrap_servers},
                         "topicsPattern": "orders.*", "groupsPattern": "billing",
                         # offset.lag.max 0: an offset sync per record, so translation is exact.
                         "sourceConnector": {"tasksMax": 1, "config": {"offset.lag.max": "0"}},
                         "checkpointConnector": {"config": {"sync.group.offsets.enabled": "true"}},
                         **mirror}],
        },
    }


@pytest.fixture(scope="module")
def mirror(clusters: tuple[SandboxInfo, SandboxInfo], west: StrimziCluster) -> dict[str, Any]:
    east, west_info = clusters
    with_admin(east.bootstrap_servers, lambda a: a.create_topics([NewTopic(TOPIC, 1, 1)]))
    west.custom.create_namespaced_custom_object("kafka.strimzi.io", "v1", west.namespace, PLURAL,
                                                mirror_resource(MM2, east, west_info))
    return wait_status(west, lambda s: ready(s) and all_running(s, SOURCE) and all_running(s, CHECKPOINT),
                       "KafkaMirrorMaker2 Ready with its connectors RUNNING", timeout=150)


def wait_status(west: StrimziCluster, check: Callable[[dict[str, Any]], bool], what: str, *,
                timeout: float = 60.0, name: str = MM2) -> dict[str, Any]:
    def current() -> dict[str, Any] | None:
        status = west.get(PLURAL, name).get("status") or {}
        return status if check(status) else None

    status: dict[str, Any] = wait_until(current, timeout=timeout, interval=0.5, message=what)
    return status


def ready(status: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def connector(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next((c for c in status.get("connectors") or [] if c.get("name") == name), {})


def all_running(status: dict[str, Any], name: str, *, min_tasks: int = 0) -> bool:
    conn = connector(status, name)
    tasks = conn.get("tasks") or []
    return ((conn.get("connector") or {}).get("state") == "RUNNING" and len(tasks) >= min_tasks
            and all(t.get("state") == "RUNNING" for t in tasks))


def test_mirror_jars_are_a_connect_classpath_apart_from_the_brokers(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    """A first fetch (an empty jar cache, Maven only) gives 4.2.x and 4.3.x sandboxes one mirror-libs dir with
    connect-mirror 4.3.1 and the brokers' logging binding; the brokers' own libs dir has no connect-mirror."""
    broker_libs = {p.name for p in jars.fetch("4.3.1").iterdir()}
    assert not any(n.startswith("connect-mirror") for n in broker_libs)
    monkeypatch.setenv(jars.CACHE_ENV, str(tmp_path))
    assert jars.mirror_version("4.2.2") == jars.mirror_version("4.3.1") == "4.3.1"
    assert not jars.is_mirror_fetched("4.2.2")
    libs = jars.fetch_mirror("4.2.2")
    assert libs == tmp_path / "4.3.1" / "mirror-libs" and jars.is_mirror_fetched("4.3.1")
    found = {p.name for p in libs.iterdir()}
    assert {"connect-mirror-4.3.1.jar", "connect-mirror-client-4.3.1.jar", "connect-runtime-4.3.1.jar",
            "slf4j-api-1.7.36.jar", f"log4j-slf4j-impl-{jars.LOG4J_VERSION}.jar"} <= found
    assert not any(n.startswith("slf4j-api-2") for n in found)


def test_ready_with_connectors_running_a_worker_pod_and_rest_url(
        mirror: dict[str, Any], west: StrimziCluster, clusters: tuple[SandboxInfo, SandboxInfo]) -> None:
    """Ready, the generation observed, both connectors RUNNING as Connect reports them, the task of the source
    connector RUNNING, the worker's REST url, a Ready pod for the worker whose log is the worker's, and the
    worker in `sandbox status`."""
    status = mirror
    assert status["observedGeneration"] == 1
    assert all_running(status, SOURCE, min_tasks=1)
    assert connector(status, SOURCE)["type"] == "source"
    assert connector(status, SOURCE)["connector"]["version"] == "4.3.1"  # version 4.2.2 runs the 4.3.1 jars
    assert status["url"].startswith("http://127.0.0.1:")
    pod = west.core.read_namespaced_pod(f"{MM2}-mirrormaker2-0", west.namespace)
    assert pod.metadata.labels["strimzi.io/kind"] == "KafkaMirrorMaker2"
    assert any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)
    assert "Kafka Connect started" in west.core.read_namespaced_pod_log(f"{MM2}-mirrormaker2-0", west.namespace)
    shown = clusters[1].status()["mirror_makers"]
    assert [(m["name"], m["url"]) for m in shown] == [(MM2, status["url"])] and shown[0]["pid"]


def test_records_arrive_on_the_target_once_under_the_alias_prefix(
        mirror: dict[str, Any], clusters: tuple[SandboxInfo, SandboxInfo]) -> None:
    """Records produced to orders.eu on east are all on west's east.orders.eu, each exactly once."""
    east, west = clusters
    values = [f"order-{i}".encode() for i in range(RECORDS)]
    produce(east.bootstrap_servers, TOPIC, values)
    wait_until(lambda: f"east.{TOPIC}" in with_admin(west.bootstrap_servers, lambda a: a.list_topics()),
               timeout=60, interval=1, message="the remote topic east.orders.eu on west")
    remote = f"east.{TOPIC}"
    wait_until(lambda: end_offsets(west.bootstrap_servers, remote, 1)[0] >= RECORDS, timeout=60, interval=1,
               message=f"{RECORDS} records on {remote}")
    time.sleep(2)  # a duplicate would come right behind
    assert end_offsets(west.bootstrap_servers, remote, 1) == {0: RECORDS}  # no more records than produced
    assert sorted(consume_all(west.bootstrap_servers, remote, RECORDS)) == sorted(values)


def test_committed_group_offsets_are_translated_to_the_target(
        mirror: dict[str, Any], clusters: tuple[SandboxInfo, SandboxInfo], west: StrimziCluster) -> None:
    """billing's offset committed on east (at the end of orders.eu) appears in east.checkpoints.internal on west,
    translated to east.orders.eu's offset, and (sync.group.offsets) as billing's committed offset on west."""
    east, west_info = clusters
    consumer = KafkaConsumer(bootstrap_servers=east.bootstrap_servers, group_id="billing", enable_auto_commit=False)
    try:
        consumer.commit({TopicPartition(TOPIC, 0): OffsetAndMetadata(RECORDS, "", -1)})
    finally:
        consumer.close()
    checkpoint = wait_until(lambda: latest_checkpoint(west_info.bootstrap_servers, "billing"), timeout=60,
                            interval=2, message="a checkpoint of billing in east.checkpoints.internal")
    assert checkpoint == (f"east.{TOPIC}", 0, RECORDS, RECORDS)  # (remote topic, partition, upstream, downstream)
    wait_until(lambda: committed(west_info.bootstrap_servers, "billing", f"east.{TOPIC}") == RECORDS, timeout=30,
               interval=1, message="billing's offset on west's east.orders.eu synced")
    status = wait_status(west, lambda s: all_running(s, CHECKPOINT, min_tasks=1), "a RUNNING checkpoint task")
    assert connector(status, CHECKPOINT)["type"] == "source"


def committed(bootstrap: str, group: str, topic: str) -> int | None:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        offset: int | None = consumer.committed(TopicPartition(topic, 0))
        return offset
    finally:
        consumer.close()


def latest_checkpoint(bootstrap: str, group: str) -> tuple[str, int, int, int] | None:
    """The last checkpoint of ``group`` (MirrorMaker 2's Checkpoint key, and its value with version header 0)."""
    consumer = KafkaConsumer("east.checkpoints.internal", bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             group_id=None, consumer_timeout_ms=2000)
    found = None
    try:
        for record in consumer:
            key, value = record.key, record.value  # key: group, topic (int16-length strings), partition
            (glen,) = struct.unpack_from(">h", key, 0)
            gname = key[2:2 + glen].decode()
            (tlen,) = struct.unpack_from(">h", key, 2 + glen)
            topic = key[4 + glen:4 + glen + tlen].decode()
            (partition,) = struct.unpack_from(">i", key, 4 + glen + tlen)
            _, upstream, downstream = struct.unpack_from(">hqq", value, 0)  # value: version, offsets, metadata
            if gname == group:
                found = (topic, partition, upstream, downstream)
    finally:
        consumer.close()
    return found


def patch_source(west: StrimziCluster, body: dict[str, Any], clusters: tuple[SandboxInfo, SandboxInfo]) -> None:
    resource = mirror_resource(MM2, *clusters)
    mirror_spec = resource["spec"]["mirrors"][0]
    mirror_spec["sourceConnector"] = {**mirror_spec["sourceConnector"], **body}
    west.patch(PLURAL, MM2, {"spec": {"mirrors": [mirror_spec]}})


def test_pause_and_resume_through_the_connector_state(
        mirror: dict[str, Any], west: StrimziCluster, clusters: tuple[SandboxInfo, SandboxInfo]) -> None:
    """sourceConnector.state paused makes Connect report PAUSED; running makes it RUNNING again."""
    patch_source(west, {"state": "paused"}, clusters)
    wait_status(west, lambda s: (connector(s, SOURCE).get("connector") or {}).get("state") == "PAUSED",
                "the source connector PAUSED")
    patch_source(west, {"state": "running"}, clusters)
    wait_status(west, lambda s: all_running(s, SOURCE, min_tasks=1), "the source connector RUNNING again")


def failed_task(status: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((t for t in connector(status, name).get("tasks") or [] if t.get("state") == "FAILED"), None)


def test_a_failed_task_shows_its_trace_and_the_restart_annotation_brings_it_back(
        mirror: dict[str, Any], west: StrimziCluster, clusters: tuple[SandboxInfo, SandboxInfo]) -> None:
    """`sandbox fault mirror-task-fail` makes the source task really FAIL (Kafka's trace in status, the resource
    still Ready as in Strimzi); once cleared, strimzi.io/restart-connector-task restarts it to RUNNING and the
    annotation is removed."""
    west_info = clusters[1]
    refused = west_info.cli("fault", "mirror-task-fail", "--when", "not-a-connector", check=False)
    assert refused.returncode == 1 and "MirrorSourceConnector" in refused.stderr
    west_info.cli("fault", "mirror-task-fail", "--when", SOURCE)
    status = wait_status(west, lambda s: failed_task(s, SOURCE) is not None, "the source task FAILED")
    task = failed_task(status, SOURCE)
    assert task is not None and task["trace"].startswith("org.apache.kafka.common.KafkaException: Failed to construct")
    assert "InjectedTaskFailure" in task["trace"] and "MirrorSourceTask.start" in task["trace"]
    assert ready(status)  # Strimzi's Ready=True next to a FAILED task (issue #5715)
    west_info.cli("fault", "mirror-task-fail", "--clear")
    time.sleep(3)  # a pass or two of the operator: clearing restarts nothing
    assert failed_task(west.get(PLURAL, MM2)["status"], SOURCE) is not None
    west.patch(PLURAL, MM2, {"metadata": {"annotations": {"strimzi.io/restart-connector-task": f"{SOURCE}:0"}}})
    wait_status(west, lambda s: all_running(s, SOURCE, min_tasks=1), "the source task RUNNING after the restart")
    annotations = west.get(PLURAL, MM2)["metadata"].get("annotations") or {}
    assert "strimzi.io/restart-connector-task" not in annotations


def test_the_restart_connector_annotation_restarts_failed_tasks_too(
        mirror: dict[str, Any], west: StrimziCluster, clusters: tuple[SandboxInfo, SandboxInfo]) -> None:
    """strimzi.io/restart-connector=<name>:includeTasks,onlyFailed brings a FAILED task back and is removed."""
    west_info = clusters[1]
    west_info.cli("fault", "mirror-task-fail", "--when", SOURCE)
    wait_status(west, lambda s: failed_task(s, SOURCE) is not None, "the source task FAILED")
    west_info.cli("fault", "mirror-task-fail", "--clear")
    west.patch(PLURAL, MM2, {"metadata": {"annotations": {
        "strimzi.io/restart-connector": f"{SOURCE}:includeTasks,onlyFailed"}}})
    wait_status(west, lambda s: all_running(s, SOURCE, min_tasks=1), "the source task RUNNING after the restart")
    assert "strimzi.io/restart-connector" not in (west.get(PLURAL, MM2)["metadata"].get("annotations") or {})


def test_auto_restart_restarts_a_failed_task_and_counts_it(
        mirror: dict[str, Any], west: StrimziCluster, clusters: tuple[SandboxInfo, SandboxInfo]) -> None:
    """With autoRestart, a FAILED task is restarted by the operator (counted in autoRestartStatuses) and is
    RUNNING again once the cause is gone, without any annotation."""
    west_info = clusters[1]
    patch_source(west, {"autoRestart": {"enabled": True}}, clusters)
    west_info.cli("fault", "mirror-task-fail", "--when", SOURCE)
    wait_status(west, lambda s: any(r.get("connectorName") == SOURCE and r.get("count", 0) >= 1
                                    for r in s.get("autoRestartStatuses") or []), "an automatic restart counted")
    west_info.cli("fault", "mirror-task-fail", "--clear")
    wait_status(west, lambda s: all_running(s, SOURCE, min_tasks=1), "the source task RUNNING after autoRestart",
                timeout=60)


def test_an_invalid_resource_is_refused_with_the_reason_and_runs_nothing(
        mirror: dict[str, Any], west: StrimziCluster, clusters: tuple[SandboxInfo, SandboxInfo]) -> None:
    """A topicsPattern that is no regular expression gives NotReady InvalidResourceException naming it; no pod."""
    name = f"bad-{uuid.uuid4().hex[:6]}"
    west.custom.create_namespaced_custom_object("kafka.strimzi.io", "v1", west.namespace, PLURAL,
                                                mirror_resource(name, *clusters, topicsPattern="orders.(*"))
    status = wait_status(west, lambda s: bool(s.get("conditions")), "a status for the invalid resource", name=name)
    cond = status["conditions"][-1]
    assert cond["type"] == "NotReady" and cond["reason"] == "InvalidResourceException"
    assert "topicsPattern" in cond["message"] and "orders.(*" in cond["message"]
    with pytest.raises(ApiException):
        west.core.read_namespaced_pod(f"{name}-mirrormaker2-0", west.namespace)
    west.custom.delete_namespaced_custom_object("kafka.strimzi.io", "v1", west.namespace, PLURAL, name)


def test_deleting_the_resource_stops_the_worker(mirror: dict[str, Any], west: StrimziCluster) -> None:
    """Deleting the KafkaMirrorMaker2 stops its Connect worker process and deletes its pod."""
    pod = west.core.read_namespaced_pod(f"{MM2}-mirrormaker2-0", west.namespace)
    pid = int(pod.status.container_statuses[0].container_id.rsplit("/", 1)[1])
    assert "ConnectDistributed" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    west.custom.delete_namespaced_custom_object("kafka.strimzi.io", "v1", west.namespace, PLURAL, MM2)
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=40, interval=0.5,
               message=f"the Connect worker (pid {pid}) gone")

    def pod_gone() -> bool:
        try:
            west.core.read_namespaced_pod(f"{MM2}-mirrormaker2-0", west.namespace)
        except ApiException as e:
            return e.status == 404
        return False

    wait_until(pod_gone, timeout=10, interval=0.5, message="the worker pod deleted")


# -- the resource read into a plan (pure: no sandbox needed) --------------------------------------
def spec_of(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "target": {"alias": "west", "bootstrapServers": "127.0.0.1:2"},
        "mirrors": [{"source": {"alias": "east", "bootstrapServers": "127.0.0.1:1"}, "topicsPattern": "orders.*",
                     "sourceConnector": {"tasksMax": 2, "config": {"refresh.topics.interval.seconds": "60"}},
                     "checkpointConnector": {"autoRestart": {"enabled": True, "maxRestarts": 3}}}],
    }
    base.update(changes)
    return {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaMirrorMaker2",
            "metadata": {"name": "dr", "namespace": "kafka", "uid": "u"}, "spec": base}


def test_a_resource_becomes_strimzi_named_connectors_with_its_config_winning() -> None:
    """Connector names, Strimzi's keys from the mirror, the twin's short intervals unless the spec sets them, the
    fault hook, autoRestart, and v1beta2's Connect group/topics when spec.target names none."""
    plan = plan_mirror(spec_of(), fault_file="/f/faults.properties")
    source, checkpoint = plan.connectors
    assert (source.name, checkpoint.name) == (SOURCE, CHECKPOINT)
    assert source.config["tasks.max"] == "2" and source.config["topics"] == "orders.*"
    assert source.config["source.cluster.bootstrap.servers"] == "127.0.0.1:1"
    assert source.config["target.cluster.alias"] == "west"
    assert source.config["refresh.topics.interval.seconds"] == "60"  # the spec wins over the twin's 5
    assert checkpoint.config["emit.checkpoints.interval.seconds"] == "5"
    assert source.config[FAULT_HOOK_KEY] == f"${{file:/f/faults.properties:{SOURCE}}}"
    assert (checkpoint.auto_restart, checkpoint.max_restarts, source.auto_restart) == (True, 3, False)
    assert (plan.worker.group_id, plan.worker.config_topic) == ("mirrormaker2-cluster", "mirrormaker2-cluster-configs")


@pytest.mark.parametrize(("changes", "reason", "words"), [
    ({"target": {"alias": "west"}}, "InvalidResourceException", "spec.target needs alias and bootstrapServers"),
    ({"mirrors": []}, "InvalidResourceException", "spec.mirrors must list at least one mirror"),
    ({"version": "3.9.0"}, "UnsupportedKafkaVersionException", "4.2.x, 4.3.x"),
    ({"mirrors": [{"source": {"alias": "west", "bootstrapServers": "x:1"}, "sourceConnector": {}}]},
     "InvalidResourceException", "is the target's alias too"),
    ({"mirrors": [{"source": {"alias": "east", "bootstrapServers": "x:1"}, "groupsPattern": "[a",
                   "sourceConnector": {}}]}, "InvalidResourceException", "groupsPattern '[a'"),
    ({"mirrors": [{"source": {"alias": "east", "bootstrapServers": "x:1"}, "sourceConnector": {"state": "off"}}]},
     "InvalidResourceException", "state must be one of running, paused, stopped"),
    ({"mirrors": [{"source": {"alias": "east", "bootstrapServers": "x:1"}, "sourceConnector": {"tasksMax": 0}}]},
     "InvalidResourceException", "tasksMax must be a whole number of 1 or more"),
])
def test_bad_resources_are_refused_with_what_is_wrong(changes: dict[str, Any], reason: str, words: str) -> None:
    with pytest.raises(ReconcileFailure) as err:
        plan_mirror(spec_of(**changes), fault_file="/f")
    assert err.value.strimzi_reason == reason and words in str(err.value)
