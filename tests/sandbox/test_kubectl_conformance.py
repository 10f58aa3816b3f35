"""A real kubectl (built from the Go module proxy, see kubectl_tool.py) against a sandbox, as a new user
tries it: get with Strimzi's columns and pod status, -o json/jsonpath, api-resources, explain, apply,
annotate, patch, wait (already Ready; Ready again after a roll), events after the roll, describe, logs
(also -f and --previous after a crash), scale.

One sandbox (3 dual-role nodes, Kafka 4.3.1) serves the module; the tests run in file order and
each leaves it Ready for the next.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_until
from tests.sandbox.kubectl_tool import Kubectl, locate_kubectl, pinned_version, table

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(300)]
NAME = "kubectl"
POOL = "dual-role"
NO_STREAMING_LIST = {"KUBE_FEATURE_WatchListClient": "false"}  # client-go's list-then-watch instead


def pod(node: int) -> str:
    return f"{NAME}-{POOL}-{node}"


@pytest.fixture(scope="module")
def kubectl_binary() -> str:
    return str(locate_kubectl())  # before the sandbox: no brokers started for a test that cannot run


@pytest.fixture(scope="module")
def sbx(kubectl_binary: str, sandbox_factory: Callable[..., SandboxInfo]) -> Iterator[SandboxInfo]:
    info = sandbox_factory(NAME, kafka_version="4.3.1", brokers=3)
    try:
        yield info
    finally:
        info.down()


@pytest.fixture(scope="module")
def kubectl(kubectl_binary: str, sbx: SandboxInfo) -> Kubectl:
    return Kubectl(Path(kubectl_binary), sbx.kubeconfig)


@pytest.fixture(scope="module")
def custom(sbx: SandboxInfo) -> Iterator[client.CustomObjectsApi]:
    api = sbx.api_client()
    try:
        yield client.CustomObjectsApi(api)
    finally:
        api.close()


def kafka(custom: client.CustomObjectsApi, sbx: SandboxInfo) -> dict[str, Any]:
    found: dict[str, Any] = custom.get_namespaced_custom_object("kafka.strimzi.io", "v1", sbx.namespace, "kafkas",
                                                               sbx.cluster)
    return found


def is_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return status.get("observedGeneration") == obj["metadata"]["generation"] and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def test_kubectl_is_the_pinned_release(kubectl: Kubectl) -> None:
    """The binary under test is the kubectl built from k8s.io/kubectl at the pinned release."""
    version = json.loads(kubectl.out("version", "--client", "-o", "json"))
    assert version["clientVersion"]["gitVersion"] == "v1." + pinned_version().removeprefix("v0.")


def test_get_prints_strimzis_columns_and_pod_status(kubectl: Kubectl, sbx: SandboxInfo) -> None:
    """kubectl get shows the columns of Strimzi's CRDs, and READY/STATUS/RESTARTS/AGE (IP, NODE wide) for pods."""
    assert table(kubectl.out("get", "kafka")) == [{"NAME": NAME, "READY": "True", "WARNINGS": "",
                                                   "KAFKA VERSION": "4.3.1", "METADATA VERSION": "4.3-IV0"}]
    assert table(kubectl.out("get", "kafkanodepools")) == [{"NAME": POOL, "DESIRED REPLICAS": "3",
                                                            "ROLES": '["broker","controller"]', "NODEIDS": "[0,1,2]"}]
    pods = table(kubectl.out("get", "pods"))
    assert [(p["NAME"], p["READY"], p["STATUS"], p["RESTARTS"]) for p in pods] == [
        (pod(n), "1/1", "Running", "0") for n in range(3)]
    assert all(p["AGE"].endswith(("s", "m")) for p in pods)
    wide = table(kubectl.out("get", "pods", "-o", "wide"))
    assert list(wide[0])[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert wide[0]["IP"] == "127.0.0.1"
    assert table(kubectl.out("get", "strimzipodsets"))[0]["READY PODS"] == "3"
    listed = json.loads(kubectl.out("get", "pods", "-o", "json"))
    assert listed["kind"] == "List" and [p["metadata"]["name"] for p in listed["items"]] == [pod(n) for n in range(3)]
    jsonpath = "{.status.kafkaVersion}/{.status.conditions[?(@.type==\"Ready\")].status}"
    assert kubectl.out("get", "kafka", NAME, "-o", f"jsonpath={jsonpath}") == "4.3.1/True"


def test_api_resources_and_explain(kubectl: Kubectl) -> None:
    """api-resources lists Strimzi's kinds; explain reads their schemas from the OpenAPI v3 document."""
    resources = table(kubectl.out("api-resources", "--api-group", "kafka.strimzi.io"))
    assert {(r["NAME"], r["SHORTNAMES"], r["KIND"]) for r in resources} >= {
        ("kafkas", "k", "Kafka"), ("kafkanodepools", "knp", "KafkaNodePool"), ("kafkatopics", "kt", "KafkaTopic")}
    explained = kubectl.out("explain", "kafka.spec.kafka.metadataVersion")
    assert "KIND:       Kafka" in explained and "VERSION:    v1" in explained
    assert "The KRaft metadata version used by the Kafka cluster" in explained
    fields = kubectl.out("explain", "kafkanodepool.spec")
    assert "roles\t<[]string>" in fields and "replicas\t<integer>" in fields
    missing = kubectl.run("explain", "kafka.spec.nothere", check=False)
    assert missing.returncode != 0 and 'field "nothere" does not exist' in missing.stderr


def test_apply_validates_on_the_server_and_the_topic_becomes_ready(kubectl: Kubectl) -> None:
    """kubectl apply leaves field validation to the server (a misspelt field is refused, nothing created),
    then creates the KafkaTopic, which the topic operator makes Ready."""
    topic = {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaTopic",
             "metadata": {"name": "orders", "labels": {"strimzi.io/cluster": NAME}},
             "spec": {"partitions": 3, "replicas": 3}}
    misspelt = {**topic, "spec": {**topic["spec"], "replica": 3}}
    refused = kubectl.run("apply", "-f", "-", stdin=json.dumps(misspelt), check=False)
    assert refused.returncode != 0 and 'strict decoding error: unknown field "spec.replica"' in refused.stderr
    assert kubectl.run("get", "kafkatopic", "orders", check=False).returncode != 0
    assert kubectl.out("apply", "-f", "-", stdin=json.dumps(topic)).strip() == \
        "kafkatopic.kafka.strimzi.io/orders created"
    kubectl.out("wait", "--for=condition=Ready", "kafkatopic/orders", "--timeout=60s")
    assert table(kubectl.out("get", "kafkatopics")) == [{"NAME": "orders", "CLUSTER": NAME, "PARTITIONS": "3",
                                                         "REPLICATION FACTOR": "3", "READY": "True"}]


@pytest.mark.parametrize("env", [{}, NO_STREAMING_LIST], ids=["streaming-list", "list-then-watch"])
def test_wait_returns_at_once_for_a_ready_kafka(kubectl: Kubectl, env: dict[str, str]) -> None:
    """kubectl wait --for=condition=Ready on a Ready Kafka answers within a second, with either watch mode."""
    started = time.monotonic()
    out = kubectl.out("wait", "--for=condition=Ready", f"kafka/{NAME}", "--timeout=30s", **env)
    assert out.strip() == f"kafka.kafka.strimzi.io/{NAME} condition met"
    assert time.monotonic() - started < 1.5


def test_a_roll_seen_through_wait_watch_events_and_describe(
        kubectl: Kubectl, sbx: SandboxInfo, custom: client.CustomObjectsApi) -> None:
    """annotate + patch start a roll; wait waits for it and returns within ~1 s of Ready; get -w shows the
    old pod Terminating; get events and describe kafka show Strimzi's restart event, describe pod the kubelet's."""
    old_uid = json.loads(kubectl.out("get", "pod", pod(0), "-o", "json"))["metadata"]["uid"]
    watching = kubectl.start("get", "pod", pod(0), "--watch", "--output-watch-events")
    assert kubectl.out("annotate", "pod", pod(0), "strimzi.io/manual-rolling-update=true").strip() == \
        f"pod/{pod(0)} annotated"
    patch = json.dumps({"spec": {"kafka": {"config": {"log.retention.ms": 604800001}}}})
    assert kubectl.out("patch", "kafka", NAME, "--type", "merge", "-p", patch).strip() == \
        f"kafka.kafka.strimzi.io/{NAME} patched"
    assert not is_ready(kafka(custom, sbx)), "the patch should leave the Kafka's status behind its generation"
    waiting = kubectl.start("wait", "--for=condition=Ready", f"kafka/{NAME}", "--timeout=180s")
    ready_at: list[float] = []

    def poll_ready() -> None:  # when the condition starts to hold, seen from outside kubectl
        deadline = time.monotonic() + 200
        while not ready_at and time.monotonic() < deadline:
            if is_ready(kafka(custom, sbx)):
                ready_at.append(time.monotonic())
            time.sleep(0.05)

    poller = threading.Thread(target=poll_ready)
    poller.start()
    out, err = waiting.communicate(timeout=200)
    exited_at = time.monotonic()
    assert is_ready(kafka(custom, sbx)), "kubectl wait returned before the Kafka was Ready again"
    poller.join()
    assert waiting.returncode == 0, err
    assert out.strip() == f"kafka.kafka.strimzi.io/{NAME} condition met"
    assert ready_at and exited_at - ready_at[0] < 2.0, f"kubectl wait returned {exited_at - ready_at[0]:.1f} s " \
        "after the Kafka was Ready"
    new_uid = json.loads(kubectl.out("get", "pod", pod(0), "-o", "json"))["metadata"]["uid"]
    assert new_uid != old_uid

    watching.terminate()
    watched, _ = watching.communicate(timeout=10)
    assert any(line.split()[:1] == ["MODIFIED"] and "Terminating" in line for line in watched.splitlines()), watched

    events = table(kubectl.out("get", "events"))
    restart = [e for e in events if e["REASON"] == "ManualRollingUpdate"]
    assert restart and restart[0]["OBJECT"] == f"kafka/{NAME}" and pod(0) in restart[0]["MESSAGE"]
    assert {("Killing", f"pod/{pod(0)}"), ("Started", f"pod/{pod(0)}")} <= {(e["REASON"], e["OBJECT"]) for e in events}
    described = kubectl.out("describe", "kafka", NAME)
    events_section = described.split("\nEvents:", 1)[1]
    assert "ManualRollingUpdate" in events_section and "strimzi.io/cluster-operator" in events_section
    pod_events = kubectl.out("describe", "pod", pod(0)).split("\nEvents:", 1)[1]
    assert "Started" in pod_events and "kubelet" in pod_events


def test_logs_tail_follow_and_previous_after_a_crash(kubectl: Kubectl, sbx: SandboxInfo) -> None:
    """logs shows the broker's Kafka log; -f streams until the container ends; after a crash the pod shows
    CrashLoopBackOff, restarts in place, and --previous shows the crashed JVM's log."""
    tail = kubectl.out("logs", pod(2), "--tail=5").splitlines()
    full = kubectl.out("logs", pod(2)).splitlines()
    assert len(tail) == 5 and tail[0] in full[-50:]  # the log's end (it may have grown in between)
    assert any("Kafka Server started" in line for line in full)
    following = kubectl.start("logs", "-f", pod(2), "--tail=1")
    sbx.cli("kill-broker", "2", "--down-for", "4")
    crash_looping = wait_until(lambda: table(kubectl.out("get", "pod", pod(2)))[0]["STATUS"] == "CrashLoopBackOff",
                               timeout=20, message=f"{pod(2)} in CrashLoopBackOff")
    assert crash_looping
    followed, _ = following.communicate(timeout=30)  # -f ends on its own once the container restarts
    assert following.returncode == 0 and followed.strip()
    wait_until(lambda: table(kubectl.out("get", "pod", pod(2)))[0]["READY"] == "1/1", timeout=120,
               message=f"{pod(2)} Ready again")
    row = table(kubectl.out("get", "pod", pod(2)))[0]
    assert row["STATUS"] == "Running" and row["RESTARTS"].startswith("1 (") and row["RESTARTS"].endswith(" ago)")
    previous = kubectl.out("logs", pod(2), "--previous")
    current = kubectl.out("logs", pod(2))
    assert "Kafka Server started" in previous and previous != current
    pod_events = kubectl.out("describe", "pod", pod(2)).split("\nEvents:", 1)[1]
    assert "BackOff" in pod_events and "Back-off restarting failed container kafka" in pod_events
    refused = kubectl.run("logs", pod(2), "--since=1m", check=False)
    assert refused.returncode != 0 and "sinceSeconds: not supported by the sandbox" in refused.stderr
    kubectl.out("wait", "--for=condition=Ready", f"kafka/{NAME}", "--timeout=120s")


def test_scale_a_node_pool(kubectl: Kubectl) -> None:
    """kubectl scale goes through the pool's scale subresource; the operator adds a fourth broker."""
    assert kubectl.out("scale", "kafkanodepool", POOL, "--replicas=4").strip() == \
        f"kafkanodepool.kafka.strimzi.io/{POOL} scaled"
    wait_until(lambda: kubectl.run("get", "pod", pod(3), check=False).returncode == 0, timeout=60,
               message=f"the operator creates {pod(3)}")
    kubectl.out("wait", "--for=condition=Ready", f"pod/{pod(3)}", "--timeout=180s")
    wait_until(lambda: table(kubectl.out("get", "kafkanodepools"))[0]["NODEIDS"] == "[0,1,2,3]", timeout=60,
               message="the pool's status lists node 3")
    assert json.loads(kubectl.out("get", "kafkanodepool", POOL, "-o", "json"))["spec"]["replicas"] == 4
