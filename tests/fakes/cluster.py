"""The cluster ports (ClusterGateway, KafkaAdmin) for any number of clusters, for the front-end tests.

One :class:`~tests.fakes.strimzi.FakeStrimzi` per cluster name, made on first use, with instant
pod rolls (no operator task): a pod roll gives the pod a new uid at once, what the sandbox's
operator does in ~15 s, so a run goes through every real engine and worker step in
milliseconds. Every call is the per-cluster fake's: there is one fake of these ports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from handlers.clusters import ManagedCluster
from handlers.ports import BrokerFeatures, BrokerPod, ClusterRef, KafkaResourceStatus, KafkaSpecEdit, SecretLookup
from handlers.replica_moves import (
    MoveProgress,
    ReassignmentInFlight,
    ReplicaLayout,
    ReplicaTarget,
    ReplicationThrottle,
    ThrottlesPresent,
)
from runbooks.engine.models import ApprovalPolicy
from runbooks.rules.config_keys import ConfigEntryInfo
from runbooks.rules.health import ClusterSnapshot
from runbooks.rules.node_pools import NodePool
from tests.fakes.strimzi import FakeStrimzi

REQUESTER = "U0REQ"
APPROVER = "U0APP"
GROUP_MEMBER = "U0GRP"
OUTSIDER = "U0OUT"
APPROVER_GROUP = "S0OPS"
KAFKA_VERSION = "4.3.1"


def managed(name: str, *, four_eyes: bool = True, channel: str | None = None) -> ManagedCluster:
    return ManagedCluster(
        ref=ClusterRef(name=name, namespace="kafka", kafka=name),
        policy=ApprovalPolicy(approvers=(REQUESTER, APPROVER), approver_groups=(APPROVER_GROUP,),
                              four_eyes=four_eyes, approval_timeout_s=600),
        channel=channel,
    )


class FakeCluster:
    """Both ports for every cluster the tests name: a KRaft Kafka of ``brokers`` brokers each."""

    def __init__(self, brokers: int = 3, *, delay_s: float = 0.0) -> None:
        self.brokers = brokers
        self.delay_s = delay_s  # a slow Kubernetes API, for the ack-budget tests
        self.clusters: dict[str, FakeStrimzi] = {}
        self.under_replicated = False  # in every cluster, broker 0 is out of orders-0's ISR: checks fail

    def cluster(self, name: str) -> FakeStrimzi:
        if name not in self.clusters:
            self.clusters[name] = FakeStrimzi(name, version=KAFKA_VERSION, zookeeper=False, brokers=self.brokers,
                                              instant_rolls=True)
        fake = self.clusters[name]
        fake.delay_s, fake.under_replicated = self.delay_s, self.under_replicated
        return fake

    @property
    def rolls(self) -> dict[tuple[str, int], int]:
        """(cluster, node) -> pod rolls requested."""
        return {(name, node): n for name, fake in self.clusters.items() for node, n in fake.rolls.items()}

    @property
    def validations(self) -> list[tuple[str, int, dict[str, str]]]:
        """(cluster, broker, values) of every validate-only request."""
        return [(name, b, values) for name, fake in self.clusters.items() for b, values in fake.validations]

    # -- ClusterGateway -----------------------------------------------------------------------
    async def kafka_status(self, cluster: ClusterRef) -> KafkaResourceStatus:
        return await self.cluster(cluster.name).kafka_status(cluster)

    async def broker_pods(self, cluster: ClusterRef) -> list[BrokerPod]:
        return await self.cluster(cluster.name).broker_pods(cluster)

    async def request_pod_roll(self, cluster: ClusterRef, pod_name: str, expected_uid: str) -> bool:
        return await self.cluster(cluster.name).request_pod_roll(cluster, pod_name, expected_uid)

    async def patch_kafka_spec(self, cluster: ClusterRef, edits: Sequence[KafkaSpecEdit], *,
                               expect: Sequence[KafkaSpecEdit] = (), expected_generation: int | None = None) -> int:
        return await self.cluster(cluster.name).patch_kafka_spec(cluster, edits, expect=expect,
                                                                 expected_generation=expected_generation)

    async def request_pod_and_pvc_replacement(self, cluster: ClusterRef, pod_name: str, expected_uid: str) -> bool:
        return await self.cluster(cluster.name).request_pod_and_pvc_replacement(cluster, pod_name, expected_uid)

    async def node_pools(self, cluster: ClusterRef) -> list[NodePool]:
        return await self.cluster(cluster.name).node_pools(cluster)

    async def patch_node_pool(self, cluster: ClusterRef, pool: str, *, replicas: int, expected_replicas: int,
                              annotations: Mapping[str, str | None] | None = None) -> None:
        await self.cluster(cluster.name).patch_node_pool(cluster, pool, replicas=replicas,
                                                         expected_replicas=expected_replicas, annotations=annotations)

    async def secret_keys(self, cluster: ClusterRef, name: str) -> SecretLookup:
        return await self.cluster(cluster.name).secret_keys(cluster, name)

    # -- KafkaAdmin ---------------------------------------------------------------------------
    async def snapshot(self, cluster: ClusterRef, bootstrap_servers: str) -> ClusterSnapshot:
        return await self.cluster(cluster.name).snapshot(cluster, bootstrap_servers)

    async def elect_preferred_leaders(self, cluster: ClusterRef, bootstrap_servers: str) -> int:
        return await self.cluster(cluster.name).elect_preferred_leaders(cluster, bootstrap_servers)

    async def describe_broker_configs(self, cluster: ClusterRef, bootstrap_servers: str, brokers: Sequence[int],
                                      keys: Sequence[str] | None = None) -> dict[int, dict[str, ConfigEntryInfo]]:
        return await self.cluster(cluster.name).describe_broker_configs(cluster, bootstrap_servers, brokers, keys)

    async def broker_features(self, cluster: ClusterRef, bootstrap_servers: str,
                              brokers: Sequence[int]) -> dict[int, BrokerFeatures]:
        return await self.cluster(cluster.name).broker_features(cluster, bootstrap_servers, brokers)

    async def validate_broker_configs(self, cluster: ClusterRef, bootstrap_servers: str, brokers: Sequence[int],
                                      values: Mapping[str, str]) -> dict[int, str | None]:
        return await self.cluster(cluster.name).validate_broker_configs(cluster, bootstrap_servers, brokers, values)

    async def replica_layout(self, cluster: ClusterRef, bootstrap_servers: str) -> ReplicaLayout:
        return await self.cluster(cluster.name).replica_layout(cluster, bootstrap_servers)

    async def set_replication_throttles(self, cluster: ClusterRef, bootstrap_servers: str,
                                        throttle: ReplicationThrottle) -> None:
        await self.cluster(cluster.name).set_replication_throttles(cluster, bootstrap_servers, throttle)

    async def remove_replication_throttles(self, cluster: ClusterRef, bootstrap_servers: str, brokers: Sequence[int],
                                           topics: Sequence[str]) -> None:
        await self.cluster(cluster.name).remove_replication_throttles(cluster, bootstrap_servers, brokers, topics)

    async def replication_throttles(self, cluster: ClusterRef, bootstrap_servers: str,
                                    topics: Sequence[str] | None = None,
                                    brokers: Sequence[int] | None = None) -> ThrottlesPresent:
        return await self.cluster(cluster.name).replication_throttles(cluster, bootstrap_servers, topics, brokers)

    async def submit_reassignments(self, cluster: ClusterRef, bootstrap_servers: str,
                                   targets: Sequence[ReplicaTarget]) -> dict[str, str]:
        return await self.cluster(cluster.name).submit_reassignments(cluster, bootstrap_servers, targets)

    async def cancel_reassignments(self, cluster: ClusterRef, bootstrap_servers: str,
                                   partitions: Sequence[tuple[str, int]]) -> dict[str, str]:
        return await self.cluster(cluster.name).cancel_reassignments(cluster, bootstrap_servers, partitions)

    async def reassignments_in_flight(self, cluster: ClusterRef, bootstrap_servers: str,
                                      partitions: Sequence[tuple[str, int]] | None = None,
                                      ) -> list[ReassignmentInFlight]:
        return await self.cluster(cluster.name).reassignments_in_flight(cluster, bootstrap_servers, partitions)

    async def reassignment_progress(self, cluster: ClusterRef, bootstrap_servers: str,
                                    partitions: Sequence[tuple[str, int]]) -> list[MoveProgress]:
        return await self.cluster(cluster.name).reassignment_progress(cluster, bootstrap_servers, partitions)

    async def close(self) -> None:
        """The admin port's close (the runtime closes its admin client)."""
