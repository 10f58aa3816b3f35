"""Planning the upgrade and config runbooks: read the cluster through the ports, let the pure
planners in ``runbooks`` decide, and hand back the steps or the reason there are none.

Reads only. Kafka being unreachable is not an exception here: it becomes part of what the
planner sees (no snapshot, and why), so the refusal can say it. The one request that looks like a
write, IncrementalAlterConfigs with validate_only, changes nothing: it asks the live brokers to
judge a value they would apply live, before anyone is asked to approve it.
"""

from __future__ import annotations

from handlers.clusters import ManagedCluster
from handlers.ports import BrokerPod, ClusterGateway, KafkaAdmin, KafkaResourceStatus
from handlers.steps.pod_health import not_ready_reason, pod_states
from runbooks.catalogue.config import ConfigInput, ConfigParams, broker_validation, plan_config_change
from runbooks.catalogue.upgrade import UpgradeInput, UpgradeParams, plan_upgrade
from runbooks.engine.models import PlanRefused, StepSpec
from runbooks.rules.config_keys import ConfigEntryInfo
from runbooks.rules.health import ClusterSnapshot
from runbooks.rules.versions import detect_mode

__all__ = ["PlanRefused", "Planner"]


class Planner:
    def __init__(self, gateway: ClusterGateway, admin: KafkaAdmin) -> None:
        self._gateway = gateway
        self._admin = admin

    async def _read(self, cluster: ManagedCluster) -> tuple[KafkaResourceStatus, list[BrokerPod],
                                                             ClusterSnapshot | None, str, str | None]:
        status = await self._gateway.kafka_status(cluster.ref)
        pods = await self._gateway.broker_pods(cluster.ref)
        bootstrap = cluster.ref.bootstrap_servers or status.bootstrap_servers
        if not bootstrap:
            return status, pods, None, "the Kafka resource reports no listener address", None
        try:
            snapshot = await self._admin.snapshot(cluster.ref, bootstrap)
        except Exception as exc:  # a refusal must still say why, whatever the adapter raised
            return status, pods, None, f"{type(exc).__name__}: {exc}", bootstrap
        return status, pods, snapshot, "", bootstrap

    async def upgrade(self, cluster: ManagedCluster, version: str) -> list[StepSpec]:
        status, pods, snapshot, error, _ = await self._read(cluster)
        world = UpgradeInput(
            mode=detect_mode(status.metadata_version, snapshot is not None and snapshot.quorum is not None),
            ready=status.ready, not_ready_reason=not_ready_reason(status), settled=status.settled,
            kafka_version=status.kafka_version, metadata_version=status.metadata_version,
            spec_metadata_version=status.spec_metadata_version, spec_config=status.spec_config,
            brokers=pod_states(pods), snapshot=snapshot, snapshot_error=error,
        )
        return plan_upgrade(UpgradeParams(version=version), world)

    async def config(self, cluster: ManagedCluster, params: ConfigParams) -> list[StepSpec]:
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
        world = ConfigInput(
            ready=status.ready, not_ready_reason=not_ready_reason(status), settled=status.settled,
            generation=status.generation, kafka_version=status.kafka_version, spec_config=status.spec_config,
            brokers=pod_states(pods), snapshot=snapshot, snapshot_error=error, catalogue=catalogue,
            allowed_class_keys=cluster.allowed_class_keys,
        )
        steps = plan_config_change(params, world)
        live_values = broker_validation(params, world)
        if live_values and bootstrap:
            await self._ask_brokers(cluster, bootstrap, live, live_values)
        return steps

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
