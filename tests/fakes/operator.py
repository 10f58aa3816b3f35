"""The operator-Deployment port (``handlers.operator_deployment.OperatorDeployments``) in memory.

Holds Deployments by (namespace, name) as Strimzi's installation files make them: an operator image
tagged with its release and ``STRIMZI_KAFKA_IMAGES`` naming each Kafka version by its image. A name
not held answers as the Kubernetes adapter does for a missing one (404), a forbidden namespace as it
does for RBAC (403): an exception whose message names the call and the status.
"""

from __future__ import annotations

from handlers.operator_deployment import DEFAULT_OPERATOR_DEPLOYMENT, OperatorDeployment
from handlers.ports import ClusterRef


class DeploymentUnreadable(Exception):
    """What the adapter raises, by its message: the call and the HTTP status."""


def strimzi_kafka_images(operator_version: str, kafka_versions: list[str] | tuple[str, ...]) -> str:
    return "".join(f"{v}=quay.io/strimzi/kafka:{operator_version}-kafka-{v}\n" for v in kafka_versions)


class FakeOperatorDeployments:
    def __init__(self) -> None:
        self.deployments: dict[tuple[str, str], OperatorDeployment] = {}
        self.forbidden: set[str] = set()  # namespaces where the bot may not get Deployments
        self.reads: list[tuple[str, str, str]] = []  # (cluster, namespace, name) of every read

    def install(self, operator_version: str, kafka_versions: list[str] | tuple[str, ...], *,
                namespace: str = "kafka", name: str = DEFAULT_OPERATOR_DEPLOYMENT,
                kafka_images: str | None = None) -> None:
        """Strimzi ``operator_version``'s Deployment supporting ``kafka_versions`` (or the raw
        ``kafka_images`` value, to hand the bot what a broken or custom Deployment says)."""
        images = kafka_images if kafka_images is not None else strimzi_kafka_images(operator_version, kafka_versions)
        self.deployments[(namespace, name)] = OperatorDeployment(
            namespace=namespace, name=name, image=f"quay.io/strimzi/operator:{operator_version}", kafka_images=images)

    async def operator_deployment(self, cluster: ClusterRef, namespace: str, name: str) -> OperatorDeployment:
        self.reads.append((cluster.name, namespace, name))
        what = f"Kubernetes API: get Deployment {namespace}/{name}"
        if namespace in self.forbidden:
            raise DeploymentUnreadable(f'{what}: HTTP 403 Forbidden: deployments.apps "{name}" is forbidden')
        found = self.deployments.get((namespace, name))
        if found is None:
            raise DeploymentUnreadable(f'{what}: HTTP 404 Not Found: deployments.apps "{name}" not found')
        return found
