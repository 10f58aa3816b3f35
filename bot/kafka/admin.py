"""``KafkaAdminAdapter``: the ``KafkaAdmin`` port over kafka-python 3's ``KafkaAdminClient``.

Why kafka-python alone, and not aiokafka for part of it (docs/kafka-ops.md §5):
- A snapshot needs DescribeCluster *with fenced brokers* (KIP-1073), ListPartitionReassignments,
  DescribeQuorum (``lastCaughtUpTimestamp`` for ``can_roll_controller``) and DescribeConfigs with
  effective values; ``elect_preferred_leaders`` needs ElectLeaders. aiokafka 0.14 has none of
  DescribeCluster/DescribeQuorum/ElectLeaders and no wrapper for ListPartitionReassignments. It
  would cover exactly one call (Metadata for topics), which kafka-python also does.
- Splitting would mean two clients, two connection pools and two error vocabularies per cluster
  for no gain: every call here is a small request the bot makes every few seconds at most, so
  kafka-python's sync facade run in a worker thread (``asyncio.to_thread``) costs nothing that
  matters. kafka-python does its I/O on its own thread, which is safe to call from several
  caller threads (``KafkaNetClient.run``).
- Never aiokafka's ``alter_configs``: it is the legacy AlterConfigs, which resets every dynamic
  config the request omits. Writes of broker configs belong with IncrementalAlterConfigs, which
  kafka-python also has (its ``alter_configs`` uses it). The bot itself only *reads* broker
  configs: in the config runbook the operator writes them, and the bot verifies each broker's
  value with DescribeConfigs sent to that broker, and each broker's release with ApiVersions
  (``bot.kafka.brokers``). Before a change is approved it asks each broker to judge the values
  Kafka applies live, with IncrementalAlterConfigs and validate_only (nothing is written).

Bounded time: each request has ``request_timeout_ms`` (default 8 s), bootstrap has its own bound,
and each port call retries retriable errors (a dead broker refuses connections until the controller
fences it ~9 s later, and the client may pick it first) only until a per-call deadline, then raises
``KafkaUnavailable``. Clients are cached per bootstrap string and security fingerprint (changed
credentials, say a certificate Strimzi renewed, make a new client and close the old one), dropped
after a failure (a fresh bootstrap is the cheapest cure for stale metadata) and closed by ``close()``.

Security: each cluster's ``KafkaClientSecurity`` comes from ``security`` (``bot.kafka.security``);
a failed bootstrap tells it so (its Secrets are read again) and asks ``explain_failure`` for the
TLS or SASL reason, which then replaces kafka-python's generic one.

Isolation: an unreachable cluster holds each call that reaches it for its whole timeout, in a
thread. Those threads are the cluster's own (a small pool per bootstrap string), never the event
loop's default executor, which the Kubernetes gateway, the console's stdin and aiohttp's DNS
lookups would otherwise queue behind. Calls that find a cluster's bootstrap already under way wait
for that one attempt and share its failure, so a burst of commands against a dead cluster costs one
timeout, not one per queued call.

Which requests make up a snapshot or an election, and which errors are worth a retry, are in
``bot.kafka.cluster_reads``; the per-broker calls are in ``bot.kafka.brokers``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from typing import TypeVar

from kafka.admin import KafkaAdminClient

from bot.kafka import reassignments as moves
from bot.kafka.brokers import ask_features, describe_broker, validate_on_broker
from bot.kafka.client_security import KafkaClientSecurity
from bot.kafka.cluster_reads import elect_preferred, read_snapshot, retriable
from bot.kafka.errors import KafkaUnavailable
from bot.kafka.security import ClientSecurities, KafkaSecurityError, PlaintextOnly, explain_failure
from handlers.ports import BrokerFeatures, ClusterRef
from handlers.replica_moves import (
    MoveProgress,
    ReassignmentInFlight,
    ReplicaLayout,
    ReplicaTarget,
    ReplicationThrottle,
    ThrottlesPresent,
)
from runbooks.rules.config_keys import ConfigEntryInfo
from runbooks.rules.health import ClusterSnapshot

log = logging.getLogger(__name__)

T = TypeVar("T")
# Threads per cluster: a status, a health poll, a lag poll and a run's step at once; more wait their
# turn (within their own deadline) without touching any other cluster.
CLUSTER_THREADS = 4
class KafkaAdminAdapter:
    """Snapshots and preferred elections for any cluster, one cached admin client per bootstrap."""

    def __init__(
        self,
        *,
        client_id: str = "kafka-chatops",
        request_timeout_ms: int = 8000,
        call_deadline_s: float = 25.0,
        security: ClientSecurities | None = None,
    ) -> None:
        """``security``: each cluster's TLS and SASL settings (default: plaintext for all)."""
        self._client_id = client_id
        self._request_timeout_ms = request_timeout_ms
        self._deadline_s = call_deadline_s
        self.security: ClientSecurities = security or PlaintextOnly()
        # Keyed by (bootstrap, security fingerprint), except the threads, which are the cluster's.
        self._clients: dict[tuple[str, str], KafkaAdminClient] = {}
        self._pools: dict[str, ThreadPoolExecutor] = {}  # per bootstrap: see "Isolation" above
        self._connecting: dict[tuple[str, str], threading.Lock] = {}  # one bootstrap attempt at a time
        self._failed: dict[tuple[str, str], tuple[float, str]] = {}  # the last failed bootstrap: when, why
        self._lock = threading.Lock()  # the dicts are touched from worker threads; held for lookups only

    # -- the port ------------------------------------------------------------------------------

    async def snapshot(self, cluster: ClusterRef, bootstrap_servers: str) -> ClusterSnapshot:
        return await self._run(cluster, bootstrap_servers, "snapshot", read_snapshot)

    async def elect_preferred_leaders(self, cluster: ClusterRef, bootstrap_servers: str) -> int:
        return await self._run(cluster, bootstrap_servers, "preferred leader election", elect_preferred)

    async def describe_broker_configs(
        self, cluster: ClusterRef, bootstrap_servers: str, brokers: Sequence[int], keys: Sequence[str] | None = None,
    ) -> dict[int, dict[str, ConfigEntryInfo]]:
        ids, wanted = list(brokers), list(keys) if keys is not None else None

        def body(call: _Call) -> dict[int, dict[str, ConfigEntryInfo]]:
            return {b: call.retry(f"DescribeConfigs (broker {b})", partial(describe_broker, broker=b, keys=wanted))
                    for b in ids}

        return await self._run(cluster, bootstrap_servers, "DescribeConfigs", body)

    async def broker_features(
        self, cluster: ClusterRef, bootstrap_servers: str, brokers: Sequence[int],
    ) -> dict[int, BrokerFeatures]:
        ids = list(brokers)

        def body(call: _Call) -> dict[int, BrokerFeatures]:
            return {b: call.retry(f"ApiVersions (broker {b})", partial(ask_features, broker=b)) for b in ids}

        return await self._run(cluster, bootstrap_servers, "ApiVersions", body)

    async def validate_broker_configs(
        self, cluster: ClusterRef, bootstrap_servers: str, brokers: Sequence[int], values: Mapping[str, str],
    ) -> dict[int, str | None]:
        ids, wanted = list(brokers), dict(values)

        def body(call: _Call) -> dict[int, str | None]:
            return {b: call.retry(f"IncrementalAlterConfigs, validate only (broker {b})",
                                  partial(validate_on_broker, broker=b, values=wanted)) for b in ids}

        return await self._run(cluster, bootstrap_servers, "IncrementalAlterConfigs (validate only)", body)

    # -- replica moves (bot.kafka.reassignments says what each sends) ------------------------------

    async def replica_layout(self, cluster: ClusterRef, bootstrap_servers: str) -> ReplicaLayout:
        return await self._run(cluster, bootstrap_servers, "replica layout", moves.read_layout)

    async def set_replication_throttles(self, cluster: ClusterRef, bootstrap_servers: str,
                                        throttle: ReplicationThrottle) -> None:
        await self._run(cluster, bootstrap_servers, "setting throttles",
                        partial(moves.set_throttles, throttle=throttle))

    async def remove_replication_throttles(self, cluster: ClusterRef, bootstrap_servers: str, brokers: Sequence[int],
                                           topics: Sequence[str]) -> None:
        await self._run(cluster, bootstrap_servers, "removing throttles",
                        partial(moves.remove_throttles, brokers=list(brokers), topics=list(topics)))

    async def replication_throttles(self, cluster: ClusterRef, bootstrap_servers: str,
                                    topics: Sequence[str] | None = None,
                                    brokers: Sequence[int] | None = None) -> ThrottlesPresent:
        return await self._run(cluster, bootstrap_servers, "reading throttles",
                               partial(moves.read_throttles, topics=None if topics is None else list(topics),
                                       brokers=None if brokers is None else list(brokers)))

    async def submit_reassignments(self, cluster: ClusterRef, bootstrap_servers: str,
                                   targets: Sequence[ReplicaTarget]) -> dict[str, str]:
        return await self._run(cluster, bootstrap_servers, "AlterPartitionReassignments",
                               partial(moves.submit, targets=list(targets)))

    async def cancel_reassignments(self, cluster: ClusterRef, bootstrap_servers: str,
                                   partitions: Sequence[tuple[str, int]]) -> dict[str, str]:
        return await self._run(cluster, bootstrap_servers, "cancelling reassignments",
                               partial(moves.cancel, partitions=list(partitions)))

    async def reassignments_in_flight(self, cluster: ClusterRef, bootstrap_servers: str,
                                      partitions: Sequence[tuple[str, int]] | None = None,
                                      ) -> list[ReassignmentInFlight]:
        wanted = list(partitions) if partitions is not None else None
        return await self._run(cluster, bootstrap_servers, "ListPartitionReassignments",
                               partial(moves.read_in_flight, partitions=wanted))

    async def reassignment_progress(self, cluster: ClusterRef, bootstrap_servers: str,
                                    partitions: Sequence[tuple[str, int]]) -> list[MoveProgress]:
        return await self._run(cluster, bootstrap_servers, "reassignment progress",
                               partial(moves.read_progress, partitions=list(partitions)))

    async def run_calls(self, cluster: ClusterRef, bootstrap_servers: str, what: str,
                        body: Callable[[AdminCall], T]) -> T:
        """Run ``body`` in a worker thread with this adapter's cached client, retry rule and deadline:
        for adapters built on this one (the lag reader), which call ``AdminCall.retry``/``once``."""
        return await self._run(cluster, bootstrap_servers, what, body)

    async def in_cluster_thread(self, cluster: ClusterRef, bootstrap_servers: str, fn: Callable[[], T],
                                *, timeout_s: float) -> T:
        """Run blocking ``fn`` (another kafka-python client of this cluster, e.g. the lag reader's
        consumer) on this cluster's own threads, waiting at most ``timeout_s``."""
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._pool(bootstrap_servers), fn), timeout=timeout_s)
        except TimeoutError:
            raise KafkaUnavailable(f"{cluster.name} ({bootstrap_servers}): no answer within {timeout_s:.0f} s"
                                   ) from None

    async def close(self) -> None:
        """Close every cached client (each owns an I/O thread and sockets) and the clusters' threads."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
            pools, self._pools = list(self._pools.values()), {}
        for admin in clients:
            await asyncio.to_thread(_close_quietly, admin)
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)  # a thread stuck on a dead cluster ends on its timeout

    # -- plumbing ------------------------------------------------------------------------------

    async def _run(
        self,
        cluster: ClusterRef,
        bootstrap: str,
        what: str,
        body: Callable[[_Call], T],
    ) -> T:
        try:
            security = await self.security.security(cluster)
        except KafkaSecurityError as exc:
            raise KafkaUnavailable(f"{what} of {cluster.name}: {exc}") from None
        call = _Call(self, cluster, bootstrap, security, f"{what} of {cluster.name} ({bootstrap})")
        # The thread cannot be cancelled; the outer bound only stops the caller waiting past the
        # deadline if kafka-python ever ignored its own timeouts (or this cluster's threads are all
        # taken by calls that do).
        backstop = self._deadline_s + self._request_timeout_ms / 1000 + 5
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.run_in_executor(self._pool(bootstrap), call.run, body), timeout=backstop)
        except TimeoutError:
            self._evict(call.key, None)
            raise KafkaUnavailable(f"{call.what}: no answer within {backstop:.0f} s") from None

    def _pool(self, bootstrap: str) -> ThreadPoolExecutor:
        with self._lock:
            pool = self._pools.get(bootstrap)
            if pool is None:
                pool = self._pools[bootstrap] = ThreadPoolExecutor(
                    max_workers=CLUSTER_THREADS, thread_name_prefix=f"kco-kafka-{bootstrap.split(',')[0]}")
            return pool

    def _client(self, call: _Call) -> KafkaAdminClient:
        """The cached client, or a new one. One bootstrap attempt at a time per cluster: a call that
        waited for another's attempt and saw it fail shares that failure instead of trying again."""
        key, bootstrap = call.key, call.bootstrap
        with self._lock:
            admin = self._clients.get(key)
            gate = self._connecting.setdefault(key, threading.Lock())
        if admin is not None:
            return admin
        if not gate.acquire(timeout=max(0.0, call.deadline - time.monotonic())):
            raise KafkaUnavailable(f"cannot bootstrap from {bootstrap}: another attempt is still under way")
        try:
            with self._lock:
                admin = self._clients.get(key)
                failed = self._failed.get(key)
            if admin is not None:
                return admin
            if failed is not None and failed[0] >= call.asked_at:
                raise KafkaUnavailable(failed[1])
            try:
                admin = self._connect(bootstrap, call.security)
            except KafkaUnavailable as exc:
                self.security.failed(call.cluster)  # its Secrets may have changed: read them again
                with self._lock:
                    self._failed[key] = (time.monotonic(), str(exc))
                raise
            with self._lock:
                self._clients[key] = admin
                self._failed.pop(key, None)
                # The same cluster's clients on credentials it no longer uses.
                superseded = [k for k in self._clients if k[0] == bootstrap and k != key]
            for old in superseded:
                self._evict(old, None)
            return admin
        finally:
            gate.release()

    def _connect(self, bootstrap: str, security: KafkaClientSecurity) -> KafkaAdminClient:
        # KafkaAdminClient starts its I/O thread before bootstrapping and leaks it when bootstrap
        # fails (the instance is never returned). Build it in two steps so we can close it then.
        admin = KafkaAdminClient.__new__(KafkaAdminClient)
        try:
            admin.__init__(
                bootstrap_servers=bootstrap,
                client_id=self._client_id,
                request_timeout_ms=self._request_timeout_ms,
                bootstrap_timeout_ms=self._request_timeout_ms,
                reconnect_backoff_max_ms=2000,  # a broker back from a restart is found within ~2 s
                **security.kafka_python_config(),
            )
        except Exception as exc:
            admin._closed = False  # close() is a no-op unless __init__ got this far
            _close_quietly(admin)
            why = explain_failure(bootstrap, security) if security.security_protocol != "PLAINTEXT" else None
            raise KafkaUnavailable(f"cannot bootstrap from {bootstrap}: {why or _describe(exc)}") from None
        return admin

    def _evict(self, key: tuple[str, str], admin: KafkaAdminClient | None) -> None:
        with self._lock:
            current = self._clients.get(key)
            if current is not None and (admin is None or current is admin):
                del self._clients[key]
            else:
                current = None
        if current is not None:
            _close_quietly(current)

