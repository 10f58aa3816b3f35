"""The emulator's watches, through the unmodified ``kubernetes`` client: order from a resource version,
label selectors, 410 Gone and relist, bookmarks."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from bot.sandbox.kube.watch_stream import WatchSettings
from tests.sandbox.conftest import RunningEmulator
from tests.sandbox.emulator_helpers import STRIMZI, collect, kafka_body, pod_body

# Watch


def test_watch_from_a_resource_version_sees_later_events_in_order(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    """A watch from resourceVersion N replays every later change in order, then follows live ones."""
    custom.create_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", kafka_body("first"))
    start = custom.list_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas")["metadata"]["resourceVersion"]
    custom.patch_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", "first", {"spec": {"x": 1}})
    custom.create_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", kafka_body("second"))
    custom.delete_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", "first")
    live_write = threading.Timer(0.2, lambda: custom.patch_namespaced_custom_object(
        STRIMZI, "v1", namespace, "kafkas", "second", {"spec": {"y": 1}}))
    live_write.start()
    watcher = watch.Watch()
    stream = watcher.stream(custom.list_namespaced_custom_object, STRIMZI, "v1", namespace, "kafkas",
                            resource_version=start, timeout_seconds=5)
    events = collect(stream, watcher, 4)
    live_write.join()
    assert [(event["type"], event["object"]["metadata"]["name"]) for event in events] == [
        ("MODIFIED", "first"), ("ADDED", "second"), ("DELETED", "first"), ("MODIFIED", "second"),
    ]
    versions = [int(event["object"]["metadata"]["resourceVersion"]) for event in events]
    assert versions == sorted(versions) and versions[0] > int(start)


def test_watch_honours_label_selectors(core: client.CoreV1Api, namespace: str) -> None:
    """A selective watch skips other pods and sees pods move into (ADDED) and out of (DELETED) it."""
    core.create_namespaced_pod(namespace, pod_body("in", {"role": "broker"}))
    core.create_namespaced_pod(namespace, pod_body("out", {"role": "controller"}))
    start = core.list_namespaced_pod(namespace).metadata.resource_version
    core.patch_namespaced_pod("out", namespace, {"metadata": {"annotations": {"noise": "1"}}})
    core.patch_namespaced_pod("in", namespace, {"metadata": {"labels": {"role": "retired"}}})
    core.patch_namespaced_pod("out", namespace, {"metadata": {"labels": {"role": "broker"}}})
    watcher = watch.Watch()
    stream = watcher.stream(core.list_namespaced_pod, namespace, label_selector="role=broker",
                            resource_version=start, timeout_seconds=5)
    events = collect(stream, watcher, 2)
    assert [(event["type"], event["object"].metadata.name) for event in events] == [
        ("DELETED", "in"), ("ADDED", "out"),
    ]


def test_watch_from_expired_version_raises_410_then_relist_and_watch_works(tmp_path: Path) -> None:
    """Past the retained history a watch raises ApiException 410; a fresh list's version watches fine."""
    emulator = RunningEmulator(history_size=3).start()
    api_client = emulator.api_client(tmp_path)
    try:
        core = client.CoreV1Api(api_client)
        first = core.create_namespaced_config_map("ns", {"metadata": {"name": "cm"}, "data": {"n": "0"}})
        for n in range(1, 5):
            core.patch_namespaced_config_map("cm", "ns", {"data": {"n": str(n)}})
        with pytest.raises(ApiException) as expired:
            # No timeout: the client retries once after a 410, and must still give up with it.
            list(watch.Watch().stream(core.list_namespaced_config_map, "ns",
                                      resource_version=first.metadata.resource_version))
        assert expired.value.status == 410

        relisted = core.list_namespaced_config_map("ns")
        core.patch_namespaced_config_map("cm", "ns", {"data": {"n": "5"}})
        watcher = watch.Watch()
        stream = watcher.stream(core.list_namespaced_config_map, "ns",
                                resource_version=relisted.metadata.resource_version, timeout_seconds=5)
        [event] = collect(stream, watcher, 1)
        assert (event["type"], event["object"].data) == ("MODIFIED", {"n": "5"})
    finally:
        api_client.close()
        emulator.stop()


def test_watch_sends_bookmarks_when_allowed(tmp_path: Path) -> None:
    """With allowWatchBookmarks an idle watch gets BOOKMARK events carrying the current resourceVersion."""
    emulator = RunningEmulator(watch_settings=WatchSettings(bookmark_interval=0.05)).start()
    api_client = emulator.api_client(tmp_path)
    try:
        core = client.CoreV1Api(api_client)
        core.create_namespaced_pod("ns", pod_body("p", {}))
        watcher = watch.Watch()
        stream = watcher.stream(core.list_namespaced_pod, "ns", allow_watch_bookmarks=True, timeout_seconds=5)
        added, bookmark = collect(stream, watcher, 2)
        assert added["type"] == "ADDED"
        assert bookmark["type"] == "BOOKMARK"
        assert bookmark["raw_object"]["metadata"]["resourceVersion"] == str(emulator.store.resource_version)
    finally:
        api_client.close()
        emulator.stop()
