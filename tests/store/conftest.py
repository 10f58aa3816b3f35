"""The store's objects over the per-test redis-server (``redis_client``, tests/fixtures/redis_server.py), and
a Sentinel deployment for failover tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.store import ClusterLock, RunStore
from tests.store.sentinel_cluster import SentinelCluster


@pytest.fixture
def store(redis_client: aioredis.Redis) -> RunStore:
    return RunStore(redis_client)


@pytest.fixture
def lock(redis_client: aioredis.Redis) -> ClusterLock:
    return ClusterLock(redis_client)


@pytest.fixture
def sentinel_cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    """A master, a replica and three Sentinels (tests/store/sentinel_cluster.py), for this test only."""
    cluster = SentinelCluster(tmp_path / "sentinel")
    try:
        yield cluster
    finally:
        cluster.cleanup()
