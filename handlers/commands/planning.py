"""Planning a runbook of the catalogue: read the cluster through the ports into the runbook's world
model, let its pure planner decide, and hand back the steps or the reason there are none.

Each runbook's ``Planning`` pairs its declaration (``runbooks.catalogue``) with the one thing the
declaration cannot hold: how its world is read (and, for a config change, the brokers' own verdict
on the new values). ``CommandService.start`` runs every runbook through ``Planning.plan``.

Reads only. Kafka being unreachable is not an exception here: it becomes part of what the
planner sees (no snapshot, and why), so the refusal can say it. The one request that looks like a
write, IncrementalAlterConfigs with validate_only, changes nothing: it asks the live brokers to
judge a value they would apply live, before anyone is asked to approve it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic

from handlers.clusters import ManagedCluster
from handlers.operator_deployment import OperatorDeployments, supported_kafka_versions
from handlers.ports import BrokerPod, ClusterGateway, KafkaAdmin, KafkaResourceStatus
from handlers.steps.mirror_restart import mirror_restart_world
from handlers.steps.pod_health import not_ready_reason, pod_states
from runbooks.catalogue.config import CONFIG, ConfigInput, ConfigParams, broker_validation
from runbooks.catalogue.mirror_restart import MIRROR_RESTART, MirrorRestartInput, MirrorRestartParams
from runbooks.catalogue.replace_broker import REPLACE_BROKER, ReplaceBrokerInput, ReplaceBrokerParams
from runbooks.catalogue.restart import RESTART, RestartInput, RestartParams
from runbooks.catalogue.runbook import P, Runbook, W
from runbooks.catalogue.scale import SCALE, ScaleInput, ScaleParams
from runbooks.catalogue.upgrade import UPGRADE, UpgradeInput, UpgradeParams
from runbooks.engine.models import PlanRefused, StepSpec
from runbooks.rules.config_keys import ConfigEntryInfo
from runbooks.rules.health import ClusterSnapshot
from runbooks.rules.versions import detect_mode

__all__ = ["PlanRefused", "Planner", "Planning", "Unplannable"]


class Unplannable(Exception):
    """The cluster cannot even be read for a plan; the message is the whole reply."""


@dataclass(frozen=True)
class Planning(Generic[P, W]):
    runbook: Runbook[P, W]
    read: Callable[[ManagedCluster, P], Awaitable[W]]
    check: Callable[[ManagedCluster, P, W], Awaitable[None]] | None = None  # after the plan: PlanRefused or None

    async def plan(self, cluster: ManagedCluster, params: P) -> list[StepSpec]:
        world = await self.read(cluster, params)
        steps = self.runbook.plan(params, world)
        if self.check is not None:
            await self.check(cluster, params, world)
        return steps


class Planner:
    def __init__(self, gateway: ClusterGateway, admin: KafkaAdmin,
                 operator: OperatorDeployments | None = None) -> None:
        self._gateway = gateway
        self._admin = admin
        self._operator = operator  # the operator Deployment, for the versions an upgrade may target
        self.restart = Planning(RESTART, self._restart_world)
        self.upgrade = Planning(UPGRADE, self._upgrade_world)
        self.config = Planning(CONFIG, self._config_world, self._config_check)
        self.replace_broker = Planning(REPLACE_BROKER, self._replace_world)
        self.scale = Planning(SCALE, self._scale_world)
        self.mirror_restart = Planning(MIRROR_RESTART, self._mirror_restart_world)

    async def _restart_world(self, cluster: ManagedCluster, params: RestartParams) -> RestartInput:
        status = await self._gateway.kafka_status(cluster.ref)
        bootstrap = cluster.ref.bootstrap_servers or status.bootstrap_servers
        if not bootstrap:
            raise Unplannable(no_bootstrap(cluster.name, status))
        pods = {p.node_id: p.name for p in await self._gateway.broker_pods(cluster.ref)}
        return RestartInput(snapshot=await self._admin.snapshot(cluster.ref, bootstrap), pod_names=pods)

    async def _mirror_restart_world(self, cluster: ManagedCluster, params: MirrorRestartParams) -> MirrorRestartInput:
        return await mirror_restart_world(self._gateway, cluster.ref)

    async def _bootstrap(self, cluster: ManagedCluster) -> str:
        status = await self._gateway.kafka_status(cluster.ref)
        bootstrap = cluster.ref.bootstrap_servers or status.bootstrap_servers
        if not bootstrap:
            raise Unplannable(no_bootstrap(cluster.name, status))
        return bootstrap

    async def _replace_world(self, cluster: ManagedCluster, params: ReplaceBrokerParams) -> ReplaceBrokerInput:
        bootstrap = await self._bootstrap(cluster)
        status = await self._gateway.kafka_status(cluster.ref)
        layout = await self._admin.replica_layout(cluster.ref, bootstrap)
        pools = await self._gateway.node_pools(cluster.ref)
        return ReplaceBrokerInput(
            brokers=layout.brokers, partitions=layout.request().partitions,
            pods={p.node_id: p.name for p in await self._gateway.broker_pods(cluster.ref)},
            controllers=tuple(sorted({n for p in pools if "controller" in p.roles for n in p.node_ids})),
            snapshot=await self._admin.snapshot(cluster.ref, bootstrap), cruise_control=status.cruise_control)

    async def _scale_world(self, cluster: ManagedCluster, params: ScaleParams) -> ScaleInput:
        layout = await self._admin.replica_layout(cluster.ref, await self._bootstrap(cluster))
        status = await self._gateway.kafka_status(cluster.ref)
        return ScaleInput(pools=tuple(await self._gateway.node_pools(cluster.ref)), brokers=layout.brokers,
                          partitions=layout.request().partitions, cruise_control=status.cruise_control)

    async def _read(self, cluster: ManagedCluster) -> tuple[KafkaResourceStatus, list[BrokerPod],
                                                             ClusterSnapshot | None, str, str | None]:
        status = await self._gateway.kafka_status(cluster.ref)
        pods = await self._gateway.broker_pods(cluster.ref)
        bootstrap = cluster.ref.bootstrap_servers or status.bootstrap_servers
        if not bootstrap:
            why = status.bootstrap_problem or "the Kafka resource reports no listener address"
            return status, pods, None, why, None
        try:
            snapshot = await self._admin.snapshot(cluster.ref, bootstrap)
        except Exception as exc:  # a refusal must still say why, whatever the adapter raised
            return status, pods, None, f"{type(exc).__name__}: {exc}", bootstrap
        return status, pods, snapshot, "", bootstrap

    async def _upgrade_world(self, cluster: ManagedCluster, params: UpgradeParams) -> UpgradeInput:
        status, pods, snapshot, error, _ = await self._read(cluster)
        mode = detect_mode(status.metadata_version, snapshot is not None and snapshot.quorum is not None)
        supported = await supported_kafka_versions(
            self._operator, cluster.ref, location=cluster.operator, mode=mode,
            override=cluster.supported_kafka_versions, status_operator_version=status.operator_version)
        return UpgradeInput(
            mode=mode, supported=supported,
            ready=status.ready, not_ready_reason=not_ready_reason(status), settled=status.settled,
            kafka_version=status.kafka_version, metadata_version=status.metadata_version,
            spec_metadata_version=status.spec_metadata_version, spec_config=status.spec_config,
            brokers=pod_states(pods), snapshot=snapshot, snapshot_error=error,
        )

    async def _config_world(self, cluster: ManagedCluster, params: ConfigParams) -> ConfigInput:
        status, pods, snapshot, error, bootstrap = await self._read(cluster)
        catalogue: dict[str, ConfigEntryInfo] = {}
        live = [p.node_id for p in pods if p.ready]
        if snapshot is not None and bootstrap and live:
            # One broker's full list: which keys exist, their types, and Kafka's own verdict on
            # which of them it can change without a restart.
            try:
                described = await self._admin.describe_broker_configs(cluster.ref, bootstrap, live[:1])
            except Exception as exc:  # without the list no key or value can be judged: refuse, saying why
                raise PlanRefused(f"broker {live[0]} did not answer DescribeConfigs ({type(exc).__name__}: "
                                  f"{exc}), so the keys and values cannot be checked") from None
            catalogue = described.get(live[0], {})
        return ConfigInput(
            ready=status.ready, not_ready_reason=not_ready_reason(status), settled=status.settled,
            generation=status.generation, kafka_version=status.kafka_version, spec_config=status.spec_config,
            brokers=pod_states(pods), snapshot=snapshot, snapshot_error=error, catalogue=catalogue,
            allowed_class_keys=cluster.allowed_class_keys, bootstrap=bootstrap,
        )

    async def _config_check(self, cluster: ManagedCluster, params: ConfigParams, world: ConfigInput) -> None:
        """Values Kafka applies live, put to the running brokers before anyone is asked to approve them."""
        live_values = broker_validation(params, world)
        if live_values and world.bootstrap:
            await self._ask_brokers(cluster, world.bootstrap, [b.id for b in world.brokers if b.ready], live_values)

    async def _ask_brokers(self, cluster: ManagedCluster, bootstrap: str, brokers: list[int],
                           values: dict[str, str]) -> None:
        """PlanRefused with the brokers' own words if any live broker would reject ``values``."""
        change = ", ".join(f"{k}={v}" for k, v in values.items())
        try:
            verdicts = await self._admin.validate_broker_configs(cluster.ref, bootstrap, brokers, values)
        except Exception as exc:  # the approval must not be shown for a change no broker has judged
            raise PlanRefused(f"the brokers could not be asked whether they take {change} (IncrementalAlterConfigs, "
                              f"validate only: {type(exc).__name__}: {exc})") from None
        refused: dict[str, list[int]] = {}
        for broker, why in sorted(verdicts.items()):
            if why is not None:
                refused.setdefault(why, []).append(broker)
        if refused:
            said = "; ".join(f"broker{'s' if len(ids) > 1 else ''} {', '.join(map(str, ids))}: {why}"
                             for why, ids in refused.items())
            raise PlanRefused(f"the brokers refuse {change} (IncrementalAlterConfigs, validate only): {said}")


def no_bootstrap(name: str, status: KafkaResourceStatus) -> str:
    """Why there is no address to reach the cluster's Kafka: the named listener is missing, or the
    operator has not reported one yet."""
    if status.bootstrap_problem:
        return f"{name} has no bootstrap address: {status.bootstrap_problem}."
    return f"{name} has no bootstrap address yet (Kafka not Ready: {status.reason})."
