"""Kubernetes watches for the alert monitors: per managed cluster, its Kafka resource, its Kafka pods
and the Strimzi restart events, in the cluster's own namespace and nothing else (Botkube's
watch-everything informer throttled API servers: docs/slack.md §4).

Each watch is the classic list-then-watch loop: list (which gives a resourceVersion and the
current objects), then watch from that resourceVersion, and when a stream ends (``timeout_s``),
watch again from the last resourceVersion seen. A 410 Gone (the API server compacted past our
resourceVersion, e.g. after a long disconnection) is answered by listing again, which replaces
the cache wholesale: every alert rule is level-based (what is true now), so a re-list repeats
nothing. Bookmarks are not requested: a quiet watch then resumes from an old resourceVersion,
which is exactly what makes 410 happen in real life, and it is handled.

The kubernetes client is synchronous and a watch blocks for the stream's life, so each watch runs
in a daemon thread of its own (never in the shared executor, which it would starve) and hands
changes to the event loop with ``call_soon_threadsafe``. ``stop`` shuts the socket of the request
in flight, and of one whose answer comes after it (a stop during a list used to be followed by a
watch stream nothing stopped), so the thread ends at once and can be joined: a daemon thread still
running when the interpreter finalizes aborts the process (SIGABRT) if data reaches it then.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from bot.kube.parse import broker_pod_from, kafka_status_from, timestamp
from bot.kube.resources import ResourceCalls
from bot.kube.versions import GROUP
from handlers.alerting.conditions import PodSeen, RestartEvent
from handlers.alerting.monitoring import KubeState
from handlers.ports import BrokerPod, ClusterRef, KafkaResourceStatus

log = logging.getLogger(__name__)

RESTART_ACTION = "StrimziInitiatedPodRestart"
EVENT_RETENTION = timedelta(hours=1)  # what a real API server keeps of events anyway
MAX_BACKOFF_S = 30.0


class ResourceWatch:
    """List, then watch, forever (until ``stop``), in a thread. ``on_list(items)`` replaces the
    caller's view; ``on_event(type, object)`` updates it; both are called on the event loop."""

    def __init__(
        self, name: str, list_call: Callable[..., Any], *, loop: asyncio.AbstractEventLoop,
        on_list: Callable[[list[dict[str, Any]]], None], on_event: Callable[[str, dict[str, Any]], None],
        timeout_s: int = 60, **list_kwargs: Any,
    ) -> None:
        self.name = name
        self._list_call = self._remembering(list_call)
        self._response: Any = None  # the urllib3 response being read, for stop() to shut
        self._list_kwargs = list_kwargs
        self._loop = loop
        self._on_list = on_list
        self._on_event = on_event
        self._timeout_s = timeout_s
        self._stop = threading.Event()
        self._watch: watch.Watch | None = None
        self._thread = threading.Thread(target=self._run, name=f"kco-watch-{name}", daemon=True)
        self.relists = 0  # lists after the first: 410s and errors
        self.resource_version: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()  # type: ignore[no-untyped-call]
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()  # interrupts a read blocked in the thread (urllib3 >= 2.3)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _remembering(self, call: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(call)  # Watch.stream reads the call's docstring for its return type
        def remembered(*args: Any, **kwargs: Any) -> Any:
            self._response = call(*args, **kwargs)
            if self._stop.is_set():  # stop() ran while this request waited for its answer: end it here
                with contextlib.suppress(Exception):
                    self._response.shutdown()
            return self._response
        return remembered

    def _deliver(self, fn: Callable[..., None], *args: Any) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)

    def _list(self) -> str:
        body = self._list_call(_preload_content=False, _request_timeout=(5, 30), **self._list_kwargs)
        listed = json.loads(body.data or b"{}")
        items = [item for item in listed.get("items") or [] if isinstance(item, dict)]
        self._deliver(self._on_list, items)
        return str((listed.get("metadata") or {}).get("resourceVersion") or "")

    def _run(self) -> None:
        backoff = 0.5
        first = True
        while not self._stop.is_set():
            try:
                if self.resource_version is None:
                    if not first:
                        self.relists += 1
                    self.resource_version = self._list()
                    first = False
                self._stream()
                backoff = 0.5
            except ApiException as exc:
                if self._stop.is_set():
                    return
                if exc.status == 410:
                    log.info("watch %s: resourceVersion %s expired (410 Gone); listing again",
                             self.name, self.resource_version)
                    self.resource_version = None
                    continue
                log.warning("watch %s: API error %s %s; retrying in %.1f s", self.name, exc.status, exc.reason, backoff)
                self._pause(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            except Exception as exc:  # connection refused, reset, timeouts: list again after a pause
                if self._stop.is_set():
                    return  # stopping closed the connection under the stream: nothing to report
                log.warning("watch %s: %s: %s; retrying in %.1f s", self.name, type(exc).__name__, exc, backoff)
                self.resource_version = None
                self._pause(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _pause(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _stream(self) -> None:
        # Only the raw objects are used. Deserializing into the client's models is not only wasted:
        # an events.k8s.io/v1 Event recorded through the core/v1 API has no eventTime, which the
        # client's EventsV1Event model requires, and the stream raised on it forever.
        self._watch = watch.Watch(return_type="object")  # type: ignore[no-untyped-call]
        for event in self._watch.stream(  # type: ignore[no-untyped-call]
            self._list_call, resource_version=self.resource_version, timeout_seconds=self._timeout_s,
            _request_timeout=(5, self._timeout_s + 10), **self._list_kwargs,
        ):
            if self._stop.is_set():
                break
            kind, raw = event.get("type"), event.get("raw_object")
            if not isinstance(raw, dict):
                continue
            version = (raw.get("metadata") or {}).get("resourceVersion")
            if version:
                self.resource_version = str(version)
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self._deliver(self._on_event, str(kind), raw)


class ClusterWatches:
    """The three watches of one cluster and the ``KubeState`` they maintain."""

    def __init__(
        self, ref: ClusterRef, api: client.ApiClient, *, loop: asyncio.AbstractEventLoop,
        on_change: Callable[[], None], timeout_s: int = 60, strimzi_version: str = "v1",
    ) -> None:
        self.ref = ref
        self._on_change = on_change
        self._kafka: KafkaResourceStatus | None = None
        self._pods: dict[str, tuple[BrokerPod, PodSeen, bool]] = {}  # name -> pod, seen, broker role
        self._events: dict[str, RestartEvent] = {}
        self._listed: set[str] = set()
        namespace, selector = ref.namespace, f"strimzi.io/cluster={ref.kafka},strimzi.io/kind=Kafka"
        custom, resources = client.CustomObjectsApi(api), ResourceCalls(api)
        common = {"loop": loop, "timeout_s": timeout_s}
        self.watches = [
            ResourceWatch(f"{ref.name}/kafka", custom.list_namespaced_custom_object, group=GROUP,
                          version=strimzi_version, namespace=namespace, plural="kafkas",
                          field_selector=f"metadata.name={ref.kafka}",
                          on_list=self._kafka_listed, on_event=self._kafka_event, **common),  # type: ignore[arg-type]
            ResourceWatch(f"{ref.name}/pods", resources.list_namespaced_pod, namespace=namespace,
                          label_selector=selector, on_list=self._pods_listed, on_event=self._pod_event, **common),  # type: ignore[arg-type]
            ResourceWatch(f"{ref.name}/events", resources.list_namespaced_event, namespace=namespace,
                          on_list=self._events_listed, on_event=self._event_event, **common),  # type: ignore[arg-type]
        ]

    def start(self) -> None:
        for w in self.watches:
            w.start()

    def stop(self) -> None:
        for w in self.watches:
            w.stop()

    def join(self, timeout: float) -> None:
        """Wait (at most ``timeout`` in all) for the stopped watches' threads to end."""
        deadline = time.monotonic() + timeout
        for w in self.watches:
            w.join(max(0.0, deadline - time.monotonic()))

    @property
    def relists(self) -> int:
        return sum(w.relists for w in self.watches)

    def state(self) -> KubeState:
        events = tuple(sorted(self._events.values(), key=lambda e: e.at))
        return KubeState(
            synced=len(self._listed) == len(self.watches), kafka=self._kafka,
            pods=tuple(sorted((pod for pod, _, _ in self._pods.values()), key=lambda p: p.node_id)),
            broker_ids=tuple(sorted(pod.node_id for pod, _, broker in self._pods.values() if broker)),
            pods_seen={name: seen for name, (_, seen, _) in self._pods.items()}, restart_events=events,
        )

    def _changed(self, watch_name: str) -> None:
        self._listed.add(watch_name)
        self._on_change()

    # -- the Kafka resource --------------------------------------------------------------------

    def _kafka_listed(self, items: list[dict[str, Any]]) -> None:
        match = [i for i in items if (i.get("metadata") or {}).get("name") == self.ref.kafka]
        self._kafka = kafka_status_from(match[0], self.ref.listener) if match else None
        self._changed("kafka")

    def _kafka_event(self, kind: str, obj: dict[str, Any]) -> None:
        if (obj.get("metadata") or {}).get("name") != self.ref.kafka:
            return
        self._kafka = None if kind == "DELETED" else kafka_status_from(obj, self.ref.listener)
        self._changed("kafka")

    # -- pods ------------------------------------------------------------------------------------

    @staticmethod
    def _pod_entry(obj: dict[str, Any]) -> tuple[BrokerPod, PodSeen, bool] | None:
        pod = broker_pod_from(obj)
        if pod is None:
            return None
        metadata = obj.get("metadata") or {}
        broker = str((metadata.get("labels") or {}).get("strimzi.io/broker-role", "true")).lower() == "true"
        return pod, PodSeen(ready=pod.ready, created_at=timestamp(metadata.get("creationTimestamp"))), broker

    def _pods_listed(self, items: list[dict[str, Any]]) -> None:
        self._pods = {}
        for item in items:
            entry = self._pod_entry(item)
            if entry is not None:
                self._pods[entry[0].name] = entry
        self._changed("pods")

    def _pod_event(self, kind: str, obj: dict[str, Any]) -> None:
        name = str((obj.get("metadata") or {}).get("name") or "")
        if kind == "DELETED":
            self._pods.pop(name, None)
        else:
            entry = self._pod_entry(obj)
            if entry is not None:
                self._pods[name] = entry
        self._changed("pods")

    # -- Strimzi restart events --------------------------------------------------------------------

    def _restart_event(self, obj: dict[str, Any]) -> tuple[str, RestartEvent] | None:
        if obj.get("action") != RESTART_ACTION:
            return None
        regarding, related = obj.get("regarding") or {}, obj.get("related") or {}
        if regarding.get("kind") != "Kafka" or regarding.get("name") != self.ref.kafka or not related.get("name"):
            return None
        metadata = obj.get("metadata") or {}
        at = timestamp(obj.get("eventTime")) or timestamp(metadata.get("creationTimestamp"))
        if at is None:
            return None
        uid = str(metadata.get("uid") or metadata.get("name") or id(obj))
        return uid, RestartEvent(pod=str(related["name"]), reason=str(obj.get("reason") or ""),
                                 note=str(obj.get("note") or ""), at=at)

    def _keep_recent(self) -> None:
        cutoff = datetime.now(UTC) - EVENT_RETENTION
        self._events = {uid: e for uid, e in self._events.items() if e.at >= cutoff}

    def _events_listed(self, items: list[dict[str, Any]]) -> None:
        self._events = {}
        for item in items:
            found = self._restart_event(item)
            if found is not None:
                self._events[found[0]] = found[1]
        self._keep_recent()
        self._changed("events")

    def _event_event(self, kind: str, obj: dict[str, Any]) -> None:
        found = self._restart_event(obj)
        if found is None:
            return
        if kind == "DELETED":
            self._events.pop(found[0], None)
        else:
            self._events[found[0]] = found[1]
        self._keep_recent()
        self._changed("events")
