"""The cluster operator's own Deployment, as Strimzi's installation files create it (trimmed to what
a client reads): the operator image, tagged with the release the twin plays, and
``STRIMZI_KAFKA_IMAGES``, one ``<version>=<image>`` line per Kafka version the twin can really run
(a supported line whose jars are fetched). The daemon applies it next to the Kafka cluster, where
Strimzi's quick start installs the operator; nothing reconciles it.
"""

from __future__ import annotations

from typing import Any

from bot.sandbox.operator import names, pod_objects, versions

DEPLOYMENT_NAME = "strimzi-cluster-operator"
APPS_GROUP = "apps"
DEPLOYMENTS = "deployments"
KAFKA_IMAGES_ENV = "STRIMZI_KAFKA_IMAGES"


def operator_image() -> str:
    return f"quay.io/strimzi/operator:{names.OPERATOR_VERSION}"


def kafka_images(kafka_versions: list[str]) -> str:
    return "".join(f"{v}={pod_objects.image(v)}\n" for v in kafka_versions)


def operator_deployment(namespace: str, kafka_versions: list[str] | None = None) -> dict[str, Any]:
    """The Deployment object; ``kafka_versions`` defaults to the releases whose jars are fetched."""
    runnable = versions.supported_versions() if kafka_versions is None else kafka_versions
    labels = {"app": "strimzi", "name": DEPLOYMENT_NAME}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": DEPLOYMENT_NAME, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(labels)},
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "serviceAccountName": DEPLOYMENT_NAME,
                    "containers": [{
                        "name": DEPLOYMENT_NAME, "image": operator_image(),
                        "args": ["/opt/strimzi/bin/cluster_operator_run.sh"],
                        "env": [
                            {"name": "STRIMZI_NAMESPACE", "value": namespace},
                            {"name": "STRIMZI_FULL_RECONCILIATION_INTERVAL_MS", "value": "120000"},
                            {"name": KAFKA_IMAGES_ENV, "value": kafka_images(runnable)},
                        ],
                    }],
                },
            },
        },
    }
