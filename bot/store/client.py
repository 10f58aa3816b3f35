"""Creating the Redis client the store expects."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from bot.store.errors import redact_url, translate_errors

# Short timeouts: a click must be answered within Slack's 3 s ack window, so "Redis is down"
# has to surface quickly rather than hang. Nothing in the store blocks server-side, and every
# command is O(small), so 2 s for a reply is generous.
CONNECT_TIMEOUT_S = 1.0
SOCKET_TIMEOUT_S = 2.0
# PING an idle pooled connection before reuse, so a connection cut by a restart or a NAT/LB
# idle timeout is replaced instead of failing the first command after a quiet period.
HEALTH_CHECK_INTERVAL_S = 10
# One quick retry bridges a dropped pooled connection (the common case after a Redis restart).
# More would only delay StoreUnavailable: worst case for a hung server is
# (RETRIES + 1) * SOCKET_TIMEOUT_S, for a refused connection it is immediate.
# Retried writes are safe for runs: create/save carry an operation token, so a write whose reply
# was lost is recognised as ours instead of being reported as a conflict.
RETRIES = 1


async def connect(
    url: str,
    *,
    check: bool = True,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    socket_timeout_s: float = SOCKET_TIMEOUT_S,
    retries: int = RETRIES,
) -> aioredis.Redis:
    """A ``redis.asyncio`` client for ``url`` configured for the store (``decode_responses``).

    With ``check`` (the default) the server is PINGed once, so a wrong URL or a dead server
    surfaces at start-up as :class:`StoreUnavailable` rather than on the first click.
    """
    try:
        client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=connect_timeout_s,
            socket_timeout=socket_timeout_s,
            socket_keepalive=True,
            health_check_interval=HEALTH_CHECK_INTERVAL_S,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries),
            client_name="kafka-chatops",
        )
    except ValueError as exc:
        # redis-py's message does not echo the URL today, but do not rely on that.
        raise ValueError(f"invalid Redis URL {redact_url(url)}: {type(exc).__name__}") from None
    if check:
        try:
            with translate_errors(client):
                await client.ping()
        except BaseException:
            await client.aclose()
            raise
    return client
