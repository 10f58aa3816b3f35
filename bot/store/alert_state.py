"""Alert state in Redis, shared by every replica: versioned documents written with compare-and-set,
the post claim (SET NX), the latest lag report per cluster, and the monitor lease per cluster.

Keys (``<prefix>:<kind>:<id>``, the variable part last, as in ``bot.store.keys``):

- ``alert:<alert id>``: hash ``doc`` (the AlertState as JSON), ``version``;
- ``alerts:<cluster>``: set of that cluster's alert ids (what ``/kafka alerts`` and the evaluator read);
- ``alert-post:<alert id>:<occurrence>``: the post claim, SET NX PX;
- ``lag:<cluster>``: the latest lag report (JSON), PX a few poll intervals: stale figures disappear;
- ``mirror-canary:<cluster>:<mirror>``: the mirror monitor's canary state (JSON), PX a week: a
  removed mirror's goes by itself;
- ``monitor:<cluster>``: which replica runs the cluster's monitors, SET NX PX, renewed by its holder.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import redis.asyncio as aioredis

from bot.store.codec import require_decoded
from bot.store.errors import StoreUnavailable, translate_errors
from bot.store.keys import check_id
from handlers import ports
from handlers.alerting.lag_document import LagDocument
from handlers.alerting.lag_models import LagReport
from runbooks.alerting.lifecycle import AlertState
from runbooks.alerting.mirror import CanaryState

# KEYS: alert, index. ARGV: id, doc, expected version. Returns {1, new} | {0, current}.
_SAVE = """
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version ~= tonumber(ARGV[3]) then return {0, version} end
version = version + 1
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'version', version)
redis.call('SADD', KEYS[2], ARGV[1])
return {1, version}
"""

# KEYS: alert, index. ARGV: id, expected version.
_DELETE = """
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version ~= tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1
"""

# KEYS: claim. ARGV: owner.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: lease. ARGV: owner, ttl ms. Taking a lease we hold renews it.
_LEASE = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if current then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class RedisAlertStore:
    """The ``AlertStore`` port."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "kco") -> None:
        require_decoded(client)
        self._client = client
        self._prefix = check_id("key prefix", prefix)
        self._save = client.register_script(_SAVE)
        self._delete = client.register_script(_DELETE)
        self._release = client.register_script(_RELEASE)

    def _alert(self, alert_id: str) -> str:
        return f"{self._prefix}:alert:{check_id('alert id', alert_id)}"

    def _index(self, cluster: str) -> str:
        return f"{self._prefix}:alerts:{check_id('cluster', cluster)}"

    async def load_cluster(self, cluster: str) -> list[tuple[AlertState, int]]:
        with _translated(self._client):
            ids = sorted(str(i) for i in await self._client.smembers(self._index(cluster)))
            if not ids:
                return []
            pipe = self._client.pipeline(transaction=False)
            for alert_id in ids:
                pipe.hmget(self._alert(alert_id), "doc", "version")
            rows = await pipe.execute()
        found: list[tuple[AlertState, int]] = []
        for doc, version in rows:  # decode_responses: str
            if doc is not None:  # an id whose alert was deleted by another replica just now
                found.append((AlertState.model_validate_json(doc), int(version)))
        return found

    async def load(self, alert_id: str) -> tuple[AlertState, int] | None:
        with _translated(self._client):
            doc, version = await self._client.hmget(self._alert(alert_id), "doc", "version")
        if doc is None or version is None:
            return None
        return AlertState.model_validate_json(doc), int(version)

    async def save(self, state: AlertState, *, expected_version: int) -> int:
        with _translated(self._client):
            ok, version = await self._save(
                keys=[self._alert(state.id), self._index(state.key.cluster)],
                args=[state.id, state.model_dump_json(), expected_version],
            )
        if not ok:
            raise ports.VersionConflict(f"alert {state.id}: expected version {expected_version}, found {version}")
        return int(version)

    async def delete(self, alert_id: str, *, expected_version: int) -> bool:
        loaded = await self.load(alert_id)
        if loaded is None:
            return False
        with _translated(self._client):
            deleted = await self._delete(keys=[self._alert(alert_id), self._index(loaded[0].key.cluster)],
                                         args=[alert_id, expected_version])
        return bool(deleted)

    def _claim(self, alert_id: str, occurrence: int) -> str:
        return f"{self._prefix}:alert-post:{check_id('alert id', alert_id)}:{occurrence}"

    async def claim_post(self, alert_id: str, occurrence: int, owner: str, ttl_s: float) -> bool:
        with _translated(self._client):
            taken = await self._client.set(self._claim(alert_id, occurrence), owner, nx=True,
                                           px=max(1, round(ttl_s * 1000)))
        return bool(taken)

    async def release_post(self, alert_id: str, occurrence: int, owner: str) -> None:
        with _translated(self._client):
            await self._release(keys=[self._claim(alert_id, occurrence)], args=[owner])


