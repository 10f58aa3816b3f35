"""The clusters the bot manages, as the use cases see them (read from the config by ``bot/``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from handlers.operator_deployment import OperatorLocation
from handlers.ports import ClusterRef
from runbooks.alerting.lifecycle import AlertRules
from runbooks.engine.access import AccessPolicy
from runbooks.engine.models import ApprovalPolicy


class KafkaClientKeys(BaseModel):
    """The clusters file's Kafka security keys (``listener`` is on the ClusterRef), names only: what
    the use cases that hand credentials to someone else (MirrorMaker 2) must repeat."""

    model_config = ConfigDict(frozen=True)

    tls: bool = False  # a `tls:` block is given
    ca_secret: str | None = None  # tls.ca_secret; None: Strimzi's <kafka>-cluster-ca-cert
    authentication: str | None = None  # authentication.type as written; None: the listener's
    kafka_user: str | None = None  # authentication.kafka_user

    @property
    def plaintext(self) -> bool:
        return not self.tls and self.authentication is None and self.kafka_user is None


class ManagedCluster(BaseModel):
    model_config = ConfigDict(frozen=True)

    ref: ClusterRef
    policy: ApprovalPolicy
    channel: str | None = None  # where its run cards and alerts are posted
    # Who may ask for what, and in which channels (runbooks.engine.access): the clusters file's
    # requesters, runbooks, viewers and channels.
    access: AccessPolicy = Field(default_factory=AccessPolicy)
    alerts: AlertRules = Field(default_factory=AlertRules)  # the clusters file's `alerts:` block
    # Broker config keys naming classes the brokers load (metric.reporters, ...) that the config
    # runbook may change on this cluster: the clusters file's `allowed_class_keys:`.
    allowed_class_keys: frozenset[str] = frozenset()
    # Where its Strimzi operator's Deployment is (the Kafka versions it supports), and the clusters
    # file's `supported_kafka_versions:`, which overrides what the Deployment says.
    operator: OperatorLocation = Field(default_factory=OperatorLocation)
    supported_kafka_versions: tuple[str, ...] | None = None
    kafka_client: KafkaClientKeys = Field(default_factory=KafkaClientKeys)
    # `--kubeconfig`/`--context` as the clusters file gives them: for kubectl commands shown to people.
    kubectl_flags: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.ref.name


class UnknownCluster(Exception):
    def __init__(self, name: str, known: list[str]) -> None:
        listed = ", ".join(sorted(known)) or "none configured"
        super().__init__(f"unknown cluster {name!r}: the managed clusters are {listed}")
