"""What the emulator serves for kubectl beyond CRUD: streaming-list watches, Events under both APIs,
OpenAPI v3, pod logs and terminating pods. Over HTTP, as kubectl (client-go) asks."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox.kube.api_errors import bad_request
from bot.sandbox.kube.pod_logs import ContainerLog
from tests.sandbox.conftest import RunningEmulator
from tests.sandbox.emulator_helpers import STRIMZI, kafka_body, pod_body, raw_request

pytestmark = pytest.mark.timeout(30)
STREAMING_LIST = "watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"


def stream_lines(url: str, count: int, *, timeout: float = 5) -> list[Any]:
    """The first ``count`` newline-delimited JSON documents (or text lines) of a streaming answer."""
    lines: list[Any] = []
    with urllib.request.urlopen(url, timeout=timeout) as response:
        for raw in response:
            text = raw.decode().rstrip("\n")
            lines.append(json.loads(text) if text.startswith("{") else text)
            if len(lines) == count:
                break
    return lines


def read(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())["message"]


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    running = RunningEmulator().start()
    yield running
    running.stop()


# Streaming list (client-go's WatchList): what `kubectl wait` runs on


def test_streaming_list_watch_ends_initial_events_with_the_annotated_bookmark(emulator: RunningEmulator) -> None:
    """sendInitialEvents: the matching objects as ADDED, the initial-events-end bookmark, then live changes."""
    store = emulator.store
    emulator.call(lambda: [store.create(STRIMZI, "kafkas", "wait", kafka_body(name)) for name in ("a", "b")])
    rv = emulator.call(lambda: store.resource_version)
    later = threading.Timer(0.3, lambda: emulator.call(
        lambda: store.merge_patch(STRIMZI, "kafkas", "wait", "a", {"metadata": {"labels": {"x": "1"}}})))
    later.start()
    events = stream_lines(f"{emulator.url}/apis/kafka.strimzi.io/v1/namespaces/wait/kafkas?{STREAMING_LIST}"
                          "&fieldSelector=metadata.name%3Da", 3)
    later.join()
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in events] == [
        ("ADDED", "a"), ("BOOKMARK", None), ("MODIFIED", "a")]
    bookmark = events[1]["object"]
    assert bookmark["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert bookmark["metadata"]["resourceVersion"] == str(rv)
    assert bookmark["apiVersion"] == "kafka.strimzi.io/v1" and bookmark["kind"] == "Kafka"


def test_watch_options_are_checked_as_the_api_server_checks_them(emulator: RunningEmulator) -> None:
    """sendInitialEvents without resourceVersionMatch=NotOlderThan, or the reverse, is a 422 naming the rule."""
    base = f"{emulator.url}/apis/kafka.strimzi.io/v1/namespaces/wait/kafkas?watch=true"
    status, message = read(f"{base}&sendInitialEvents=true")
    assert status == 422 and "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan" in message
    status, message = read(f"{base}&resourceVersionMatch=NotOlderThan")
    assert status == 422 and "resourceVersionMatch is forbidden for watch unless sendInitialEvents" in message


def test_watch_without_initial_events_starts_with_live_changes(emulator: RunningEmulator) -> None:
    """sendInitialEvents=false and no resourceVersion: existing objects are not replayed."""
    store = emulator.store
    emulator.call(lambda: store.create(STRIMZI, "kafkas", "live", kafka_body("old")))
    later = threading.Timer(0.3, lambda: emulator.call(lambda: store.create(STRIMZI, "kafkas", "live",
                                                                            kafka_body("new"))))
    later.start()
    events = stream_lines(f"{emulator.url}/apis/kafka.strimzi.io/v1/namespaces/live/kafkas?watch=true"
                          "&sendInitialEvents=false&resourceVersionMatch=NotOlderThan", 1)
    later.join()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "new")]


# Events: one store, two APIs


def test_an_event_written_through_events_k8s_io_reads_through_core_v1(emulator: RunningEmulator) -> None:
    """regarding/note/reportingController show as involvedObject/message/reportingComponent, and selectable."""
    event = {"metadata": {"generateName": "strimzi-event"}, "reason": "ManualRollingUpdate", "type": "Normal",
             "action": "StrimziInitiatedPodRestart", "note": "Rolling Pod p-0",
             "eventTime": "2025-01-01T00:00:00.000000Z",
             "reportingController": "strimzi.io/cluster-operator", "reportingInstance": "operator",
             "regarding": {"kind": "Kafka", "namespace": "ev", "name": "prod", "uid": "u-1"},
             "related": {"kind": "Pod", "namespace": "ev", "name": "p-0"}}
    created = emulator.call(lambda: emulator.store.create("events.k8s.io", "events", "ev", event))
    status, listing = raw_request(emulator.url, "GET", "/api/v1/namespaces/ev/events?fieldSelector="
                                  "involvedObject.name%3Dprod,involvedObject.uid%3Du-1")
    assert status == 200 and [e["metadata"]["name"] for e in listing["items"]] == [created["metadata"]["name"]]
    core = listing["items"][0]
    assert core["apiVersion"] == "v1" and core["involvedObject"] == event["regarding"]
    assert core["message"] == "Rolling Pod p-0" and core["reportingComponent"] == "strimzi.io/cluster-operator"
    assert core["related"] == event["related"] and "note" not in core and "regarding" not in core

    name = created["metadata"]["name"]
    patched = emulator.call(lambda: emulator.store.merge_patch("", "events", "ev", name, {"message": "edited"}))
    assert patched["message"] == "edited"
    status, again = raw_request(emulator.url, "GET", f"/apis/events.k8s.io/v1/namespaces/ev/events/{name}")
    assert status == 200 and again["note"] == "edited" and again["apiVersion"] == "events.k8s.io/v1"
    status, _ = raw_request(emulator.url, "DELETE", f"/apis/events.k8s.io/v1/namespaces/ev/events/{name}")
    status, gone = raw_request(emulator.url, "GET", f"/api/v1/namespaces/ev/events/{name}")
    assert status == 404, gone


def test_a_core_watch_sees_events_created_through_the_other_api(emulator: RunningEmulator) -> None:
    """One store: a core v1 watch gets the event written as events.k8s.io/v1, in core form."""
    later = threading.Timer(0.3, lambda: emulator.call(lambda: emulator.store.create("events.k8s.io", "events", "w", {
        "metadata": {"name": "e1"}, "note": "hello", "regarding": {"kind": "Pod", "name": "p"}})))
    later.start()
    events = stream_lines(f"{emulator.url}/api/v1/namespaces/w/events?watch=true&resourceVersion="
                          f"{emulator.call(lambda: emulator.store.resource_version)}", 1)
    later.join()
    assert events[0]["type"] == "ADDED" and events[0]["object"]["message"] == "hello"
    assert events[0]["object"]["involvedObject"] == {"kind": "Pod", "name": "p"}


# OpenAPI v3, for kubectl explain


def test_openapi_v3_serves_the_strimzi_schemas_by_group_version_kind(emulator: RunningEmulator) -> None:
    """/openapi/v3 points at one document per group-version; Strimzi's hold the schemas explain looks up."""
    status, root = raw_request(emulator.url, "GET", "/openapi/v3")
    assert status == 200
    assert set(root["paths"]) == {"api/v1", "apis/apps/v1", "apis/events.k8s.io/v1", "apis/kafka.strimzi.io/v1",
                                  "apis/kafka.strimzi.io/v1beta2", "apis/core.strimzi.io/v1",
                                  "apis/rbac.authorization.k8s.io/v1"}
    url = root["paths"]["apis/kafka.strimzi.io/v1"]["serverRelativeURL"]
    status, document = raw_request(emulator.url, "GET", url)
    assert status == 200
    kafka = document["components"]["schemas"]["io.strimzi.kafka.v1.Kafka"]
    assert kafka["x-kubernetes-group-version-kind"] == [{"group": STRIMZI, "kind": "Kafka", "version": "v1"}]
    assert "metadataVersion" in kafka["properties"]["spec"]["properties"]["kafka"]["properties"]
    operation = document["paths"]["/apis/kafka.strimzi.io/v1/namespaces/{namespace}/kafkas/{name}"]["get"]
    assert operation["x-kubernetes-group-version-kind"]["kind"] == "Kafka"


