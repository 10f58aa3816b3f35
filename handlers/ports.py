"""The ports through which use cases reach the world. ``bot/`` implements them.

Each port is a small Protocol; the values crossing it are frozen pydantic models, so the use
cases never see a kubernetes or Kafka client object.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict

from runbooks.health import ClusterSnapshot


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ClusterRef(_Frozen):
    """A managed cluster: the name users type, and where its Kafka resource lives."""

    name: str
    namespace: str
    kafka: str  # the Kafka custom resource's name
    bootstrap_servers: str | None = None  # override; else read from the Kafka status


class KafkaResourceStatus(_Frozen):
    ready: bool
    reason: str = ""
    message: str = ""
    generation: int = 0
    observed_generation: int = 0
    kafka_version: str | None = None
    metadata_version: str | None = None
    spec_kafka_version: str | None = None
    spec_metadata_version: str | None = None
    operator_version: str | None = None
    warnings: tuple[str, ...] = ()
    bootstrap_servers: str | None = None
    paused: bool = False

    @property
    def settled(self) -> bool:
        """Strimzi's "change applied": the operator saw the latest spec and the cluster is Ready."""
        return self.ready and self.observed_generation >= self.generation


class BrokerPod(_Frozen):
    node_id: int
    name: str
    uid: str
    ready: bool
    pool: str = ""
    kafka_version: str | None = None
    restart_count: int = 0
    phase: str = ""


class ClusterGateway(Protocol):
    """The Kubernetes side of a cluster: Strimzi resources and broker pods."""

    async def kafka_status(self, cluster: ClusterRef) -> KafkaResourceStatus: ...

    async def broker_pods(self, cluster: ClusterRef) -> list[BrokerPod]: ...

    async def request_pod_roll(self, cluster: ClusterRef, pod_name: str, expected_uid: str) -> bool:
        """Annotate the pod with ``strimzi.io/manual-rolling-update=true`` if it still has ``expected_uid``.

        Returns False (and changes nothing) when the pod is gone or was already replaced, so a
        retried step can never roll the new pod a second time.
        """
        ...


class KafkaAdmin(Protocol):
    """The Kafka side: metadata, ISR, quorum, leadership."""

    async def snapshot(self, cluster: ClusterRef, bootstrap_servers: str) -> ClusterSnapshot: ...

    async def elect_preferred_leaders(self, cluster: ClusterRef, bootstrap_servers: str) -> int:
        """Run a preferred leader election for every partition; returns how many leaders moved."""
        ...
