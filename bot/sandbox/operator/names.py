"""Names Strimzi puts on things: API groups, labels, annotations, object names.

One place for the strings, so that the twin and Strimzi cannot drift apart silently
(docs/strimzi.md §1, §2, §9).
"""

from __future__ import annotations

# The Strimzi release the twin plays (status.operatorLastSuccessfulVersion).
OPERATOR_VERSION = "1.2.0"
OPERATOR_NAME = "strimzi-cluster-operator-sandbox"  # the "operator pod" in restart events

KAFKA_GROUP = "kafka.strimzi.io"
KAFKA_API_VERSION = f"{KAFKA_GROUP}/v1"
PODSET_GROUP = "core.strimzi.io"
PODSET_API_VERSION = f"{PODSET_GROUP}/v1"
EVENTS_GROUP = "events.k8s.io"
CORE_GROUP = ""

KAFKAS = "kafkas"
NODE_POOLS = "kafkanodepools"
TOPICS = "kafkatopics"
USERS = "kafkausers"
SECRETS = "secrets"
REBALANCES = "kafkarebalances"
CONFIG_MAPS = "configmaps"
PODSETS = "strimzipodsets"
PODS = "pods"
PVCS = "persistentvolumeclaims"
EVENTS = "events"

# Labels (KafkaPool.java, Labels.java).
LABEL_CLUSTER = "strimzi.io/cluster"
LABEL_KIND = "strimzi.io/kind"
LABEL_NAME = "strimzi.io/name"
LABEL_COMPONENT_TYPE = "strimzi.io/component-type"
LABEL_POOL_NAME = "strimzi.io/pool-name"
LABEL_BROKER_ROLE = "strimzi.io/broker-role"
LABEL_CONTROLLER_ROLE = "strimzi.io/controller-role"
LABEL_POD_NAME = "strimzi.io/pod-name"
LABEL_CONTROLLER = "strimzi.io/controller"
LABEL_CONTROLLER_NAME = "strimzi.io/controller-name"
LABEL_ZONE = "topology.kubernetes.io/zone"  # the twin's broker pods carry their node's zone (rack)

# Annotations (ResourceAnnotations.java, Annotations.java).
ANNO_KAFKA_VERSION = "strimzi.io/kafka-version"
ANNO_REVISION = "strimzi.io/revision"
ANNO_BROKER_CONFIG_HASH = "strimzi.io/broker-configuration-hash"
ANNO_MANUAL_ROLL = "strimzi.io/manual-rolling-update"
ANNO_DELETE_POD_AND_PVC = "strimzi.io/delete-pod-and-pvc"
ANNO_PAUSE = "strimzi.io/pause-reconciliation"
ANNO_SKIP_SCALEDOWN_CHECK = "strimzi.io/skip-broker-scaledown-check"
ANNO_NEXT_NODE_IDS = "strimzi.io/next-node-ids"
ANNO_REMOVE_NODE_IDS = "strimzi.io/remove-node-ids"
ANNO_TOPIC_MANAGED = "strimzi.io/managed"

ROLE_BROKER = "broker"
ROLE_CONTROLLER = "controller"


def is_true(annotations: dict[str, str] | None, key: str) -> bool:
    """Strimzi reads boolean annotations case-insensitively as "true"."""
    return str((annotations or {}).get(key, "")).strip().lower() == "true"


def component_name(cluster: str) -> str:
    """``<cluster>-kafka``: the strimzi.io/name of every Kafka pod, whatever its pool."""
    return f"{cluster}-kafka"


def podset_name(cluster: str, pool: str) -> str:
    return f"{cluster}-{pool}"


def pod_name(cluster: str, pool: str, node_id: int) -> str:
    """``<cluster>-<pool>-<id>``: the numeric suffix is the Kafka node id."""
    return f"{cluster}-{pool}-{node_id}"


def pvc_name(cluster: str, pool: str, node_id: int) -> str:
    return f"data-{pod_name(cluster, pool, node_id)}"


def pool_selector_labels(cluster: str, pool: str) -> dict[str, str]:
    return {
        LABEL_CLUSTER: cluster,
        LABEL_NAME: component_name(cluster),
        LABEL_KIND: "Kafka",
        LABEL_POOL_NAME: pool,
    }


def pod_labels(cluster: str, pool: str, node_id: int, *, broker: bool, controller: bool) -> dict[str, str]:
    return {
        **pool_selector_labels(cluster, pool),
        LABEL_COMPONENT_TYPE: "kafka",
        LABEL_BROKER_ROLE: str(broker).lower(),
        LABEL_CONTROLLER_ROLE: str(controller).lower(),
        LABEL_POD_NAME: pod_name(cluster, pool, node_id),
        LABEL_CONTROLLER: "strimzipodset",
        LABEL_CONTROLLER_NAME: podset_name(cluster, pool),
        "app.kubernetes.io/name": "kafka",
        "app.kubernetes.io/instance": cluster,
        "app.kubernetes.io/part-of": f"strimzi-{cluster}",
        "app.kubernetes.io/managed-by": "strimzi-cluster-operator",
    }


def cluster_ca_cert_secret(cluster: str) -> str:
    """``<cluster>-cluster-ca-cert``: the CA that signed the brokers' certificates (``ca.crt``)."""
    return f"{cluster}-cluster-ca-cert"


def clients_ca_cert_secret(cluster: str) -> str:
    """``<cluster>-clients-ca-cert``: the CA that signs the KafkaUsers' certificates (``ca.crt``)."""
    return f"{cluster}-clients-ca-cert"


def selector_string(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())
