"""The events of the twin: Strimzi's restart events and the kubelet's pod lifecycle events.

Restart events as Strimzi >= 0.46 publishes them (``KubernetesRestartEventPublisher``): one
``events.k8s.io/v1`` Event per restart reason, action ``StrimziInitiatedPodRestart``, reason the
PascalCase ``RestartReason``, ``regarding`` the Kafka CR, ``related`` the Pod, note "Rolling Pod
<pod> due to <the reason's note>". The twin also puts the objects' uid (and apiVersion) in those
references: ``kubectl describe`` selects events by ``involvedObject.uid``, so without it
``kubectl describe kafka`` would list none.

The kubelet's events are core v1 Events about the pod itself (``involvedObject`` the pod, with its
uid, ``fieldPath`` the container): Started, Killing and BackOff, with the kubelet's wording. They
are what ``kubectl describe pod`` lists; a restart event names the pod only as ``related``, which
describe does not select (as on a real cluster).
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any

from bot.sandbox.kube.store import ApiError, ObjectStore
from bot.sandbox.operator import names
from bot.sandbox.operator.status import now_iso, now_micro

log = logging.getLogger(__name__)
ACTION = "StrimziInitiatedPodRestart"
REPORTING_CONTROLLER = "strimzi.io/cluster-operator"
KUBELET = "kubelet"
NODE_NAME = "sandbox"  # the one "node" every pod of the twin runs on
CONTAINER = "kafka"


class RestartReason(Enum):
    """The restart reasons the twin can have, with Strimzi's default notes (RestartReason.java)."""

    CONFIG_CHANGE_REQUIRES_RESTART = "Pod needs to be restarted, because reconfiguration cannot be done dynamically"
    MANUAL_ROLLING_UPDATE = "Pod was manually annotated to be rolled"
    POD_HAS_OLD_REVISION = "Pod has old revision"
    POD_STUCK = "Pod needs to be restarted, because it seems to be stuck and restart might help"

    @property
    def pascal(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def note(self) -> str:
        return str(self.value)


def publish_restart_events(
    store: ObjectStore, *, namespace: str, cluster: str, pod: str, reasons: list[RestartReason],
) -> None:
    for reason in reasons:
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"generateName": "strimzi-event", "namespace": namespace},
            "action": ACTION,
            "reason": reason.pascal,
            "type": "Normal",
            "note": f"Rolling Pod {pod} due to {reason.note}"[:1000],
            "eventTime": now_micro(),
            "reportingController": REPORTING_CONTROLLER,
            "reportingInstance": names.OPERATOR_NAME,
            "regarding": _reference(store, names.KAFKA_GROUP, names.KAFKAS, "Kafka", namespace, cluster),
            "related": _reference(store, names.CORE_GROUP, names.PODS, "Pod", namespace, pod),
        }
        try:
            store.create(names.EVENTS_GROUP, names.EVENTS, namespace, body)
        except ApiError as e:  # as in Strimzi: a failed event never fails the roll
            log.warning("restart event for %s not published: %s", pod, e)


def publish_kubelet_event(store: ObjectStore, *, namespace: str, pod: str, uid: str, reason: str, message: str,
                          warning: bool = False) -> None:
    """A core v1 Event about ``pod``'s container, as the kubelet reports one."""
    now = now_iso()
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{pod}.", "namespace": namespace},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": namespace, "name": pod, "uid": uid,
                           "fieldPath": f"spec.containers{{{CONTAINER}}}"},
        "reason": reason,
        "message": message,
        "type": "Warning" if warning else "Normal",
        "source": {"component": KUBELET, "host": NODE_NAME},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "reportingComponent": KUBELET,
        "reportingInstance": NODE_NAME,
    }
    try:
        store.create(names.CORE_GROUP, names.EVENTS, namespace, body)
    except ApiError as e:  # an event is never worth failing the pod's lifecycle for
        log.warning("kubelet event %s for %s not published: %s", reason, pod, e)


def _reference(store: ObjectStore, group: str, plural: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
    reference: dict[str, Any] = {"kind": kind, "namespace": namespace, "name": name}
    try:
        obj = store.get(group, plural, namespace, name)
    except ApiError:
        return reference
    return {"apiVersion": obj["apiVersion"], **reference, "uid": obj["metadata"]["uid"]}
