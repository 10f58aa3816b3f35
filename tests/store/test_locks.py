"""ClusterLock and RunLease against a real redis-server."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from bot.store import ClusterLock, RunLease
from tests.fixtures.waiting import wait_for

pytest_plugins = ["tests.fixtures.redis_server"]


@pytest.fixture
def lease(redis_client: aioredis.Redis) -> RunLease:
    return RunLease(redis_client)


async def test_lock_is_exclusive_per_cluster(lock: ClusterLock) -> None:
    """While one run holds a cluster, another run gets None; other clusters are unaffected."""
    assert await lock.acquire("prod-east", "r-1") is not None
    assert await lock.acquire("prod-east", "r-2") is None
    assert await lock.holder("prod-east") == "r-1"
    assert await lock.acquire("prod-west", "r-2") is not None


async def test_reacquire_by_holder_returns_same_token(lock: ClusterLock) -> None:
    """The holder acquiring again (a resumed worker) gets its existing token back."""
    token = await lock.acquire("c1", "r-1")
    assert await lock.acquire("c1", "r-1") == token


async def test_fencing_token_increases_across_acquisitions(lock: ClusterLock) -> None:
    """Every new acquisition of a cluster gets a larger token; the old token stops being current."""
    first = await lock.acquire("c1", "r-1")
    assert first is not None and await lock.check_token("c1", first)
    assert await lock.release("c1", "r-1")
    assert not await lock.check_token("c1", first)
    second = await lock.acquire("c1", "r-2")
    assert second is not None and second > first
    assert not await lock.check_token("c1", first)
    assert await lock.check_token("c1", second)
    await lock.release("c1", "r-2")
    third = await lock.acquire("c1", "r-1")
    assert third is not None and third > second


async def test_only_holder_releases(lock: ClusterLock) -> None:
    """release by a run that does not hold the lock returns False and leaves the holder in place."""
    token = await lock.acquire("c1", "r-1")
    assert token is not None
    assert not await lock.release("c1", "r-2")
    assert await lock.holder("c1") == "r-1"
    assert await lock.check_token("c1", token)
    assert await lock.release("c1", "r-1")
    assert await lock.holder("c1") is None
    assert not await lock.release("c1", "r-1")


async def test_lock_has_no_expiry(lock: ClusterLock, redis_client: aioredis.Redis) -> None:
    """The cluster lock carries no TTL: a run waiting days for approval keeps its cluster."""
    await lock.acquire("c1", "r-1")
    assert await redis_client.pttl("kco:lock:c1") == -1


async def test_lease_is_exclusive_until_released(lease: RunLease) -> None:
    """A held lease refuses another owner; after release the other owner can take it."""
    assert await lease.try_acquire("r-1", "replica-a", 30)
    assert not await lease.try_acquire("r-1", "replica-b", 30)
    assert await lease.owner("r-1") == "replica-a"
    await lease.release("r-1", "replica-b")  # not the owner: no effect
    assert await lease.owner("r-1") == "replica-a"
    await lease.release("r-1", "replica-a")
    assert await lease.owner("r-1") is None
    assert await lease.try_acquire("r-1", "replica-b", 30)


async def test_lease_expiry_lets_another_owner_take_over(lease: RunLease) -> None:
    """An unrenewed lease expires, another owner takes it, and the old owner's renew then fails."""
    assert await lease.try_acquire("r-1", "replica-a", 0.2)
    await wait_for(
        lambda: lease.try_acquire("r-1", "replica-b", 30),
        timeout=3,
        interval=0.05,
        message="replica-b to take the expired lease",
    )
    assert await lease.owner("r-1") == "replica-b"
    assert not await lease.renew("r-1", "replica-a", 30)
    assert await lease.owner("r-1") == "replica-b"


async def test_renew_extends_and_non_owner_renew_fails(lease: RunLease, redis_client: aioredis.Redis) -> None:
    """renew by the owner resets the TTL; renew by anyone else returns False and changes nothing."""
    assert await lease.try_acquire("r-1", "replica-a", 1)
    assert not await lease.renew("r-1", "replica-b", 60)
    assert await redis_client.pttl("kco:lease:r-1") <= 1000
    assert await lease.renew("r-1", "replica-a", 60)
    assert await redis_client.pttl("kco:lease:r-1") > 1000
    assert not await lease.renew("r-unknown", "replica-a", 60)


async def test_try_acquire_by_current_owner_extends(lease: RunLease, redis_client: aioredis.Redis) -> None:
    """The owner calling try_acquire again succeeds and extends its lease instead of failing."""
    assert await lease.try_acquire("r-1", "replica-a", 1)
    assert await lease.try_acquire("r-1", "replica-a", 60)
    assert await redis_client.pttl("kco:lease:r-1") > 1000


async def test_lease_ttl_must_be_positive(lease: RunLease) -> None:
    """A zero or negative TTL is a programming error, refused before reaching Redis."""
    with pytest.raises(ValueError, match="positive"):
        await lease.try_acquire("r-1", "replica-a", 0)
