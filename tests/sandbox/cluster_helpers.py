"""Test-side helpers for driving a sandbox the way the bot will: the kubernetes client and Kafka clients.

Everything here goes through public interfaces only (the Kubernetes API of the emulator, Kafka's
protocol, ``/proc``), never the sandbox's internals, so the tests prove what a user would see.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, TypeVar

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.fixtures.waiting import wait_until

T = TypeVar("T")
GROUP, VERSION = "kafka.strimzi.io", "v1"


class StrimziCluster:
    """One Kafka cluster of a sandbox, seen through the Kubernetes API."""

    def __init__(self, api: client.ApiClient, namespace: str, name: str) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.events_api = client.EventsV1Api(api)

    # -- custom resources --------------------------------------------------------------------
    def get(self, plural: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)
        return obj

    def patch(self, plural: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name, body)
        return obj

    def kafka(self) -> dict[str, Any]:
        return self.get("kafkas", self.name)

    def patch_kafka(self, body: dict[str, Any]) -> int:
        """Merge-patch the Kafka; returns the generation the operator must reach."""
        return int(self.patch("kafkas", self.name, body)["metadata"]["generation"])

    def conditions(self, kind: str | None = None) -> list[dict[str, Any]]:
        conds = (self.kafka().get("status") or {}).get("conditions") or []
        return [c for c in conds if kind is None or c.get("type") == kind]

    def wait_reconciled(self, generation: int, *, timeout: float = 300.0, ready: bool = True) -> dict[str, Any]:
        """Wait for observedGeneration >= generation with a final condition (Ready, or NotReady when asked)."""
        def done() -> dict[str, Any] | None:
            status = self.kafka().get("status") or {}
            types = {c.get("type") for c in status.get("conditions") or []}
            final = "Ready" if ready else "NotReady"
            if int(status.get("observedGeneration") or 0) >= generation and final in types:
                return status
            return None

        status: dict[str, Any] = wait_until(done, timeout=timeout, interval=0.5,
                                            message=f"Kafka {self.name} reconciled at generation {generation}")
        return status

    def bootstrap(self) -> str:
        return str((self.kafka()["status"]["listeners"][0])["bootstrapServers"])

    # -- pods and events ---------------------------------------------------------------------
    def pods(self) -> dict[str, client.V1Pod]:
        items = self.core.list_namespaced_pod(self.namespace, label_selector=f"strimzi.io/cluster={self.name}").items
        return {p.metadata.name: p for p in items}

    def pod_uids(self) -> dict[str, str]:
        return {name: p.metadata.uid for name, p in self.pods().items()}

    def annotate_pod(self, pod: str, key: str, value: str = "true") -> None:
        self.core.patch_namespaced_pod(pod, self.namespace, {"metadata": {"annotations": {key: value}}})

    def restart_events(self) -> list[Any]:
        # Read raw, as the bot reads events: the typed EventsV1Event refuses an event without eventTime,
        # which the kubelet's events (core v1) are, in the sandbox as on a real cluster.
        response = self.events_api.list_namespaced_event(self.namespace, _preload_content=False)
        items = json.loads(response.data)["items"]
        return [_attributes(e) for e in items if e.get("action") == "StrimziInitiatedPodRestart"]

    def create_topic(self, name: str, *, partitions: int, replicas: int, config: dict[str, Any] | None = None
                     ) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KafkaTopic",
                "metadata": {"name": name, "labels": {"strimzi.io/cluster": self.name}},
                "spec": {"partitions": partitions, "replicas": replicas, "config": config or {}}}
        obj: dict[str, Any] = self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace,
                                                                          "kafkatopics", body)
        return obj

    def wait_topic_ready(self, name: str, *, timeout: float = 60.0) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            status = self.get("kafkatopics", name).get("status") or {}
            ok = any(c.get("type") == "Ready" for c in status.get("conditions") or [])
            return status if ok and status.get("topicId") else None

        status: dict[str, Any] = wait_until(ready, timeout=timeout, interval=0.3, message=f"KafkaTopic {name} Ready")
        return status


def pod_ready(pod: client.V1Pod | None) -> bool:
    if pod is None or pod.status is None or not pod.status.conditions:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)


@dataclass(frozen=True)
class PodSample:
    at: float
    event: str  # ADDED / MODIFIED / DELETED
    name: str
    uid: str
    ready: bool


class PodReadinessRecorder:
    """Records every pod change of a cluster through a real watch (its own thread), to judge a roll."""

    def __init__(self, cluster: StrimziCluster) -> None:
        self.cluster = cluster
        self.samples: list[PodSample] = []
        self.initial: dict[str, PodSample] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-watch", daemon=True)

    def __enter__(self) -> PodReadinessRecorder:
        listing = self.cluster.core.list_namespaced_pod(
            self.cluster.namespace, label_selector=f"strimzi.io/cluster={self.cluster.name}")
        now = time.monotonic()
        self.initial = {p.metadata.name: PodSample(now, "LISTED", p.metadata.name, p.metadata.uid, pod_ready(p))
                        for p in listing.items}
        self._resource_version = listing.metadata.resource_version
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            w = watch.Watch()
            try:
                for ev in w.stream(self.cluster.core.list_namespaced_pod, self.cluster.namespace,
                                   label_selector=f"strimzi.io/cluster={self.cluster.name}",
                                   resource_version=self._resource_version, timeout_seconds=2):
                    pod = ev["object"]
                    self._resource_version = pod.metadata.resource_version
                    self.samples.append(PodSample(time.monotonic(), ev["type"], pod.metadata.name, pod.metadata.uid,
                                                  ev["type"] != "DELETED" and pod_ready(pod)))
                    if self._stop.is_set():
                        break
            except ApiException as e:
                if e.status != 410:
                    raise
                self._resource_version = None  # expired: carry on from "now" (never expected here)
            finally:
                w.stop()

    def max_not_ready(self, pods: set[str]) -> int:
        """The largest number of ``pods`` not Ready (or absent) at the same moment."""
        ready = {name: s.ready for name, s in self.initial.items()}
        worst = sum(1 for p in pods if not ready.get(p, False))
        for s in self.samples:
            ready[s.name] = s.ready
            worst = max(worst, sum(1 for p in pods if not ready.get(p, False)))
        return worst

    def uids(self, pod: str) -> list[str]:
        """Distinct uids the pod had, in order (one per incarnation)."""
        seen: list[str] = []
        for s in [self.initial[pod]] if pod in self.initial else []:
            seen.append(s.uid)
        for s in self.samples:
            if s.name == pod and s.uid not in seen:
                seen.append(s.uid)
        return seen


# -- Kafka side ------------------------------------------------------------------------------
def admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="sandbox-tests", request_timeout_ms=15000)


def with_admin(bootstrap: str, fn: Callable[[KafkaAdminClient], T]) -> T:
    a = admin(bootstrap)
    try:
        return fn(a)
    finally:
        a.close()


def produce(bootstrap: str, topic: str, values: list[bytes], *, partition: int | None = None) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=5, linger_ms=5)
    try:
        for v in values:
            producer.send(topic, v, partition=partition)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


def consume_all(bootstrap: str, topic: str, expected: int, *, timeout: float = 30.0) -> list[bytes]:
    # A new group each time: a reused group would resume after its committed offsets.
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"tests-{uuid.uuid4().hex[:8]}",
                             auto_offset_reset="earliest", enable_auto_commit=True, consumer_timeout_ms=1000)
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < expected and time.monotonic() < deadline:
            for record in consumer:
                got.append(record.value)
                if len(got) >= expected:
                    break
    finally:
        consumer.close()
    return got


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def jvm_cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace")


def _attributes(value: Any) -> Any:
    """JSON as nested attributes (``event.related.name``), like the client's models, without their checks."""
    if isinstance(value, dict):
        return SimpleNamespace(**{key: _attributes(item) for key, item in value.items()})
    if isinstance(value, list):
        return [_attributes(item) for item in value]
    return value
