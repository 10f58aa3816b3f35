"""Rebalance cards' records in Redis (``handlers.rebalances.RebalanceCardStore``), shared by every
replica: the same compare-and-set and post claim as the alerts' (``bot.store.alert_state``).

Keys (``<prefix>:<kind>:<id>``; a card id is ``<cluster>/<namespace>/<name>/<uid>``):

- ``rebalance-card:<card id>``: hash ``doc`` (the RebalanceCard as JSON), ``version``;
- ``rebalance-cards:<cluster>``: set of that cluster's card ids;
- ``rebalance-post:<card id>``: the post claim, SET NX PX;
- ``monitor:rebalances:<cluster>`` (``MonitorLease``, named by ``lease_name``): which replica polls.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.store.alert_state import _DELETE, _RELEASE, _SAVE, _translated
from bot.store.codec import require_decoded
from bot.store.keys import check_id
from handlers import ports
from runbooks.rules.rebalance_card import RebalanceCard

CARD_TTL_S = 30 * 86400  # a record whose resource nobody deletes still goes, a month after its last change


def lease_name(cluster: str) -> str:
    """The ``MonitorLease`` name of a cluster's rebalance poll (its own lease: it runs without the monitors)."""
    return f"rebalances:{cluster}"  # ":" is in no cluster name (Kubernetes names): no clash with a monitor lease


class RedisRebalanceCards:
    def __init__(self, client: aioredis.Redis, *, prefix: str = "kco") -> None:
        require_decoded(client)
        self._client = client
        self._prefix = check_id("key prefix", prefix)
        self._save = client.register_script(_SAVE)
        self._delete = client.register_script(_DELETE)
        self._release = client.register_script(_RELEASE)

    def _card(self, card_id: str) -> str:
        return f"{self._prefix}:rebalance-card:{check_id('card id', card_id)}"

    def _index(self, cluster: str) -> str:
        return f"{self._prefix}:rebalance-cards:{check_id('cluster', cluster)}"

    def _claim(self, card_id: str) -> str:
        return f"{self._prefix}:rebalance-post:{check_id('card id', card_id)}"

    async def load_cluster(self, cluster: str) -> list[tuple[RebalanceCard, int]]:
        with _translated(self._client):
            ids = sorted(str(i) for i in await self._client.smembers(self._index(cluster)))
            if not ids:
                return []
            pipe = self._client.pipeline(transaction=False)
            for card_id in ids:
                pipe.hmget(self._card(card_id), "doc", "version")
            rows = await pipe.execute()
        found = []
        for card_id, (doc, version) in zip(ids, rows, strict=True):
            if doc is None:  # expired or deleted: forget the id too
                with _translated(self._client):
                    await self._client.srem(self._index(cluster), card_id)
                continue
            found.append((RebalanceCard.model_validate_json(doc), int(version)))
        return found

    async def load(self, card_id: str) -> tuple[RebalanceCard, int] | None:
        with _translated(self._client):
            doc, version = await self._client.hmget(self._card(card_id), "doc", "version")
        if doc is None or version is None:
            return None
        return RebalanceCard.model_validate_json(doc), int(version)

    async def save(self, card: RebalanceCard, *, expected_version: int) -> int:
        with _translated(self._client):
            ok, version = await self._save(keys=[self._card(card.id), self._index(card.cluster)],
                                           args=[card.id, card.model_dump_json(), expected_version])
            if ok:
                await self._client.expire(self._card(card.id), CARD_TTL_S)
        if not ok:
            raise ports.VersionConflict(f"rebalance card {card.id}: expected version {expected_version}, "
                                        f"found {version}")
        return int(version)

    async def delete(self, card: RebalanceCard, *, expected_version: int) -> bool:
        with _translated(self._client):
            deleted = await self._delete(keys=[self._card(card.id), self._index(card.cluster)],
                                         args=[card.id, expected_version])
        return bool(deleted)

    async def claim_post(self, card_id: str, owner: str, ttl_s: float) -> bool:
        with _translated(self._client):
            taken = await self._client.set(self._claim(card_id), owner, nx=True, px=max(1, round(ttl_s * 1000)))
        return bool(taken)

    async def release_post(self, card_id: str, owner: str) -> None:
        with _translated(self._client):
            await self._release(keys=[self._claim(card_id)], args=[owner])
