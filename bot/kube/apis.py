"""The Kubernetes API of every managed cluster: one ``ApiClient`` per distinct target (kubeconfig
files and context, ``bot.config.kube_targets``), shared by the clusters that name the same one.

``ClusterGateways`` is the ``ClusterGateway`` port for all clusters: every call takes a
``ClusterRef`` already, so it hands the call to the gateway of that cluster's API. Handlers,
executors, the console and the monitors never know there is more than one Kubernetes cluster.
The watches get clients of their own (``watch_clients``): their long polls must not hold the
connections the gateway's short calls use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubernetes import client

from bot.config.kube_targets import KubeTarget
from bot.kube.errors import KubeError
from bot.kube.gateway import KubeClusterGateway, load_api_client
from bot.kube.rebalances import KubeRebalances
from handlers.mirror_ports import MirrorMakers, MirrorMakerStatus
from handlers.operator_deployment import OperatorDeployment
from handlers.ports import BrokerPod, ClusterRef, KafkaResourceStatus, KafkaSpecEdit, SecretLookup
from handlers.rebalances import RebalanceProgress
from runbooks.rules.node_pools import NodePool
from runbooks.rules.rebalance import KafkaRebalanceView, RebalanceAction, RebalanceState

log = logging.getLogger(__name__)

ClientLoader = Callable[[KubeTarget], client.ApiClient]


def load_target(target: KubeTarget) -> client.ApiClient:
    return load_api_client(target.kubeconfig, context=target.context)


class ClusterGateways:
    """``ClusterGateway`` over several Kubernetes APIs, chosen by the cluster's name."""

    def __init__(self, targets: Mapping[str, KubeTarget], *, default: KubeTarget | None = None,
                 load: ClientLoader = load_target) -> None:
        """``targets``: cluster name -> its API; ``default``: the API of a cluster not named there (a
        ref built by a test, say). Every distinct target is loaded now, so a kubeconfig the client
        cannot use stops the start rather than the first command."""
        self._targets = dict(targets)
        self._default = default
        self._load = load
        self._gateways: dict[KubeTarget, KubeClusterGateway] = {}
        try:
            for target in [*self._targets.values(), *([default] if default is not None else [])]:
                if target not in self._gateways:
                    self._gateways[target] = KubeClusterGateway(load(target))
        except BaseException:
            self.close()  # the threads of those already made must not outlive a refused start
            raise
        if len(self._gateways) > 1:
            log.info("%d Kubernetes APIs for %d clusters", len(self._gateways), len(self._targets))

    def target_of(self, cluster: ClusterRef | str) -> KubeTarget:
        name = cluster if isinstance(cluster, str) else cluster.name
        target = self._targets.get(name, self._default)
        if target is None:
            raise KubeError(f"no Kubernetes API is configured for cluster {name!r}: it is not in the clusters file")
        return target

    def for_cluster(self, cluster: ClusterRef) -> KubeClusterGateway:
        return self._gateways[self.target_of(cluster)]

    @property
    def distinct(self) -> int:
        """How many API clients the clusters share out (one per distinct target)."""
        return len(self._gateways)

    def rebalances(self) -> ClusterRebalances:
        """The KafkaRebalance port over the same APIs: each cluster's rebalances read and annotated
        through its own gateway's client."""
        return ClusterRebalances(self)

    def watch_clients(self) -> Callable[[ClusterRef], client.ApiClient]:
        """A loader of the watches' clients: one per distinct target, made on first use; the caller
        closes each distinct client it got."""
        made: dict[KubeTarget, client.ApiClient] = {}

        def client_for(cluster: ClusterRef) -> client.ApiClient:
            target = self.target_of(cluster)
            if target not in made:
                made[target] = self._load(target)
            return made[target]

        return client_for

    def close(self) -> None:
        for gateway in self._gateways.values():
            gateway.close()

    # -- the port, routed ----------------------------------------------------------------------

    async def strimzi_api_version(self, cluster: ClusterRef | None = None, *, refresh: bool = False) -> str:
        if cluster is None:
            raise KubeError("which cluster's Strimzi API version? each Kubernetes API may serve its own")
        return await self.for_cluster(cluster).strimzi_api_version(cluster, refresh=refresh)

    async def kafka_status(self, cluster: ClusterRef) -> KafkaResourceStatus:
        return await self.for_cluster(cluster).kafka_status(cluster)

    async def broker_pods(self, cluster: ClusterRef) -> list[BrokerPod]:
        return await self.for_cluster(cluster).broker_pods(cluster)

    async def request_pod_roll(self, cluster: ClusterRef, pod_name: str, expected_uid: str) -> bool:
        return await self.for_cluster(cluster).request_pod_roll(cluster, pod_name, expected_uid)

    async def patch_kafka_spec(
        self, cluster: ClusterRef, edits: Sequence[KafkaSpecEdit], *, expect: Sequence[KafkaSpecEdit] = (),
        expected_generation: int | None = None,
    ) -> int:
        return await self.for_cluster(cluster).patch_kafka_spec(
            cluster, edits, expect=expect, expected_generation=expected_generation)

    async def request_pod_and_pvc_replacement(self, cluster: ClusterRef, pod_name: str, expected_uid: str) -> bool:
        return await self.for_cluster(cluster).request_pod_and_pvc_replacement(cluster, pod_name, expected_uid)

    async def node_pools(self, cluster: ClusterRef) -> list[NodePool]:
        return await self.for_cluster(cluster).node_pools(cluster)

    async def patch_node_pool(self, cluster: ClusterRef, pool: str, *, replicas: int, expected_replicas: int,
                              annotations: Mapping[str, str | None] | None = None) -> None:
        await self.for_cluster(cluster).patch_node_pool(
            cluster, pool, replicas=replicas, expected_replicas=expected_replicas, annotations=annotations)

    async def operator_deployment(self, cluster: ClusterRef, namespace: str, name: str) -> OperatorDeployment:
        return await self.for_cluster(cluster).operator_deployment(cluster, namespace, name)

    async def read_secret(self, cluster: ClusterRef, name: str) -> dict[str, bytes]:
        return await self.for_cluster(cluster).read_secret(cluster, name)

    async def secret_keys(self, cluster: ClusterRef, name: str) -> SecretLookup:
        return await self.for_cluster(cluster).secret_keys(cluster, name)

    # -- KafkaMirrorMaker2 (the ``MirrorMakers`` port), each in its cluster's own API ----------------

    async def list_mirror_makers(self, cluster: ClusterRef) -> list[MirrorMakerStatus]:
        return await self.for_cluster(cluster).list_mirror_makers(cluster)

    async def get_mirror_maker(self, cluster: ClusterRef, name: str) -> MirrorMakerStatus | None:
        return await self.for_cluster(cluster).get_mirror_maker(cluster, name)

    async def create_mirror_maker(self, cluster: ClusterRef, name: str, spec: Mapping[str, Any], *,
                                  labels: Mapping[str, str] | None = None) -> MirrorMakerStatus:
        return await self.for_cluster(cluster).create_mirror_maker(cluster, name, spec, labels=labels)

    async def patch_mirror_maker_spec(self, cluster: ClusterRef, name: str, spec: Mapping[str, Any], *,
                                      expected_generation: int | None = None) -> MirrorMakerStatus:
        return await self.for_cluster(cluster).patch_mirror_maker_spec(
            cluster, name, spec, expected_generation=expected_generation)

    async def delete_mirror_maker(self, cluster: ClusterRef, name: str) -> bool:
        return await self.for_cluster(cluster).delete_mirror_maker(cluster, name)

    async def annotate_mirror_maker(self, cluster: ClusterRef, name: str,
                                    annotations: Mapping[str, str | None]) -> MirrorMakerStatus:
        return await self.for_cluster(cluster).annotate_mirror_maker(cluster, name, annotations)


