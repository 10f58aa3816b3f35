"""Waiting for replicas after a run write (``WAIT``), so the bot does not act on a write a failover
could still lose.

Redis replicates asynchronously: the master acknowledges a write before any replica has it, and a
failover in that gap promotes a replica without it. ``WAIT n ms`` after the write, on the same
connection, returns how many replicas have it. The bot sends the write and the ``WAIT`` in one
pipeline (one connection, one round trip plus the wait) and, when fewer replicas confirm than
asked, raises :class:`NotReplicated` (a :class:`StoreUnavailable`): the caller treats it like a Redis
outage and does not go on to restart a broker on the strength of that write. The write itself stays
on the master; the caller's next read shows whether it survived.

A coordinated failover shows why this matters: the Sentinels promote the replica at once, but tell
the old master it is a replica only when they next look at it (up to seconds later). Meanwhile it still
takes writes on the connections the bot already holds, and throws them away when it resyncs. Without
``WAIT`` those writes are acknowledged and lost; with it they are refused (nothing replicates them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from bot.store.errors import NotReplicated, describe_address


@dataclass(frozen=True)
class ReplicaWait:
    """``replicas`` replicas must confirm each run write within ``timeout_ms`` milliseconds."""

    replicas: int
    timeout_ms: int

    def __post_init__(self) -> None:
        if self.replicas < 1 or self.timeout_ms < 1:
            raise ValueError("a replica wait needs at least 1 replica and a timeout of at least 1 ms")


async def run_script(client: aioredis.Redis, script: AsyncScript, keys: list[Any], args: list[Any],
                     wait: ReplicaWait | None) -> Any:
    """``script(keys, args)``, followed by ``WAIT`` on the same connection when ``wait`` is set."""
    if wait is None:
        return await script(keys=keys, args=args)
    async with client.pipeline(transaction=False) as pipe:
        await script(keys=keys, args=args, client=pipe)
        pipe.wait(wait.replicas, wait.timeout_ms)
        result, confirmed = await pipe.execute()
    if int(confirmed) < wait.replicas:
        if getattr(client.connection_pool, "service_name", None) is not None:
            # Through Sentinel, "no replica has it" is also what a master that was just failed over
            # (and not yet told it is a replica) answers: drop the pooled connections, so the next
            # command asks the Sentinels where the master is instead of writing to the old one.
            await client.connection_pool.disconnect()
        raise NotReplicated(describe_address(client), wait.replicas, int(confirmed), wait.timeout_ms)
    return result
