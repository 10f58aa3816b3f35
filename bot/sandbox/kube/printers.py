"""Table columns and cells of the built-in types the sandbox serves, after Kubernetes' own printers.

Ported from ``pkg/printers/internalversion/printers.go`` (``printPod``, ``printEvent``,
``printNamespace``, ``printConfigMap``, ``printPersistentVolumeClaim``) and the default table
convertor (``Name``, ``Created At``) for any other type. Every column is filled, as the API server
does; ``priority: 1`` columns are the ones kubectl shows only with ``-o wide``. Ages are
``duration.HumanDuration`` of the time since the timestamp.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.sandbox.kube.resources import EVENTS_GROUP, ResourceType
from bot.sandbox.kube.views import EVENTS_V1_TO_CORE

Cells = list[Any]
NAME_DESCRIPTION = "Name must be unique within a namespace."
AGE_DESCRIPTION = "CreationTimestamp is a timestamp representing the server time when this object was created."


def column(name: str, description: str, *, type: str = "string", format: str = "", priority: int = 0) -> dict[str, Any]:
    return {"name": name, "type": type, "format": format, "description": description, "priority": priority}


def columns_for(rtype: ResourceType) -> list[dict[str, Any]]:
    printer = _PRINTERS.get((rtype.group, rtype.plural))
    if printer is None:
        return [column("Name", NAME_DESCRIPTION, format="name"),
                column("Created At", AGE_DESCRIPTION, type="date")]
    return printer[0]


def cells_for(rtype: ResourceType, obj: dict[str, Any]) -> Cells:
    printer = _PRINTERS.get((rtype.group, rtype.plural))
    if printer is None:
        return [obj["metadata"]["name"], obj["metadata"].get("creationTimestamp")]
    return printer[1](obj)


# -- time ------------------------------------------------------------------------------------

def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age(text: str | None, *, now: datetime | None = None) -> str:
    """``translateTimestampSince``: ``<unknown>`` without a timestamp, else the human duration."""
    moment = parse_time(text)
    if moment is None:
        return "<unknown>"
    return human_duration(((now or datetime.now(UTC)) - moment).total_seconds())


def human_duration(seconds: float) -> str:
    """``k8s.io/apimachinery/pkg/util/duration.HumanDuration``: 45s, 5m3s, 3h, 2d4h, 3y..."""
    whole = int(seconds)
    if whole < -1:
        return "<invalid>"
    if whole < 0:
        return "0s"
    if whole < 120:
        return f"{whole}s"
    minutes = whole // 60
    if minutes < 10:
        return f"{minutes}m" if whole % 60 == 0 else f"{minutes}m{whole % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = whole // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


# -- pods ------------------------------------------------------------------------------------

_POD_COLUMNS = [
    column("Name", NAME_DESCRIPTION, format="name"),
    column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    column("Status", "The aggregate status of the containers in this pod."),
    column("Restarts", "The number of times the containers in this pod have been restarted and when the last "
           "container in this pod has restarted."),
    column("Age", AGE_DESCRIPTION),
    column("IP", "The IP address assigned to the pod.", priority=1),
    column("Node", "The name of the node where the pod is running.", priority=1),
    column("Nominated Node", "The node the scheduler nominated for the pod, if any.", priority=1),
    column("Readiness Gates", "The pod's readiness gates that are true, of all of them.", priority=1),
]


def _pod_cells(pod: dict[str, Any]) -> Cells:
    metadata, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    phase = status.get("phase") or ""
    reason = status.get("reason") or phase
    restarts, ready, has_running = 0, 0, False
    last_restart: datetime | None = None
    for container in reversed(status.get("containerStatuses") or []):
        restarts += int(container.get("restartCount") or 0)
        finished = parse_time(((container.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
        if finished is not None and (last_restart is None or finished > last_restart):
            last_restart = finished
        state = container.get("state") or {}
        waiting, terminated = state.get("waiting"), state.get("terminated")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated and terminated.get("reason"):
            reason = terminated["reason"]
        elif terminated:
            signal = terminated.get("signal")
            reason = f"Signal:{signal}" if signal else f"ExitCode:{terminated.get('exitCode', 0)}"
        elif container.get("ready") and state.get("running") is not None:
            has_running = True
            ready += 1
    if reason == "Completed" and has_running:
        pod_ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        reason = "Running" if pod_ready else "NotReady"
    if metadata.get("deletionTimestamp") and reason != "Unknown" and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    restart_text = str(restarts)
    if restarts and last_restart is not None:
        restart_text = f"{restarts} ({age(last_restart.isoformat())} ago)"
    ips = status.get("podIPs") or []
    gates = spec.get("readinessGates") or []
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    gates_text = f"{sum(conditions.get(g.get('conditionType')) == 'True' for g in gates)}/{len(gates)}" if gates \
        else "<none>"
    return [metadata["name"], f"{ready}/{len(spec.get('containers') or [])}", reason, restart_text,
            age(metadata.get("creationTimestamp")), (ips[0].get("ip") if ips else "") or "<none>",
            spec.get("nodeName") or "<none>", status.get("nominatedNodeName") or "<none>", gates_text]


# -- events (core v1 and events.k8s.io v1 alike: the table of the stored core form) ---------------

_EVENT_COLUMNS = [
    column("Last Seen", "The time at which the most recent occurrence of this event was recorded."),
    column("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
    column("Reason", "This should be a short, machine understandable string that gives the reason for the "
           "transition into the object's current status."),
    column("Object", "The object that this event is about."),
    column("Subobject", "The field of the object the event is about, if any.", priority=1),
    column("Source", "The component reporting this event.", priority=1),
    column("Message", "A human-readable description of the status of this operation."),
    column("First Seen", "The time at which the event was first recorded.", priority=1),
    column("Count", "The number of times this event has occurred.", priority=1),
    column("Name", NAME_DESCRIPTION, format="name", priority=1),
]


def event_cells(event: dict[str, Any]) -> Cells:
    """The cells of an event in its core v1 form (``involvedObject``, ``message``, ``source``...)."""
    first = age(event.get("firstTimestamp")) if event.get("firstTimestamp") else age(event.get("eventTime"))
    last = age(event.get("lastTimestamp")) if event.get("lastTimestamp") else first
    count = event.get("count") or 0
    series = event.get("series")
    if series:
        last = age(series.get("lastObservedTime"))
        count = series.get("count") or 0
    elif count == 0:
        count = 1  # a singleton event of the new API has no count
    involved = event.get("involvedObject") or {}
    kind = str(involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = event.get("source") or {}
    component = source.get("component") or event.get("reportingComponent") or ""
    instance = source.get("host") or event.get("reportingInstance") or ""
    return [last, event.get("type") or "", event.get("reason") or "", target, involved.get("fieldPath") or "",
            f"{component}, {instance}" if instance else component, str(event.get("message") or "").strip(),
            first, int(count), event["metadata"]["name"]]


# -- namespaces, configmaps, persistentvolumeclaims --------------------------------------------

_NAMESPACE_COLUMNS = [column("Name", NAME_DESCRIPTION, format="name"),
                      column("Status", "The current lifecycle phase of the namespace."),
                      column("Age", AGE_DESCRIPTION)]
_CONFIGMAP_COLUMNS = [column("Name", NAME_DESCRIPTION, format="name"),
                      column("Data", "The number of keys in data and binaryData.", type="integer"),
                      column("Age", AGE_DESCRIPTION)]
_SECRET_COLUMNS = [column("Name", NAME_DESCRIPTION, format="name"),
                   column("Type", "The type of the secret"),
                   column("Data", "The number of keys in data and stringData.", type="integer"),
                   column("Age", AGE_DESCRIPTION)]
_PVC_COLUMNS = [column("Name", NAME_DESCRIPTION, format="name"),
                column("Status", "The current phase of the claim."),
                column("Volume", "The binding reference to the PersistentVolume backing this claim."),
                column("Capacity", "The actual resources of the underlying volume."),
                column("Access Modes", "The actual access modes the volume backing the claim has."),
                column("StorageClass", "StorageClass of the pvc"),
                column("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
                column("Age", AGE_DESCRIPTION),
                column("VolumeMode", "What type of volume is required by the claim.", priority=1)]
_ACCESS_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}


def _namespace_cells(namespace: dict[str, Any]) -> Cells:
    metadata = namespace["metadata"]
    return [metadata["name"], (namespace.get("status") or {}).get("phase") or "",
            age(metadata.get("creationTimestamp"))]


def _configmap_cells(configmap: dict[str, Any]) -> Cells:
    metadata = configmap["metadata"]
    return [metadata["name"], len(configmap.get("data") or {}) + len(configmap.get("binaryData") or {}),
            age(metadata.get("creationTimestamp"))]


def _secret_cells(secret: dict[str, Any]) -> Cells:  # printSecret
    metadata = secret["metadata"]
    return [metadata["name"], secret.get("type") or "", len(secret.get("data") or {}),
            age(metadata.get("creationTimestamp"))]


def _pvc_cells(claim: dict[str, Any]) -> Cells:
    metadata, spec, status = claim["metadata"], claim.get("spec") or {}, claim.get("status") or {}
    phase = "Terminating" if metadata.get("deletionTimestamp") else status.get("phase") or ""
    capacity = modes = ""
    if spec.get("volumeName"):
        capacity = str((status.get("capacity") or {}).get("storage") or "")
        modes = ",".join(_ACCESS_MODES.get(mode, mode) for mode in status.get("accessModes") or [])
    storage_class = spec.get("storageClassName") or (metadata.get("annotations") or {}).get(
        "volume.beta.kubernetes.io/storage-class", "")
    return [metadata["name"], phase, spec.get("volumeName") or "", capacity, modes, storage_class,
            spec.get("volumeAttributesClassName") or "<unset>", age(metadata.get("creationTimestamp")),
            spec.get("volumeMode") or "<unset>"]


_PRINTERS: dict[tuple[str, str], tuple[list[dict[str, Any]], Callable[[dict[str, Any]], Cells]]] = {
    ("", "pods"): (_POD_COLUMNS, _pod_cells),
    ("", "events"): (_EVENT_COLUMNS, event_cells),
    (EVENTS_GROUP, "events"): (_EVENT_COLUMNS, lambda event: event_cells(
        {EVENTS_V1_TO_CORE.get(key, key): value for key, value in event.items()})),
    ("", "namespaces"): (_NAMESPACE_COLUMNS, _namespace_cells),
    ("", "configmaps"): (_CONFIGMAP_COLUMNS, _configmap_cells),
    ("", "secrets"): (_SECRET_COLUMNS, _secret_cells),
    ("", "persistentvolumeclaims"): (_PVC_COLUMNS, _pvc_cells),
}
