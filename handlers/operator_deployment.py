"""The Strimzi cluster operator's Deployment, read for the Kafka versions the operator supports.

The port (``OperatorDeployments``) reads one Deployment; ``supported_kafka_versions`` turns what it
read, or why it could not, into the list the upgrade runbook judges by
(``runbooks.rules.strimzi_releases``). The bot may well be forbidden to read Deployments in the
operator's namespace: that is not an error here, only a reason the refusal names.
"""

from __future__ import annotations

import logging
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from handlers.ports import ClusterRef
from runbooks.rules.strimzi_releases import SupportedKafkaVersions, resolve_supported
from runbooks.rules.versions import ClusterMode

log = logging.getLogger(__name__)

DEFAULT_OPERATOR_DEPLOYMENT = "strimzi-cluster-operator"  # the name in Strimzi's installation files and chart


class OperatorLocation(BaseModel):
    """Where a cluster's operator Deployment is: the clusters file's ``operator:`` block. No namespace:
    the cluster's own (Strimzi's quick start installs the operator next to the Kafka cluster)."""

    model_config = ConfigDict(frozen=True)

    namespace: str | None = None
    deployment: str = DEFAULT_OPERATOR_DEPLOYMENT

    def namespace_for(self, cluster: ClusterRef) -> str:
        return self.namespace or cluster.namespace


class OperatorDeployment(BaseModel):
    """What the bot needs of the operator's Deployment: its operator container's image and the
    ``STRIMZI_KAFKA_IMAGES`` value as written (None when the container does not set it by value)."""

    model_config = ConfigDict(frozen=True)

    namespace: str
    name: str
    image: str | None = None
    kafka_images: str | None = None


class OperatorDeployments(Protocol):
    async def operator_deployment(self, cluster: ClusterRef, namespace: str, name: str) -> OperatorDeployment:
        """The Deployment ``namespace/name`` through ``cluster``'s Kubernetes API; raises (the adapter's
        error, whose message names the call and the HTTP status) when it is missing or forbidden."""
        ...


async def supported_kafka_versions(
    reader: OperatorDeployments | None, cluster: ClusterRef, *, location: OperatorLocation, mode: ClusterMode,
    override: tuple[str, ...] | None = None, status_operator_version: str | None = None,
) -> SupportedKafkaVersions:
    """The versions an upgrade of ``cluster`` may target: the clusters-file ``override``, else the
    operator Deployment's list, else the shipped table (runbooks.rules.strimzi_releases)."""
    where = f"{location.namespace_for(cluster)}/{location.deployment}"
    if override is not None:
        return resolve_supported(mode=mode, override=override, status_operator_version=status_operator_version)
    if reader is None:
        return resolve_supported(mode=mode, deployment=where, status_operator_version=status_operator_version,
                                 unread=f"reading the operator Deployment {where} is not wired in")
    try:
        found = await reader.operator_deployment(cluster, location.namespace_for(cluster), location.deployment)
    except Exception as exc:  # forbidden, missing, unreachable: the table stands in, and the reply says why
        log.info("operator Deployment %s of %s not read: %s", where, cluster.name, exc)
        return resolve_supported(mode=mode, deployment=where, status_operator_version=status_operator_version,
                                 unread=f"the bot may not read the operator Deployment {where}: {exc}")
    return resolve_supported(mode=mode, deployment=where, operator_image=found.image,
                             kafka_images=found.kafka_images, status_operator_version=status_operator_version)
