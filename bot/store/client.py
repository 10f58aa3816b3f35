"""Creating the Redis client the store expects."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from bot.store.errors import redact_url, translate_errors

# Short timeouts: a chat bot must answer "Redis is down" within Slack's 3 s ack window rather
# than hang. Nothing in the store uses blocking commands, so 5 s for a reply is generous.
CONNECT_TIMEOUT_S = 2.0
SOCKET_TIMEOUT_S = 5.0
# PING an idle pooled connection before reuse, so a connection cut by a restart or a NAT/LB
# idle timeout is replaced instead of failing the first command after a quiet period.
HEALTH_CHECK_INTERVAL_S = 10
# A few quick retries bridge a failover or a dropped connection; more would only delay the
# StoreUnavailable the caller needs to see. Retried writes are safe: save/create carry an
# operation token, so a write whose reply was lost is recognised, not reported as a conflict.
RETRIES = 3


async def connect(url: str, *, check: bool = True) -> aioredis.Redis:
    """A ``redis.asyncio`` client for ``url`` configured for the store (``decode_responses``).

    With ``check`` (the default) the server is PINGed once, so a wrong URL or a dead server
    surfaces at start-up as :class:`StoreUnavailable` rather than on the first click.
    """
    try:
        client = aioredis.Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT_S,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_keepalive=True,
            health_check_interval=HEALTH_CHECK_INTERVAL_S,
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), RETRIES),
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
