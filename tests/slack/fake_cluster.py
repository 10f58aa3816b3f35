"""An in-memory Kafka cluster behind the bot's ports, for Slack tests that need runs, not brokers.

A pod roll gives the pod a new uid at once (what the sandbox's operator does in ~15 s), so a run
goes through every real engine and worker step in milliseconds. A validate-only config request
is judged as a broker judges a live resize of a thread pool (at most double or half at a time);
its brokers run Kafka's default pool sizes. The bot's Runtime is wired as
``bot.app.build_runtime`` wires it, with this fake in place of Kubernetes and Kafka.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from bot import store
from bot.app import Runtime
from bot.clock import RandomIds, SystemClock
from bot.foreground import Foreground
from bot.store.repository import RedisClusterLocks, RedisRunRepository
from bot.store.run_events import RunEventBus
from bot.worker import Worker
from handlers.clusters import ManagedCluster
from handlers.commands.service import CommandService
from handlers.ports import BrokerPod, ClusterRef, KafkaResourceStatus
from runbooks.engine.models import ApprovalPolicy
from runbooks.rules.health import BrokerInfo, ClusterSnapshot, PartitionInfo

REQUESTER = "U0REQ"
APPROVER = "U0APP"
GROUP_MEMBER = "U0GRP"
OUTSIDER = "U0OUT"
APPROVER_GROUP = "S0OPS"
THREAD_POOLS = {"num.io.threads": 8, "num.network.threads": 3, "num.replica.fetchers": 1, "background.threads": 10}


def managed(name: str, *, four_eyes: bool = True, channel: str | None = None) -> ManagedCluster:
    return ManagedCluster(
        ref=ClusterRef(name=name, namespace="kafka", kafka=name),
        policy=ApprovalPolicy(approvers=(REQUESTER, APPROVER), approver_groups=(APPROVER_GROUP,),
                              four_eyes=four_eyes, approval_timeout_s=600),
        channel=channel,
    )


class FakeCluster:
    """Both ports (ClusterGateway, KafkaAdmin) for any number of 3-broker clusters."""

    def __init__(self, brokers: int = 3, *, delay_s: float = 0.0) -> None:
        self.brokers = brokers
        self.delay_s = delay_s  # a slow Kubernetes API, for the ack-budget tests
        self.uids: dict[tuple[str, int], str] = {}
        self.rolls: dict[tuple[str, int], int] = {}
        self.under_replicated = False  # one partition missing a replica from its ISR: checks fail
        self.validations: list[tuple[str, int, dict[str, str]]] = []  # (cluster, broker, values) asked

    async def _slow(self) -> None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)

    def uid(self, cluster: str, node: int) -> str:
        return self.uids.setdefault((cluster, node), str(uuid.uuid4()))

    async def kafka_status(self, cluster: ClusterRef) -> KafkaResourceStatus:
        await self._slow()
        return KafkaResourceStatus(ready=True, kafka_version="4.3.1", metadata_version="4.3-IV0",
                                   bootstrap_servers=f"{cluster.name}-kafka-bootstrap:9092")

    async def broker_pods(self, cluster: ClusterRef) -> list[BrokerPod]:
        return [BrokerPod(node_id=n, name=f"{cluster.name}-pool-{n}", uid=self.uid(cluster.name, n), ready=True,
                          kafka_version="4.3.1") for n in range(self.brokers)]

    async def request_pod_roll(self, cluster: ClusterRef, pod_name: str, expected_uid: str) -> bool:
        node = int(pod_name.rsplit("-", 1)[1])
        if self.uid(cluster.name, node) != expected_uid:
            return False
        self.uids[(cluster.name, node)] = str(uuid.uuid4())
        self.rolls[(cluster.name, node)] = self.rolls.get((cluster.name, node), 0) + 1
        return True

    async def snapshot(self, cluster: ClusterRef, bootstrap_servers: str) -> ClusterSnapshot:
        ids = tuple(range(self.brokers))
        partitions = tuple(PartitionInfo(topic="orders", partition=p, leader=p % self.brokers, replicas=ids,
                                         isr=ids[1:] if self.under_replicated and p == 0 else ids)
                           for p in range(self.brokers))
        return ClusterSnapshot(taken_at=datetime.now(UTC), brokers=tuple(BrokerInfo(id=b) for b in ids),
                               controller_id=ids[-1], partitions=partitions, default_min_isr=2)

    async def elect_preferred_leaders(self, cluster: ClusterRef, bootstrap_servers: str) -> int:
        return 0

    async def validate_broker_configs(self, cluster: ClusterRef, bootstrap_servers: str, brokers: Sequence[int],
                                      values: Mapping[str, str]) -> dict[int, str | None]:
        await self._slow()
        verdicts: dict[int, str | None] = {}
        for broker in brokers:
            self.validations.append((cluster.name, broker, dict(values)))
            verdicts[broker] = None
            for key, value in values.items():
                now = THREAD_POOLS.get(key)
                if now is not None and value.isdigit() and not now / 2 <= int(value) <= now * 2:
                    verdicts[broker] = (f"Dynamic thread count update validation failed for {key}={value}, value "
                                        f"should be between half and double the current value {now}")
        return verdicts

    async def close(self) -> None:
        pass


async def fake_runtime(redis_url: str, clusters: dict[str, ManagedCluster], fake: FakeCluster, *,
                       owner: str = "test-replica", poll_interval_s: float = 0.1,
                       advisory_recheck_s: float = 15.0) -> Runtime:
    client = await store.connect(redis_url)
    runs = RedisRunRepository(store.RunStore(client))
    locks = RedisClusterLocks(store.ClusterLock(client))
    bus = RunEventBus(client)
    clock, ids = SystemClock(), RandomIds()
    foreground = Foreground()
    service = CommandService(clusters=clusters, runs=runs, locks=locks, gateway=fake, admin=fake,
                             clock=clock, ids=ids)
    worker = Worker(runs=runs, locks=locks, leases=store.RunLease(client), clusters=clusters, gateway=fake,
                    admin=fake, clock=clock, ids=ids, owner=owner, lease_ttl_s=10.0,
                    poll_interval_s=poll_interval_s, scan_interval_s=0.5, foreground=foreground,
                    advisory_recheck_s=advisory_recheck_s)
    return Runtime(service=service, worker=worker, bus=bus, redis=client, admin=fake,  # type: ignore[arg-type]
                   foreground=foreground)


async def close_runtime(runtime: Runtime) -> None:
    """``runtime.close()``: the worker stops its drive tasks (cancelling until they are done, see
    ``Worker.stop``), then the bus, the admin client and Redis."""
    await runtime.close()
