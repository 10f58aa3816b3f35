"""One unreachable cluster must not slow anything else down: its Kafka calls run on threads of its
own, bounded by its own timeout, so another cluster's calls, the Kubernetes gateway and whatever
else uses the event loop's default executor (the console's stdin, aiohttp's DNS lookups for Slack)
answer at once while the dead one waits out its timeout.

"Dead" is a listening socket that accepts connections and never answers: the worst case, where
every request waits its full timeout (a closed port fails fast)."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest
import redis.asyncio as aioredis

from bot.clock import RandomIds, SystemClock
from bot.kafka import KafkaAdminAdapter, KafkaUnavailable
from bot.kube import KubeClusterGateway, load_api_client
from bot.sandbox.kube import ObjectStore, start_server, write_kubeconfig
from bot.store import ClusterLock, RunStore
from bot.store.repository import RedisClusterLocks, RedisRunRepository
from handlers.clusters import ManagedCluster
from handlers.commands.service import CommandService
from handlers.ports import ClusterRef
from runbooks.engine.models import Actor, ApprovalPolicy
from tests.kube.test_gateway import create_kafka

if TYPE_CHECKING:  # a runtime import would stop pytest from rewriting the plugin's asserts
    from tests.fixtures.sandbox import SandboxInfo

T = TypeVar("T")
DEAD_TIMEOUT_S = 3.0  # the adapter's request (and bootstrap) timeout in these tests
# More concurrent calls than the default executor has threads (min(32, cpus + 4)), so sharing it
# with the dead cluster would show.
BURST = min(32, (os.cpu_count() or 1) + 4) + 2
HEALTHY = ClusterRef(name="prod", namespace="kafka", kafka="prod")
DEAD = ClusterRef(name="dead", namespace="kafka", kafka="dead")

pytestmark = pytest.mark.timeout(60)  # the sandbox test below has its own


@pytest.fixture
def dead_bootstrap() -> Iterator[str]:
    """host:port of a socket that accepts connections (the kernel completes the handshake) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(256)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[KubeClusterGateway]:
    store = ObjectStore()
    create_kafka(store, name="prod")
    runner, url = await start_server(store)
    kube = KubeClusterGateway(load_api_client(str(write_kubeconfig(tmp_path / "kubeconfig", url, namespace="kafka",
                                                                   context_name="test"))))
    try:
        yield kube
    finally:
        kube.close()
        await runner.cleanup()


@pytest.fixture
async def admin() -> AsyncIterator[KafkaAdminAdapter]:
    adapter = KafkaAdminAdapter(client_id="isolation-probe", request_timeout_ms=int(DEAD_TIMEOUT_S * 1000),
                                call_deadline_s=DEAD_TIMEOUT_S)
    try:
        yield adapter
    finally:
        await adapter.close()


async def timed(call: Awaitable[T]) -> tuple[float, T | BaseException]:
    started = time.monotonic()
    try:
        result: T | BaseException = await call
    except Exception as exc:
        result = exc
    return time.monotonic() - started, result


async def test_a_dead_cluster_delays_neither_kubernetes_calls_nor_the_default_executor(
        admin: KafkaAdminAdapter, gateway: KubeClusterGateway, dead_bootstrap: str) -> None:
    """A burst of snapshots of a dead cluster in flight: another cluster's Kubernetes reads, a
    thread from the default executor and a DNS lookup all answer within 1 s, and the dead calls
    themselves each fail within about one timeout (a burst shares one bootstrap attempt), not
    queued behind each other."""
    burst = [asyncio.create_task(timed(admin.snapshot(DEAD, dead_bootstrap))) for _ in range(BURST)]
    await asyncio.sleep(0.5)  # every dead call is waiting on the silent socket now
    status_s, status = await timed(gateway.kafka_status(HEALTHY))
    pods_s, _ = await timed(gateway.broker_pods(HEALTHY))
    thread_s, _ = await timed(asyncio.to_thread(lambda: None))
    dns_s, _ = await timed(asyncio.get_running_loop().getaddrinfo("localhost", 9092))
    dead = await asyncio.gather(*burst)
    assert not isinstance(status, BaseException) and status.ready, status
    assert max(status_s, pods_s) < 1.0, (status_s, pods_s)
    assert thread_s < 1.0 and dns_s < 1.0, (thread_s, dns_s)
    assert all(isinstance(result, KafkaUnavailable) for _, result in dead), dead
    slowest = max(seconds for seconds, _ in dead)
    assert slowest < DEAD_TIMEOUT_S * 1.7, f"a dead call took {slowest:.1f} s: calls queued behind each other"


@pytest.mark.sandbox
@pytest.mark.timeout(300)
async def test_status_of_a_healthy_cluster_and_help_answer_while_a_dead_cluster_is_asked_repeatedly(
        sandbox: SandboxInfo, redis_client: aioredis.Redis, dead_bootstrap: str) -> None:
    """Through the real service, adapters and sandbox: while a burst of `status dead` waits on a
    Kafka that never answers, `status` of the sandbox cluster (Kubernetes and Kafka reads) answers
    within 1 s and `help` at once; each `status dead` still answers, saying Kafka is unreachable."""
    policy = ApprovalPolicy(approvers=("U_APP",))
    prod = ManagedCluster(ref=ClusterRef(name="prod", namespace=sandbox.namespace, kafka=sandbox.cluster),
                          policy=policy)
    # The same Kafka resource, but a bootstrap override pointing at the silent socket.
    dead = ManagedCluster(ref=ClusterRef(name="dead", namespace=sandbox.namespace, kafka=sandbox.cluster,
                                         bootstrap_servers=dead_bootstrap), policy=policy)
    gateway = KubeClusterGateway(load_api_client(sandbox.kubeconfig))
    admin = KafkaAdminAdapter(client_id="isolation-service", request_timeout_ms=int(DEAD_TIMEOUT_S * 1000),
                              call_deadline_s=DEAD_TIMEOUT_S)
    service = CommandService(clusters={"prod": prod, "dead": dead}, runs=RedisRunRepository(RunStore(redis_client)),
                             locks=RedisClusterLocks(ClusterLock(redis_client)), gateway=gateway, admin=admin,
                             clock=SystemClock(), ids=RandomIds())
    user = Actor(id="U_ANY")
    try:
        warm = await service.handle_text("status prod", user)  # the client of prod exists before timing
        assert warm.ok and "partitions" in warm.text, warm.text
        burst = [asyncio.create_task(timed(service.handle_text("status dead", user))) for _ in range(BURST)]
        await asyncio.sleep(0.5)
        status_s, status = await timed(service.handle_text("status prod", user))
        help_s, help_reply = await timed(service.handle_text("help", user))
        dead_replies = await asyncio.gather(*burst)
    finally:
        await admin.close()
        gateway.close()
    assert not isinstance(status, BaseException) and status.ok and "partitions" in status.text, status
    assert status_s < 1.0, f"status of the healthy cluster took {status_s:.2f} s"
    assert not isinstance(help_reply, BaseException) and help_reply.ok and help_s < 0.2, help_s
    for seconds, reply in dead_replies:
        assert not isinstance(reply, BaseException) and "Kafka admin unreachable" in reply.text, reply
        assert seconds < DEAD_TIMEOUT_S * 1.7, seconds
