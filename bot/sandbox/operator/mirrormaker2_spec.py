"""A KafkaMirrorMaker2 (v1 layout) read into what the twin runs: one Connect worker and its connectors.

Pure functions. Strimzi names each connector ``<source alias>-><target alias>.<class>``, gives the
Connect cluster the target's bootstrap and storage topics (``spec.target``), and builds every
connector config from the mirror: the aliases and bootstraps, ``topics``/``groups`` from the patterns,
``tasks.max``, then the connector's own ``config``. The twin adds short refresh and checkpoint
intervals (5 s instead of 600 s / 60 s; the connector's ``config`` still wins), replication factors
of -1 (the brokers' default: a 1-node sandbox has no 2 or 3 replicas), and the fault hook (see
``faults``): the source consumer's ``interceptor.classes`` read from a file at every task start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.operator import names
from bot.sandbox.operator.connect_worker import WorkerSettings
from bot.sandbox.operator.status import ReconcileFailure
from bot.sandbox.operator.versions import DEFAULT_KAFKA_VERSION, SUPPORTED_LINES, release_line

MM2_PLURAL = "kafkamirrormaker2s"
KIND = "KafkaMirrorMaker2"
SOURCE_CLASS = "org.apache.kafka.connect.mirror.MirrorSourceConnector"
CHECKPOINT_CLASS = "org.apache.kafka.connect.mirror.MirrorCheckpointConnector"
ANNO_RESTART_CONNECTOR = "strimzi.io/restart-connector"
ANNO_RESTART_TASK = "strimzi.io/restart-connector-task"
STATES = ("running", "paused", "stopped")
FAULT_HOOK_KEY = "source.consumer.interceptor.classes"
# v1beta2's defaults for the Connect cluster of a MirrorMaker 2 (spec.target may name its own).
DEFAULT_GROUP_ID = "mirrormaker2-cluster"
DEFAULT_TOPICS = ("mirrormaker2-cluster-configs", "mirrormaker2-cluster-offsets", "mirrormaker2-cluster-status")
TWIN_DEFAULTS = {
    "refresh.topics.interval.seconds": "5",
    "refresh.groups.interval.seconds": "5",
    "emit.checkpoints.interval.seconds": "5",
    "sync.group.offsets.interval.seconds": "5",
    "replication.factor": "-1",
    "offset-syncs.topic.replication.factor": "-1",
    "checkpoints.topic.replication.factor": "-1",
    "sync.topic.acls.enabled": "false",
}
_ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ConnectorPlan:
    name: str
    config: dict[str, str]
    state: str  # running | paused | stopped
    auto_restart: bool
    max_restarts: int | None


@dataclass
class MirrorPlan:
    worker: WorkerSettings
    replicas: int
    connectors: list[ConnectorPlan] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def invalid(name: str, problem: str) -> ReconcileFailure:
    return ReconcileFailure("InvalidResourceException", f"KafkaMirrorMaker2 {name} is invalid: {problem}")


def plan_mirror(mm2: dict[str, Any], *, fault_file: str) -> MirrorPlan:
    """What to run for this resource, or ReconcileFailure (InvalidResourceException / unsupported version)."""
    name = str(mm2["metadata"]["name"])
    spec = mm2.get("spec") or {}
    version = str(spec.get("version") or DEFAULT_KAFKA_VERSION)
    if release_line(version) not in SUPPORTED_LINES:
        raise ReconcileFailure("UnsupportedKafkaVersionException",
                               f"Unsupported Kafka.spec.version: {version}. Supported versions are: "
                               f"{', '.join(line + '.x' for line in SUPPORTED_LINES)}")
    target = spec.get("target")
    if not isinstance(target, dict) or not target.get("alias") or not target.get("bootstrapServers"):
        raise invalid(name, "spec.target needs alias and bootstrapServers (the target cluster also hosts the "
                      "Connect cluster)")
    target_alias = _alias(name, target, "spec.target")
    mirrors = spec.get("mirrors")
    if not isinstance(mirrors, list) or not mirrors:
        raise invalid(name, "spec.mirrors must list at least one mirror ({source: {alias, bootstrapServers}, "
                      "sourceConnector: {...}, ...})")
    replicas = int(spec.get("replicas", 1))
    if replicas < 0:
        raise invalid(name, f"spec.replicas must be 0 or more (got {replicas})")
    worker = WorkerSettings(
        kafka_version=version, bootstrap_servers=str(target["bootstrapServers"]),
        group_id=str(target.get("groupId") or DEFAULT_GROUP_ID),
        config_topic=str(target.get("configStorageTopic") or DEFAULT_TOPICS[0]),
        offset_topic=str(target.get("offsetStorageTopic") or DEFAULT_TOPICS[1]),
        status_topic=str(target.get("statusStorageTopic") or DEFAULT_TOPICS[2]),
        config=tuple(sorted((str(k), _text(v)) for k, v in (target.get("config") or {}).items())),
    )
    plan = MirrorPlan(worker=worker, replicas=replicas)
    if replicas > 1:
        plan.warnings.append(f"spec.replicas is {replicas}: the sandbox runs one Connect worker")
    for i, mirror in enumerate(mirrors):
        where = f"spec.mirrors[{i}]"
        source = mirror.get("source") if isinstance(mirror, dict) else None
        if not isinstance(source, dict) or not source.get("alias") or not source.get("bootstrapServers"):
            raise invalid(name, f"{where}.source needs alias and bootstrapServers")
        source_alias = _alias(name, source, f"{where}.source")
        if source_alias == target_alias:
            raise invalid(name, f"{where}.source.alias {source_alias!r} is the target's alias too")
        common = {
            "source.cluster.alias": source_alias, "target.cluster.alias": target_alias,
            "source.cluster.bootstrap.servers": str(source["bootstrapServers"]),
            "target.cluster.bootstrap.servers": str(target["bootstrapServers"]),
        }
        for key, field_name in (("topics", "topicsPattern"), ("topics.exclude", "topicsExcludePattern"),
                                ("groups", "groupsPattern"), ("groups.exclude", "groupsExcludePattern")):
            if mirror.get(field_name) is not None:
                pattern = str(mirror[field_name])
                _check_patterns(name, f"{where}.{field_name}", pattern)
                common[key] = pattern
        for field_name, cls in (("sourceConnector", SOURCE_CLASS), ("checkpointConnector", CHECKPOINT_CLASS)):
            conn = mirror.get(field_name)
            if conn is None:
                continue
            if not isinstance(conn, dict):
                raise invalid(name, f"{where}.{field_name} must be an object")
            plan.connectors.append(_connector(name, f"{where}.{field_name}", conn, cls, common,
                                              f"{source_alias}->{target_alias}", fault_file))
    seen = [c.name for c in plan.connectors]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise invalid(name, f"two mirrors make the same connector {dupes[0]} (one mirror per source alias)")
    return plan


def _connector(name: str, where: str, conn: dict[str, Any], cls: str, common: dict[str, str], flow: str,
               fault_file: str) -> ConnectorPlan:
    state = str(conn.get("state") or "running").lower()
    if state not in STATES:
        raise invalid(name, f"{where}.state must be one of {', '.join(STATES)} (got {conn.get('state')!r})")
    tasks_max = conn.get("tasksMax", 1)
    if not isinstance(tasks_max, int) or isinstance(tasks_max, bool) or tasks_max < 1:
        raise invalid(name, f"{where}.tasksMax must be a whole number of 1 or more (got {tasks_max!r})")
    auto = conn.get("autoRestart") or {}
    max_restarts = auto.get("maxRestarts")
    connector_name = f"{flow}.{cls.rsplit('.', 1)[1]}"
    config = {"connector.class": cls, "tasks.max": str(tasks_max), **common, **TWIN_DEFAULTS}
    config.update({str(k): _text(v) for k, v in (conn.get("config") or {}).items()})
    config.setdefault(FAULT_HOOK_KEY, f"${{file:{fault_file}:{connector_name}}}")
    return ConnectorPlan(name=connector_name, config=config, state=state,
                         auto_restart=bool(auto.get("enabled", False)),
                         max_restarts=int(max_restarts) if max_restarts is not None else None)


def _alias(name: str, cluster: dict[str, Any], where: str) -> str:
    alias = str(cluster["alias"])
    if not _ALIAS_RE.match(alias):
        raise invalid(name, f"{where}.alias {alias!r} may hold only letters, digits, '.', '_' and '-'")
    return alias


def _check_patterns(name: str, where: str, text: str) -> None:
    for part in text.split(","):
        try:
            re.compile(part.strip())
        except re.error as e:
            raise invalid(name, f"{where} {part.strip()!r} is not a regular expression ({e})") from e


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


# -- the pod of the worker ---------------------------------------------------------------------
def component_name(name: str) -> str:
    return f"{name}-mirrormaker2"


def pod_name(name: str) -> str:
    return f"{component_name(name)}-0"


def pod_labels(name: str) -> dict[str, str]:
    return {
        names.LABEL_CLUSTER: name, names.LABEL_KIND: KIND, names.LABEL_NAME: component_name(name),
        names.LABEL_COMPONENT_TYPE: "kafka-mirror-maker-2", names.LABEL_POD_NAME: pod_name(name),
        names.LABEL_CONTROLLER: "strimzipodset", names.LABEL_CONTROLLER_NAME: component_name(name),
        "app.kubernetes.io/name": "kafka-mirror-maker-2", "app.kubernetes.io/instance": name,
        "app.kubernetes.io/part-of": f"strimzi-{name}", "app.kubernetes.io/managed-by": "strimzi-cluster-operator",
    }


def label_selector(name: str) -> str:
    return names.selector_string({names.LABEL_CLUSTER: name, names.LABEL_KIND: KIND,
                                  names.LABEL_NAME: component_name(name)})


def pod_body(mm2: dict[str, Any], *, version: str, port: int, pid: int | None, ready: bool,
             started_at: str) -> dict[str, Any]:
    name = mm2["metadata"]["name"]
    image = f"quay.io/strimzi/kafka:{names.OPERATOR_VERSION}-kafka-{version}"
    flag = "True" if ready else "False"
    container = component_name(name)
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name(name), "namespace": mm2["metadata"]["namespace"], "labels": pod_labels(name),
                     "annotations": {names.ANNO_KAFKA_VERSION: version},
                     "ownerReferences": [owner(mm2)]},
        "spec": {"hostname": pod_name(name), "restartPolicy": "Always",
                 "containers": [{"name": container, "image": image,
                                 "ports": [{"name": "rest-api", "containerPort": port}]}]},
        "status": {
            "phase": "Running", "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
            "startTime": started_at, "qosClass": "Burstable",
            "conditions": [{"type": t, "status": s, "lastTransitionTime": started_at} for t, s in (
                ("PodScheduled", "True"), ("Initialized", "True"), ("ContainersReady", flag), ("Ready", flag))],
            "containerStatuses": [{
                "name": container, "ready": ready, "restartCount": 0, "image": image, "started": pid is not None,
                "imageID": f"sandbox://kafka/{version}/mirror-libs", "containerID": f"sandbox://{pid}",
                "state": {"running": {"startedAt": started_at}}}],
        },
    }


def owner(mm2: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": mm2.get("apiVersion", names.KAFKA_API_VERSION), "kind": KIND,
            "name": mm2["metadata"]["name"], "uid": mm2["metadata"]["uid"], "controller": True,
            "blockOwnerDeletion": False}