def test_openapi_v3_tells_kubectl_that_every_type_takes_field_validation(emulator: RunningEmulator) -> None:
    """Each type's PATCH takes fieldValidation (so kubectl apply validates on the server); built-in types
    have paths but no schema."""
    status, core = raw_request(emulator.url, "GET", "/openapi/v3/api/v1")
    assert status == 200 and core["components"]["schemas"] == {}
    patch = core["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "", "kind": "ConfigMap", "version": "v1"}
    assert {"name": "fieldValidation", "in": "query"}.items() <= patch["parameters"][0].items()
    status, strimzi = raw_request(emulator.url, "GET", "/openapi/v3/apis/kafka.strimzi.io/v1beta2")
    kafkas = strimzi["paths"]["/apis/kafka.strimzi.io/v1beta2/namespaces/{namespace}/kafkas/{name}"]
    assert [p["name"] for p in kafkas["patch"]["parameters"]] == ["fieldValidation", "fieldManager"]


# Field validation, as kubectl apply asks for it


def test_strict_field_validation_refuses_unknown_fields_before_writing(emulator: RunningEmulator) -> None:
    """Strict: 400 naming each unknown field, nothing stored; Warn: stored, one Warning header per field."""
    topic = json.dumps({"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaTopic", "metadata": {"name": "t"},
                        "spec": {"partitions": 1, "partitons": 3, "config": {"any.key": "is fine"}}}).encode()
    base = "/apis/kafka.strimzi.io/v1/namespaces/fv/kafkatopics"
    status, answer = raw_request(emulator.url, "POST", f"{base}?fieldValidation=Strict", topic)
    assert status == 400 and answer["message"] == ('KafkaTopic in version "v1" cannot be handled as a KafkaTopic: '
                                                   'strict decoding error: unknown field "spec.partitons"')
    assert raw_request(emulator.url, "GET", f"{base}/t")[0] == 404
    request = urllib.request.Request(f"{emulator.url}{base}?fieldValidation=Warn", data=topic, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201
        assert response.headers.get_all("Warning") == ['299 - "unknown field \\"spec.partitons\\""']
    patch = json.dumps({"spec": {"replicaz": 2}}).encode()
    status, answer = raw_request(emulator.url, "PATCH", f"{base}/t?fieldValidation=Strict", patch,
                                 "application/merge-patch+json")
    assert status == 400 and 'unknown field "spec.replicaz"' in answer["message"]
    status, answer = raw_request(emulator.url, "PATCH", f"{base}/t?fieldValidation=Loose", patch,
                                 "application/merge-patch+json")
    assert status == 400 and 'supported values: "Strict", "Warn", "Ignore"' in answer["message"]


def test_writes_the_sandbox_cannot_honour_are_refused_with_the_reason(emulator: RunningEmulator) -> None:
    """dryRun would really write, so it is refused; a protobuf body (typed clients) gets 415 naming JSON."""
    body = json.dumps({"metadata": {"name": "cm"}, "data": {"a": "b"}}).encode()
    status, answer = raw_request(emulator.url, "POST", "/api/v1/namespaces/fv/configmaps?dryRun=All", body)
    assert status == 400 and "dryRun: not supported by the sandbox" in answer["message"]
    assert raw_request(emulator.url, "GET", "/api/v1/namespaces/fv/configmaps/cm")[0] == 404
    status, answer = raw_request(emulator.url, "POST", "/api/v1/namespaces/fv/configmaps", b"\x6b\x38\x73",
                                 "application/vnd.kubernetes.protobuf")
    assert status == 415 and "accepted media types include: application/json" in answer["message"]


# Pod logs


class FileLogs:
    """A PodLogSource over one file: the container's output starts at ``start``; ``previous`` before it."""

    def __init__(self, path: Path) -> None:
        self.path, self.start, self.previous_start = path, 0, None

    def __call__(self, namespace: str, pod: str, container: str | None, previous: bool) -> ContainerLog:
        if container not in (None, "kafka"):
            raise bad_request(f"container {container} is not valid for pod {pod}")
        if previous:
            if self.previous_start is None:
                raise bad_request(f'previous terminated container "kafka" in pod "{pod}" not found')
            return ContainerLog(self.path, self.previous_start, self.start)
        return ContainerLog(self.path, self.start)


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[tuple[RunningEmulator, FileLogs]]:
    source = FileLogs(tmp_path / "kafka.log")
    source.path.write_text("old 1\nold 2\n")
    source.previous_start, source.start = 0, source.path.stat().st_size
    with source.path.open("a") as log:
        log.write("line 1\nline 2\nline 3\n")
    running = RunningEmulator(pod_logs=source).start()
    running.call(lambda: running.store.create("", "pods", "kafka", pod_body("broker-0", {})))
    yield running, source
    running.stop()


def test_pod_log_serves_the_current_container_with_tail_limit_and_previous(
        logs: tuple[RunningEmulator, FileLogs]) -> None:
    """The log of the current container only; --tail, --limit-bytes and --previous as the kubelet cuts them."""
    emulator, _ = logs
    url = f"{emulator.url}/api/v1/namespaces/kafka/pods/broker-0/log"
    assert read(url) == (200, "line 1\nline 2\nline 3\n")
    assert read(f"{url}?tailLines=2") == (200, "line 2\nline 3\n")
    assert read(f"{url}?limitBytes=9") == (200, "line 1\nli")
    assert read(f"{url}?previous=true") == (200, "old 1\nold 2\n")
    assert read(f"{url}?container=zookeeper") == (400, "container zookeeper is not valid for pod broker-0")
    status, message = read(f"{url}?sinceSeconds=60")
    assert status == 400 and "sinceSeconds: not supported" in message and "--tail" in message
    status, message = read(f"{emulator.url}/api/v1/namespaces/kafka/pods/nobody/log")
    assert status == 404 and message == 'pods "nobody" not found'


def test_following_a_log_streams_new_lines_and_ends_when_the_container_restarts(
        logs: tuple[RunningEmulator, FileLogs]) -> None:
    """follow=true sends what the file gains, and ends once a new container (a new start) takes over."""
    emulator, source = logs

    def restart_later() -> None:
        time.sleep(0.4)
        with source.path.open("a") as log:
            log.write("line 4\n")
        time.sleep(0.4)
        source.previous_start, source.start = source.start, source.path.stat().st_size
        with source.path.open("a") as log:
            log.write("next container\n")

    writer = threading.Thread(target=restart_later)
    writer.start()
    started = time.monotonic()
    lines = stream_lines(f"{emulator.url}/api/v1/namespaces/kafka/pods/broker-0/log?follow=true&tailLines=1", 10)
    writer.join()
    assert lines == ["line 3", "line 4"]
    assert time.monotonic() - started < 5


def test_a_pod_log_is_read_only_and_needs_a_process(logs: tuple[RunningEmulator, FileLogs]) -> None:
    """Writing to pods/log is 405; a pod no process stands behind has no log (400, as an unscheduled pod)."""
    emulator, _ = logs
    status, _ = raw_request(emulator.url, "PATCH", "/api/v1/namespaces/kafka/pods/broker-0/log", b"{}",
                            "application/merge-patch+json")
    assert status == 405
    bare = RunningEmulator().start()
    try:
        bare.call(lambda: bare.store.create("", "pods", "kafka", pod_body("p", {})))
        assert read(f"{bare.url}/api/v1/namespaces/kafka/pods/p/log") == (400, "pod p does not have a host assigned")
    finally:
        bare.stop()


# Terminating pods


def test_a_terminating_pod_shows_its_deletion_timestamp_until_deleted(emulator: RunningEmulator) -> None:
    """mark_terminating sets deletionTimestamp (a MODIFIED), status writes keep the pod, delete removes it."""
    store = emulator.store
    emulator.call(lambda: store.create("", "pods", "term", pod_body("p", {})))
    marked = emulator.call(lambda: store.mark_terminating("", "pods", "term", "p", 30))
    assert marked["metadata"]["deletionTimestamp"] and marked["metadata"]["deletionGracePeriodSeconds"] == 30
    emulator.call(lambda: store.merge_patch("", "pods", "term", "p", {"status": {"phase": "Running"}},
                                            subresource="status"))
    assert emulator.call(lambda: store.get("", "pods", "term", "p"))["metadata"]["deletionTimestamp"]
    emulator.call(lambda: store.delete("", "pods", "term", "p"))
    assert emulator.call(lambda: store.list("", "pods", "term"))[0] == []
