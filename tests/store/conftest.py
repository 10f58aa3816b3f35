"""The store's objects over the per-test redis-server (``redis_client``, tests/fixtures/redis_server.py)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from bot.store import ClusterLock, RunStore


@pytest.fixture
def store(redis_client: aioredis.Redis) -> RunStore:
    return RunStore(redis_client)


@pytest.fixture
def lock(redis_client: aioredis.Redis) -> ClusterLock:
    return ClusterLock(redis_client)
