"""The brokers as the bot's Admin client reads them: the cluster-reading half of the ``KafkaAdmin``
port (the health snapshot, broker configs, validate-only updates, metadata features), mixed into
FakeStrimzi.

Apart from ``strimzi``, which keeps the operator (reconciliations, rolls) and the ``ClusterGateway``
port, to keep each module within the project's size limit; the reassignment half of the port is
:class:`~tests.fakes.replicas.ReplicaMoves`. Written from Kafka's behaviour, not from the bot's rules:

- the snapshot's live brokers are the Ready pods; the controller (and, on KRaft, the quorum leader)
  is the highest live one; a broker is in the ISR as ``isr_view`` says, else while its pod is Ready;
- DescribeConfigs reads a dynamic value first, then the pod's static one, then Kafka's default;
- IncrementalAlterConfigs with validate_only is judged as a broker judges a live update
  (``tests.fakes.broker_configs.judge_live_update``) and recorded in ``validations``;
- a request sent to a broker that is down fails the test: the bot must never send one.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from handlers.ports import BrokerFeatures, ClusterRef
from runbooks.rules.config_keys import ConfigEntryInfo
from runbooks.rules.health import BrokerInfo, ClusterSnapshot, PartitionInfo, QuorumInfo, QuorumVoter
from runbooks.rules.versions import METADATA_LEVELS, default_metadata, release_line
from tests.fakes.broker_configs import CATALOGUE, DEFAULTS, judge_live_update

if TYPE_CHECKING:
    from tests.fakes.strimzi import FakePod


class BrokerAdmin:
    """The host class provides the pods and what Kafka's view of them adds (``isr_view``,
    ``under_replicated``, ``dynamic``, ``metadata``) and its API delay (``_slow``)."""

    pods: dict[int, FakePod]
    zookeeper: bool
    metadata: str | None
    isr_view: dict[int, bool]
    under_replicated: bool
    dynamic: dict[str, str]
    validations: list[tuple[int, dict[str, str]]]

    async def snapshot(self, cluster: ClusterRef, bootstrap_servers: str) -> ClusterSnapshot:
        live = tuple(n for n, p in sorted(self.pods.items()) if p.ready)
        replicas = tuple(sorted(self.pods))
        isr = tuple(n for n in replicas if self.isr_view.get(n, self.pods[n].ready))
        partitions = tuple(PartitionInfo(topic="orders", partition=i, leader=live[i % len(live)] if live else None,
                                         replicas=replicas, isr=isr[1:] if self.under_replicated and i == 0 else isr)
                           for i in range(3))
        quorum = None
        if not self.zookeeper:
            leader = max(live) if live else None
            quorum = QuorumInfo(leader_id=leader, voters=tuple(
                QuorumVoter(id=n, last_caught_up_ms=1000 if n in live else 0) for n in replicas))
        return ClusterSnapshot(
            taken_at=datetime.now(UTC), brokers=tuple(BrokerInfo(id=n) for n in live), controller_id=max(live),
            quorum=quorum, partitions=partitions, min_isr={"orders": 2}, default_min_isr=1)

    async def elect_preferred_leaders(self, cluster: ClusterRef, bootstrap_servers: str) -> int:
        return 0

    async def close(self) -> None:
        """The admin port's close (the Slack runtime closes its admin client)."""

    async def describe_broker_configs(self, cluster: ClusterRef, bootstrap_servers: str, brokers: Sequence[int],
                                      keys: Sequence[str] | None = None) -> dict[int, dict[str, ConfigEntryInfo]]:
        result = {}
        for b in brokers:
            pod = self.pods[b]
            assert pod.ready, f"DescribeConfigs sent to broker {b}, which is down"
            entries = {}
            value: str | None
            for key, (kind, dynamic) in CATALOGUE.items():
                if keys is not None and key not in keys:
                    continue
                if key in self.dynamic and dynamic:
                    value, source = self.dynamic[key], "DYNAMIC_BROKER_CONFIG"
                elif key in pod.static:
                    value, source = pod.static[key], "STATIC_BROKER_CONFIG"
                elif key == "inter.broker.protocol.version":
                    value, source = f"{release_line(pod.version)}-IV0", "DEFAULT_CONFIG"
                else:
                    value, source = DEFAULTS.get(key), "DEFAULT_CONFIG"
                entries[key] = ConfigEntryInfo(name=key, value=value, source=source, read_only=not dynamic, type=kind)
            result[b] = entries
        return result

    async def validate_broker_configs(self, cluster: ClusterRef, bootstrap_servers: str, brokers: Sequence[int],
                                      values: Mapping[str, str]) -> dict[int, str | None]:
        await self._slow()
        verdicts: dict[int, str | None] = {}
        for b in brokers:
            pod = self.pods[b]
            assert pod.ready, f"IncrementalAlterConfigs sent to broker {b}, which is down"
            self.validations.append((b, dict(values)))
            verdicts[b] = judge_live_update(values, functools.partial(self._current, pod))
        return verdicts

    def _current(self, pod: FakePod, key: str) -> str | None:
        return self.dynamic.get(key) or pod.static.get(key) or DEFAULTS.get(key)

    async def broker_features(self, cluster: ClusterRef, bootstrap_servers: str,
                              brokers: Sequence[int]) -> dict[int, BrokerFeatures]:
        finalized = METADATA_LEVELS[self.metadata] if self.metadata else None
        return {b: BrokerFeatures(broker=b, metadata_max_level=METADATA_LEVELS[default_metadata(self.pods[b].version)],
                                  finalized_metadata_level=finalized) for b in brokers}

    # -- the host's -----------------------------------------------------------------------------
    async def _slow(self) -> None:
        raise NotImplementedError