class _Call:
    """One port call: a client, a deadline, and the retry rule, in the worker thread."""

    def __init__(self, adapter: KafkaAdminAdapter, cluster: ClusterRef, bootstrap: str,
                 security: KafkaClientSecurity, what: str) -> None:
        self.adapter = adapter
        self.cluster = cluster
        self.bootstrap = bootstrap
        self.security = security
        self.key = (bootstrap, security.fingerprint)
        self.what = what
        self.asked_at = time.monotonic()
        self.deadline = self.asked_at + adapter._deadline_s
        self.admin: KafkaAdminClient | None = None

    def run(self, body: Callable[[_Call], T]) -> T:
        self.admin = self.adapter._client(self)
        try:
            return body(self)
        except KafkaUnavailable:
            self.adapter._evict(self.key, self.admin)
            self.adapter.security.failed(self.cluster)  # a reconnect may have met renewed credentials
            raise

    def once(self, fn: Callable[[KafkaAdminClient], T]) -> T:
        assert self.admin is not None
        return fn(self.admin)

    def retry(self, request: str, fn: Callable[[KafkaAdminClient], T]) -> T:
        delay = 0.2
        while True:
            try:
                return self.once(fn)
            except Exception as exc:
                if not retriable(exc) or time.monotonic() + delay >= self.deadline:
                    raise self.unavailable(request, exc) from exc
                log.debug("%s: %s failed (%s), retrying", self.what, request, exc)
                # kafka-python caches the "controller" it routes ListPartitionReassignments and
                # ElectLeaders to; in KRaft that is just some broker, possibly the one that died.
                with suppress(AttributeError):
                    self.admin._controller_id = None  # type: ignore[union-attr]
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def unavailable(self, request: str, exc: BaseException) -> KafkaUnavailable:
        return KafkaUnavailable(f"{self.what}: {request} failed: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    """``Type: message``, once (kafka-python's errors already start with their class name), capped:
    some embed a whole request/response repr."""
    text = str(exc)
    name = type(exc).__name__
    text = text if text.startswith(name) else f"{name}: {text}" if text else name
    return text if len(text) <= 300 else text[:297] + "..."


def _close_quietly(admin: KafkaAdminClient) -> None:
    try:
        admin.close()
    except Exception:  # closing a half-built or broken client: nothing left to save
        log.debug("closing a Kafka admin client failed", exc_info=True)


AdminCall = _Call  # the name adapters built on ``run_calls`` use
