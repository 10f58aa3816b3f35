"""Server-side printing: the Tables ``kubectl get`` asks for, their columns and cells.

Strimzi resources get the additionalPrinterColumns of Strimzi 1.2's CRDs, pods and events the
columns of Kubernetes' own printers. Requests go over HTTP with the Accept header kubectl sends.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.sandbox.kube.jsonpath import JsonPathError, parse, render
from bot.sandbox.kube.printers import cells_for, human_duration
from bot.sandbox.kube.resources import lookup_resource_type
from tests.sandbox.conftest import RunningEmulator
from tests.sandbox.emulator_helpers import STRIMZI, kafka_body, pod_body

pytestmark = pytest.mark.timeout(30)

KUBECTL_ACCEPT = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;"
                  "g=meta.k8s.io,application/json")


def get(emulator: RunningEmulator, path: str, accept: str = KUBECTL_ACCEPT) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(emulator.url + path, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def columns(table: dict[str, Any], *, wide: bool = True) -> list[str]:
    return [c["name"] for c in table["columnDefinitions"] if wide or c["priority"] == 0]


# JSONPath, as printer columns use it


def test_jsonpath_reads_filters_escaped_dots_wildcards_and_skips_missing_keys() -> None:
    """The column paths of Strimzi's CRDs evaluate as client-go's jsonpath does, missing keys giving nothing."""
    kafka = {"metadata": {"labels": {"strimzi.io/cluster": "prod"}},
             "status": {"conditions": [{"type": "Warning", "status": "True"}, {"type": "Ready", "status": "False"}]}}
    assert parse('.status.conditions[?(@.type=="Ready")].status').find(kafka) == ["False"]
    assert parse(r".metadata.labels.strimzi\.io/cluster").find(kafka) == ["prod"]
    assert parse(".status.conditions[*].type").find(kafka) == ["Warning", "Ready"]
    assert parse(".status.conditions[1].type").find(kafka) == ["Ready"]
    assert parse(".status.nothing.deeper").find(kafka) == []
    assert render(["controller", "broker"]) == '["controller","broker"]' and render(3) == "3"
    with pytest.raises(JsonPathError, match=re.escape("recursive descent '..' is not supported")):
        parse(".status..recursive")
    with pytest.raises(JsonPathError, match=re.escape('use .field, [*], [N] or [?(@.key=="value")]')):
        parse(".status.conditions[?(@.count > 1)]")


# Ages and pod cells, as Kubernetes' printers compute them


@pytest.mark.parametrize(("seconds", "text"), [
    (-5, "<invalid>"), (-0.5, "0s"), (45, "45s"), (119, "119s"), (125, "2m5s"), (600, "10m"), (3 * 3600 + 120, "3h2m"),
    (9 * 3600, "9h"), (50 * 3600, "2d2h"), (10 * 86400, "10d"), (800 * 86400, "2y70d"), (9 * 365 * 86400, "9y"),
])
def test_ages_are_human_durations(seconds: float, text: str) -> None:
    """Ages read as kubectl prints them (apimachinery's duration.HumanDuration)."""
    assert human_duration(seconds) == text


def test_pod_cells_show_readiness_status_and_restarts() -> None:
    """READY counts ready containers; STATUS is the waiting reason, Terminating once deleting, else the phase."""
    pods = lookup_resource_type("", "pods")
    assert pods is not None
    pod = {**pod_body("p", {}), "metadata": {"name": "p", "creationTimestamp": ago(seconds=30)}, "status": {
        "phase": "Running", "podIPs": [{"ip": "10.0.0.7"}],
        "containerStatuses": [{"name": "kafka", "ready": True, "restartCount": 2, "state": {"running": {}},
                               "lastState": {"terminated": {"exitCode": 137, "finishedAt": ago(minutes=4)}}}]}}
    assert cells_for(pods, pod)[:6] == ["p", "1/1", "Running", "2 (4m ago)", "30s", "10.0.0.7"]
    pod["status"]["containerStatuses"][0].update(ready=False, state={"waiting": {"reason": "CrashLoopBackOff"}})
    assert cells_for(pods, pod)[1:3] == ["0/1", "CrashLoopBackOff"]
    pod["status"]["containerStatuses"][0].update(state={"terminated": {"exitCode": 143, "reason": "Completed"}})
    pod["metadata"]["deletionTimestamp"] = ago(seconds=-30)
    assert cells_for(pods, pod)[2] == "Terminating"


# Tables over HTTP


@pytest.fixture
def emulator() -> Any:
    running = RunningEmulator().start()
    yield running
    running.stop()


def test_kafkas_list_as_a_table_with_strimzis_columns(emulator: RunningEmulator) -> None:
    """A Table of Kafkas has NAME plus Strimzi's columns; the row object is the metadata kubectl needs."""
    store = emulator.store

    def setup() -> None:
        store.create(STRIMZI, "kafkas", "kafka", kafka_body("prod"))
        store.merge_patch(STRIMZI, "kafkas", "kafka", "prod", {"status": {
            "conditions": [{"type": "Ready", "status": "True"}], "kafkaVersion": "4.3.1",
            "kafkaMetadataVersion": "4.3-IV0"}}, subresource="status")
        store.create(STRIMZI, "kafkas", "kafka", kafka_body("new"))

    emulator.call(setup)
    status, table = get(emulator, "/apis/kafka.strimzi.io/v1/namespaces/kafka/kafkas")
    assert status == 200 and table["kind"] == "Table" and table["apiVersion"] == "meta.k8s.io/v1"
    assert columns(table) == ["Name", "Ready", "Warnings", "Kafka version", "Metadata version"]
    assert [row["cells"] for row in table["rows"]] == [["new", None, None, None, None],
                                                       ["prod", "True", None, "4.3.1", "4.3-IV0"]]
    assert table["rows"][1]["object"]["kind"] == "PartialObjectMetadata"
    assert table["rows"][1]["object"]["metadata"]["name"] == "prod"
    assert table["metadata"]["resourceVersion"]

    status, one = get(emulator, "/apis/kafka.strimzi.io/v1beta2/namespaces/kafka/kafkas/prod?includeObject=Object")
    assert status == 200 and len(one["rows"]) == 1
    assert one["rows"][0]["object"]["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert one["rows"][0]["object"]["status"]["kafkaVersion"] == "4.3.1"


def test_node_pools_topics_and_podsets_print_their_crd_columns(emulator: RunningEmulator) -> None:
    """List-valued columns print as compact JSON, integer columns as numbers, date columns as ages."""
    store = emulator.store

    def setup() -> None:
        store.create(STRIMZI, "kafkanodepools", "kafka", {"metadata": {"name": "pool"}, "spec": {"replicas": 3}})
        store.merge_patch(STRIMZI, "kafkanodepools", "kafka", "pool", {"status": {
            "roles": ["controller", "broker"], "nodeIds": [0, 1, 2]}}, subresource="status")
        store.create(STRIMZI, "kafkatopics", "kafka", {"metadata": {"name": "orders", "labels": {
            "strimzi.io/cluster": "prod"}}, "spec": {"partitions": 6, "replicas": 3}})
        store.create("core.strimzi.io", "strimzipodsets", "kafka", {"metadata": {"name": "prod-pool"},
                                                                     "spec": {"selector": {}, "pods": []}})

    emulator.call(setup)
    _, pools = get(emulator, "/apis/kafka.strimzi.io/v1/namespaces/kafka/kafkanodepools")
    assert columns(pools) == ["Name", "Desired replicas", "Roles", "NodeIds"]
    assert pools["rows"][0]["cells"] == ["pool", 3, '["controller","broker"]', "[0,1,2]"]
    _, topics = get(emulator, "/apis/kafka.strimzi.io/v1/namespaces/kafka/kafkatopics")
    assert columns(topics) == ["Name", "Cluster", "Partitions", "Replication factor", "Ready"]
    assert topics["rows"][0]["cells"] == ["orders", "prod", 6, 3, None]
    _, podsets = get(emulator, "/apis/core.strimzi.io/v1/namespaces/kafka/strimzipodsets")
    assert columns(podsets) == ["Name", "Pods", "Ready Pods", "Current Pods", "Age"]
    assert podsets["rows"][0]["cells"][4].endswith("s")


def test_pods_table_has_wide_columns_kubectl_hides_without_o_wide(emulator: RunningEmulator) -> None:
    """Every column is filled; IP, NODE... carry priority 1, which kubectl shows only with -o wide."""
    emulator.call(lambda: emulator.store.create("", "pods", "kafka", pod_body("broker-0", {})))
    _, table = get(emulator, "/api/v1/namespaces/kafka/pods")
    assert columns(table, wide=False) == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert columns(table)[5:] == ["IP", "Node", "Nominated Node", "Readiness Gates"]
    assert table["rows"][0]["cells"][:4] == ["broker-0", "0/1", "Pending", "0"]


def test_accept_header_decides_between_table_json_and_406(emulator: RunningEmulator) -> None:
    """Plain JSON without a Table media type; 406 with a clear list when nothing offered can be served."""
    status, listing = get(emulator, "/api/v1/namespaces/kafka/pods", accept="application/json")
    assert status == 200 and listing["kind"] == "PodList"
    status, answer = get(emulator, "/api/v1/namespaces/kafka/pods", accept="application/yaml")
    assert status == 406 and "application/json;as=Table;v=v1;g=meta.k8s.io" in answer["message"]
    status, answer = get(emulator, "/api/v1/namespaces/kafka/pods?includeObject=All")
    assert status == 400 and '"None", "Metadata", "Object"' in answer["message"]