class RedisLagReports:
    """The ``LagReports`` port: one JSON document per cluster, expiring when nobody refreshes it.

    Reports are written under ``<prefix>:lag-v2:<cluster>`` (``lag_document``'s compact form, or
    the models' form for a failed poll). Replicas before the compact form wrote and read the models'
    form under ``<prefix>:lag:<cluster>``: the new key keeps them from reading a document they would
    take for groups with no partitions (they read no report, "not polled yet", until they are
    upgraded), and a report an older replica wrote there is still read while no newer one is."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "kco") -> None:
        self._client = client
        self._prefix = check_id("key prefix", prefix)

    def _key(self, cluster: str) -> str:
        return f"{self._prefix}:lag-v2:{check_id('cluster', cluster)}"

    def _older_key(self, cluster: str) -> str:
        return f"{self._prefix}:lag:{check_id('cluster', cluster)}"

    async def save(self, report: LagReport | LagDocument, *, ttl_s: float) -> None:
        with _translated(self._client):
            await self._client.set(self._key(report.cluster), report.model_dump_json(), px=max(1, round(ttl_s * 1000)))

    async def latest(self, cluster: str) -> LagReport | None:
        doc = await self._document(cluster)
        return None if doc is None else LagReport.model_validate_json(doc)

    async def holds_figures(self, cluster: str) -> bool:
        """Whether the stored report is a poll's figures: its JSON read, no model built."""
        doc = await self._document(cluster)
        return doc is not None and json.loads(doc).get("error") is None

    async def latest_raw(self, cluster: str) -> dict[str, Any] | None:
        """The report's JSON as stored, parsed (either form: ``"format": 2`` or the models'):
        ``/metrics`` renders it without building models."""
        doc = await self._document(cluster)
        if doc is None:
            return None
        loaded: dict[str, Any] = json.loads(doc)
        return loaded

    async def _document(self, cluster: str) -> bytes | str | None:
        with _translated(self._client):
            doc: bytes | str | None = await self._client.get(self._key(cluster))
            if doc is None:
                doc = await self._client.get(self._older_key(cluster))
        return doc


class RedisCanaryStates:
    """The ``CanaryStates`` port: one JSON document per mirror, rewritten by each canary probe."""

    TTL_MS = 7 * 24 * 3600 * 1000

    def __init__(self, client: aioredis.Redis, *, prefix: str = "kco") -> None:
        self._client = client
        self._prefix = check_id("key prefix", prefix)

    def _key(self, cluster: str, mirror: str) -> str:
        return f"{self._prefix}:mirror-canary:{check_id('cluster', cluster)}:{check_id('mirror', mirror)}"

    async def load(self, cluster: str, mirror: str) -> CanaryState | None:
        with _translated(self._client):
            doc = await self._client.get(self._key(cluster, mirror))
        return None if doc is None else CanaryState.model_validate_json(doc)

    async def save(self, state: CanaryState) -> None:
        with _translated(self._client):
            await self._client.set(self._key(state.cluster, state.mirror), state.model_dump_json(), px=self.TTL_MS)


class MonitorLease:
    """Which replica runs a cluster's monitors. Only the holder polls Kafka for that cluster, so N
    replicas cost Kafka what one does; when it dies, another takes over within the TTL."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "kco") -> None:
        self._client = client
        self._prefix = check_id("key prefix", prefix)
        self._lease = client.register_script(_LEASE)
        self._release = client.register_script(_RELEASE)

    def _key(self, cluster: str) -> str:
        return f"{self._prefix}:monitor:{check_id('cluster', cluster)}"

    async def hold(self, cluster: str, owner: str, ttl_s: float) -> bool:
        """Take or renew the lease; False while another replica holds it."""
        with _translated(self._client):
            return bool(await self._lease(keys=[self._key(cluster)], args=[owner, max(1, round(ttl_s * 1000))]))

    async def release(self, cluster: str, owner: str) -> None:
        with _translated(self._client):
            await self._release(keys=[self._key(cluster)], args=[owner])


@contextlib.contextmanager
def _translated(client: aioredis.Redis) -> Iterator[None]:
    """Store errors as the ports' ``StoreUnavailable`` (the use cases know only those)."""
    try:
        with translate_errors(client):
            yield
    except StoreUnavailable as exc:
        raise ports.StoreUnavailable(str(exc)) from exc
