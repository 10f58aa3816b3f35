"""Coordination in Redis: one mutating run per Kafka cluster, and which replica drives a run.

Two different mechanisms on purpose:

* :class:`ClusterLock` guards the *cluster*. It has no TTL: a run may wait days for an approval
  and the cluster must stay reserved all that time, even if every bot replica is down. It is
  released when the run finishes. Each acquisition gets a fencing token from a per-cluster
  counter that is never reset, so a step can prove "my run still owns this cluster" with
  :meth:`ClusterLock.check_token` right before it mutates anything.
* :class:`RunLease` guards the *driver* of one run. It expires (PX) so that when a replica dies
  another one takes the run over; the holder renews it while driving.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.store.codec import require_decoded
from bot.store.errors import translate_errors
from bot.store.keys import Keys, check_id

# KEYS: lock, fence. ARGV: run_id. Returns the token, or false when another run holds it.
_LOCK_ACQUIRE = """
local holder = redis.call('HMGET', KEYS[1], 'run', 'token')
if holder[1] then
  if holder[1] == ARGV[1] then return tonumber(holder[2]) end
  return false
end
local token = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'run', ARGV[1], 'token', token)
return token
"""

# KEYS: lock. ARGV: run_id.
_LOCK_RELEASE = """
if redis.call('HGET', KEYS[1], 'run') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: owner, ttl_ms. Taking a lease we already hold just extends it.
_LEASE_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if current then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

# KEYS: lease. ARGV: owner, ttl_ms.
_LEASE_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: owner.
_LEASE_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


def _ttl_ms(ttl_s: float) -> int:
    if ttl_s <= 0:
        raise ValueError(f"lease TTL must be positive, got {ttl_s}")
    return max(1, round(ttl_s * 1000))


class ClusterLock:
    """One mutating run per Kafka cluster, with a fencing token. Never expires on its own."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "kco") -> None:
        require_decoded(client)
        self._client = client
        self._keys = Keys(prefix)
        self._acquire = client.register_script(_LOCK_ACQUIRE)
        self._release = client.register_script(_LOCK_RELEASE)

    async def acquire(self, cluster: str, run_id: str) -> int | None:
        """The fencing token for ``run_id``, or None if another run holds the cluster.

        Re-acquiring by the holder returns its existing token (a worker resuming after a crash
        calls this again); a new acquisition always gets a larger token than any before it.
        """
        check_id("run_id", run_id)
        k = self._keys
        with translate_errors(self._client):
            token = await self._acquire(keys=[k.lock(cluster), k.fence(cluster)], args=[run_id])
        return None if token is None else int(token)

    async def holder(self, cluster: str) -> str | None:
        """The run id holding the cluster, if any (to name it in a refusal)."""
        with translate_errors(self._client):
            run_id = await self._client.hget(self._keys.lock(cluster), "run")
        return None if run_id is None else str(run_id)

    async def release(self, cluster: str, run_id: str) -> bool:
        """Release if ``run_id`` holds the lock; False (and nothing changes) otherwise."""
        with translate_errors(self._client):
            released = await self._release(keys=[self._keys.lock(cluster)], args=[run_id])
        return bool(int(released))

    async def check_token(self, cluster: str, token: int) -> bool:
        """Whether ``token`` is the token of the current holder (call before every mutation)."""
        with translate_errors(self._client):
            current = await self._client.hget(self._keys.lock(cluster), "token")
        return current is not None and int(current) == int(token)


class RunLease:
    """Which replica drives a run. Expires unless renewed, so a dead replica's runs are adopted."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "kco") -> None:
        require_decoded(client)
        self._client = client
        self._keys = Keys(prefix)
        self._acquire = client.register_script(_LEASE_ACQUIRE)
        self._renew = client.register_script(_LEASE_RENEW)
        self._release = client.register_script(_LEASE_RELEASE)

    async def try_acquire(self, run_id: str, owner: str, ttl_s: float) -> bool:
        """Take the lease if free (or already ours, which extends it)."""
        check_id("owner", owner)
        with translate_errors(self._client):
            ok = await self._acquire(keys=[self._keys.lease(run_id)], args=[owner, _ttl_ms(ttl_s)])
        return bool(int(ok))

    async def renew(self, run_id: str, owner: str, ttl_s: float) -> bool:
        """Extend our lease; False means it expired or another owner has it: stop driving."""
        with translate_errors(self._client):
            ok = await self._renew(keys=[self._keys.lease(run_id)], args=[owner, _ttl_ms(ttl_s)])
        return bool(int(ok))

    async def release(self, run_id: str, owner: str) -> None:
        """Drop our lease (no-op if it is not ours), so another replica need not wait for expiry."""
        with translate_errors(self._client):
            await self._release(keys=[self._keys.lease(run_id)], args=[owner])

    async def owner(self, run_id: str) -> str | None:
        with translate_errors(self._client):
            value = await self._client.get(self._keys.lease(run_id))
        return None if value is None else str(value)
