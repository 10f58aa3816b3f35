"""The Pod and PersistentVolumeClaim documents of a broker, shaped like Strimzi's (pure functions).

Kept apart from ``pods`` (which runs the JVM behind them) so the shapes can be read in one place.
The kubernetes client validates these on read (e.g. ``imageID`` is required), so every field a real
kubelet always sets is set here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.sandbox.operator import names
from bot.sandbox.operator.status import now_iso


@dataclass(frozen=True)
class PodIdentity:
    namespace: str
    cluster: str
    pool: str
    node_id: int
    broker: bool
    controller: bool

    @property
    def name(self) -> str:
        return names.pod_name(self.cluster, self.pool, self.node_id)

    @property
    def pvc(self) -> str:
        return names.pvc_name(self.cluster, self.pool, self.node_id)

    def labels(self) -> dict[str, str]:
        return names.pod_labels(self.cluster, self.pool, self.node_id, broker=self.broker, controller=self.controller)


def image(version: str) -> str:
    return f"quay.io/strimzi/kafka:{names.OPERATOR_VERSION}-kafka-{version}"


def pvc_body(pod: PodIdentity) -> dict[str, Any]:
    labels = {k: v for k, v in pod.labels().items() if not k.startswith(names.LABEL_CONTROLLER)}
    return {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": pod.pvc, "namespace": pod.namespace, "labels": labels,
                     "annotations": {"strimzi.io/delete-claim": "false"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                 "volumeMode": "Filesystem"},
        "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}},
    }


def pod_body(pod: PodIdentity, *, version: str, revision: str, config_hash: str, client_port: int,
             owner: dict[str, Any] | None, rack: str | None = None) -> dict[str, Any]:
    labels = pod.labels()
    if rack:
        # On a real cluster the zone is a label of the Kubernetes node and Strimzi's init container
        # copies it into broker.rack; the twin has no nodes, so the pod carries the label itself.
        labels[names.LABEL_ZONE] = rack
    metadata: dict[str, Any] = {
        "name": pod.name,
        "namespace": pod.namespace,
        "labels": labels,
        "annotations": {
            names.ANNO_KAFKA_VERSION: version,
            names.ANNO_REVISION: revision,
            names.ANNO_BROKER_CONFIG_HASH: config_hash,
        },
    }
    if owner:
        metadata["ownerReferences"] = [owner]
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
        "spec": {
            "hostname": pod.name,
            "subdomain": f"{pod.cluster}-kafka-brokers",
            "containers": [{"name": "kafka", "image": image(version),
                            "ports": [{"name": "tcp-clients", "containerPort": client_port}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": pod.pvc}}],
            "restartPolicy": "Always",
            **({"affinity": _rack_affinity()} if rack else {}),
        },
    }


def _rack_affinity() -> dict[str, Any]:
    # What Strimzi adds with spec.kafka.rack: run only on nodes that carry the topology label.
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": names.LABEL_ZONE, "operator": "Exists"}]}]}}}


@dataclass(frozen=True)
class ContainerView:
    """What the kubelet knows about the one container: enough to write the pod status."""

    version: str
    ready: bool
    alive: bool
    pid: int | None
    crash_looping: bool
    terminating: bool
    restart_count: int
    last_exit_code: int | None
    last_exit_at: str | None
    started_at: str
    host: str


def pod_status(pod: PodIdentity, c: ContainerView) -> dict[str, Any]:
    now = now_iso()
    flag = "True" if c.ready else "False"
    container: dict[str, Any] = {
        "name": "kafka", "ready": c.ready, "restartCount": c.restart_count, "image": image(c.version),
        "imageID": f"sandbox://kafka/{c.version}/libs",  # the jars directory is the twin's "image"
        "started": c.alive,
    }
    if c.crash_looping:
        container["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                          "message": f"back-off restarting failed container kafka in pod {pod.name}"}}
    elif c.terminating:
        container["state"] = {"terminated": {"exitCode": 143, "reason": "Completed", "finishedAt": now}}
    else:
        container["state"] = {"running": {"startedAt": c.started_at}}
        container["containerID"] = f"sandbox://{c.pid}"
    if c.restart_count:
        # The JVM's own exit code: 137 (128 + SIGKILL) for a killed or OOM-killed JVM, 1 for a broker
        # that gave up during start-up.
        code = 137 if c.last_exit_code is None else c.last_exit_code
        container["lastState"] = {"terminated": {"exitCode": code, "reason": "Error",
                                                  "finishedAt": c.last_exit_at or now}}
    conditions: list[dict[str, Any]] = [
        {"type": "PodScheduled", "status": "True", "lastTransitionTime": c.started_at},
        {"type": "Initialized", "status": "True", "lastTransitionTime": c.started_at},
        {"type": "ContainersReady", "status": flag, "lastTransitionTime": now},
        {"type": "Ready", "status": flag, "lastTransitionTime": now},
    ]
    if not c.ready:
        for cond in conditions[2:]:
            cond["reason"] = "ContainersNotReady"
    return {
        "phase": "Running", "conditions": conditions, "containerStatuses": [container],
        "hostIP": "127.0.0.1", "podIP": c.host, "podIPs": [{"ip": c.host}], "startTime": c.started_at,
        "qosClass": "Burstable",
    }
