"""What the emulator's conformance tests share: request bodies, raw requests and watch collection."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

STRIMZI = "kafka.strimzi.io"
JSON_PATCH = "application/json-patch+json"


def kafka_body(name: str, *, api_version: str = "kafka.strimzi.io/v1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "Kafka",
        "metadata": {"name": name, "labels": {"team": "platform"}},
        "spec": {"kafka": {"version": "4.2.0", **spec}},
    }


def pod_body(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "kafka", "image": "quay.io/strimzi/kafka"}]},
    }


def raw_request(
    base_url: str, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"
) -> tuple[int, dict[str, Any]]:
    """A request outside the client, for answers the client would not let us see raw."""
    request = urllib.request.Request(base_url + path, data=body, method=method,
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def status_of(error: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body)
    return body


def collect(stream: Iterator[dict[str, Any]], watcher: watch.Watch, count: int) -> list[dict[str, Any]]:
    """The first ``count`` events of a watch stream, then the watch is stopped."""
    events = []
    for event in stream:
        events.append(event)
        if len(events) == count:
            watcher.stop()
            break
    return events
