"""The restart-events watch reads events as the API server sends them, including those a real cluster
has by the hundred: events recorded through the core/v1 API, seen in events.k8s.io/v1 without an
``eventTime``. The kubernetes client's ``EventsV1Event`` model requires that field; the watch used
to build the model, raised on such an event, and listed and watched again forever, so a Strimzi
restart arriving after one was never announced.

The Kubernetes API is stood in for by a small HTTP server: empty lists, and one watch stream that
carries a timeless event and then Strimzi's restart event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from kubernetes import client

from bot.monitors.kube_watch import RESTART_ACTION, ClusterWatches
from handlers.ports import ClusterRef
from tests.fixtures.kube_api_stub import KubeApiHandler, kube_api
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.timeout(30)

CLUSTER = "prod"
LEGACY_EVENT: dict[str, Any] = {  # a kubelet's "Pulled", written through core/v1: eventTime is null
    "apiVersion": "events.k8s.io/v1", "kind": "Event", "eventTime": None, "reason": "Pulled",
    "metadata": {"name": "prod-broker-0.1", "namespace": "kafka", "uid": "u-1", "resourceVersion": "8",
                 "creationTimestamp": "2026-12-07T10:00:00Z"},
    "regarding": {"kind": "Pod", "name": "prod-broker-0"}, "note": "Container image already present",
    "type": "Normal", "deprecatedFirstTimestamp": "2026-12-07T10:00:00Z", "deprecatedCount": 1,
}


def restart_event() -> dict[str, Any]:
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    return {
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "eventTime": now, "action": RESTART_ACTION,
        "reason": "ManualRollingUpdate", "note": "Pod was manually annotated to be rolled",
        "metadata": {"name": "prod.restart", "namespace": "kafka", "uid": "u-2", "resourceVersion": "9",
                     "creationTimestamp": now},
        "regarding": {"kind": "Kafka", "name": CLUSTER}, "related": {"kind": "Pod", "name": "prod-broker-1"},
        "reportingController": "strimzi.io/cluster-operator", "reportingInstance": "strimzi-cluster-operator",
        "type": "Normal",
    }


class _FakeApi(KubeApiHandler):
    lists: ClassVar[list[str]] = []  # the paths listed (not watched), across requests

    def do_GET(self) -> None:
        if "watch=true" not in self.path:
            type(self).lists.append(self.path)
            self.send_json({"kind": "List", "metadata": {"resourceVersion": "7"}, "items": []})
            return
        self.start_stream()
        if "/apis/events.k8s.io/" in self.path:
            for obj in (LEGACY_EVENT, restart_event()):
                self.send_event("ADDED", obj)
        time.sleep(20)  # a quiet stream after that


@pytest.fixture
def api() -> Iterator[client.ApiClient]:
    _FakeApi.lists = []
    with kube_api(_FakeApi) as api_client:
        yield api_client


async def test_an_event_without_event_time_neither_breaks_the_watch_nor_hides_the_restart_after_it(
        api: client.ApiClient) -> None:
    watches = ClusterWatches(ClusterRef(name=CLUSTER, namespace="kafka", kafka=CLUSTER), api,
                             loop=asyncio.get_running_loop(), on_change=lambda: None, timeout_s=60)
    watches.start()
    try:
        await wait_for(lambda: watches.state().restart_events, timeout=10,
                       message="the restart event after the timeless one reached the state")
        [seen] = watches.state().restart_events
        assert (seen.pod, seen.reason) == ("prod-broker-1", "ManualRollingUpdate")
        assert watches.relists == 0, "the stream was never broken off and listed again"
        assert sum("/events" in path for path in _FakeApi.lists) == 1
    finally:
        watches.stop()
        watches.join(5)