class ClusterRebalances:
    """``handlers.rebalances.KafkaRebalances`` for every cluster: one ``KubeRebalances`` per distinct
    Kubernetes API, made on first use from that API's gateway."""

    def __init__(self, gateways: ClusterGateways) -> None:
        self._gateways = gateways
        self._by_gateway: dict[int, KubeRebalances] = {}

    def _for(self, cluster: ClusterRef) -> KubeRebalances:
        gateway = self._gateways.for_cluster(cluster)
        made = self._by_gateway.get(id(gateway))
        if made is None:
            made = KubeRebalances(gateway.api_client, strimzi_version=gateway.strimzi_api_version)
            self._by_gateway[id(gateway)] = made
        return made

    def close(self) -> None:
        for rebalances in self._by_gateway.values():
            rebalances.close()

    async def list_rebalances(self, cluster: ClusterRef) -> list[KafkaRebalanceView]:
        return await self._for(cluster).list_rebalances(cluster)

    async def get_rebalance(self, cluster: ClusterRef, name: str) -> KafkaRebalanceView | None:
        return await self._for(cluster).get_rebalance(cluster, name)

    async def create_rebalance(self, cluster: ClusterRef, name: str, *, mode: str, brokers: tuple[int, ...] = (),
                               run_id: str = "") -> KafkaRebalanceView:
        return await self._for(cluster).create_rebalance(cluster, name, mode=mode, brokers=brokers, run_id=run_id)

    async def annotate(self, cluster: ClusterRef, name: str, action: RebalanceAction, *,
                       expected_state: RebalanceState, expected_uid: str) -> KafkaRebalanceView:
        return await self._for(cluster).annotate(cluster, name, action, expected_state=expected_state,
                                                 expected_uid=expected_uid)

    async def progress(self, cluster: ClusterRef, rebalance: KafkaRebalanceView) -> RebalanceProgress | None:
        return await self._for(cluster).progress(cluster, rebalance)


def _conforms(gateways: ClusterGateways) -> MirrorMakers:
    """Never called: mypy checks that the routed gateways are the ``MirrorMakers`` port."""
    return gateways
