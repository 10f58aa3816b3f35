"""Creating the Redis client the store expects."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff

from bot.store.errors import (
    SentinelUnavailable,
    UnknownSentinelMaster,
    redact_url,
    sentinel_hosts,
    translate_errors,
)
from bot.store.sentinel_url import SentinelTarget, is_sentinel_url, parse_sentinel_url

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


class SentinelRedis(aioredis.Redis):
    """The master's client from :meth:`Sentinel.master_for`, which also closes the Sentinel
    connections it asks for the master's address when it is closed."""

    sentinel_manager: Sentinel

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            await self.sentinel_manager.aclose()


async def connect(
    url: str,
    *,
    check: bool = True,
    password: str | None = None,
    sentinel_password: str | None = None,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    socket_timeout_s: float = SOCKET_TIMEOUT_S,
    retries: int = RETRIES,
) -> aioredis.Redis:
    """A ``redis.asyncio`` client for ``url`` configured for the store (``decode_responses``).

    ``url`` is a ``redis://``, ``rediss://`` or ``unix://`` URL of one server, or a
    ``redis+sentinel://`` / ``rediss+sentinel://`` URL (:mod:`bot.store.sentinel_url`): then every
    new connection asks the Sentinels where the master is, and a connection to a demoted master is
    dropped (redis-py turns its READONLY reply into a connection error), so the one retry below
    lands on the new master. ``password`` (from ``REDIS_PASSWORD_FILE``) replaces the URL's;
    ``sentinel_password`` is the Sentinels' own, when they require one.

    With ``check`` (the default) the server is PINGed once, so a wrong URL or a dead server
    surfaces at start-up as :class:`StoreUnavailable` rather than on the first click; with
    Sentinel, every Sentinel is asked first, so "none answers" and "none knows this master" are
    told apart (:class:`SentinelUnavailable`, :class:`UnknownSentinelMaster`).
    """
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_connect_timeout": connect_timeout_s,
        "socket_timeout": socket_timeout_s,
        "socket_keepalive": True,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries),
        "client_name": "kafka-chatops",
    }
    if password is not None:
        options["password"] = password
    try:
        if is_sentinel_url(url):
            target = parse_sentinel_url(url)
            client: aioredis.Redis = _sentinel_client(target, options, sentinel_password)
        else:
            client = aioredis.Redis.from_url(url, **options)
    except ValueError as exc:
        # redis-py's message does not echo the URL today, but do not rely on that.
        raise ValueError(f"invalid Redis URL {redact_url(url)}: {type(exc).__name__}") from None
    if check:
        try:
            if isinstance(client, SentinelRedis):
                await _check_sentinels(client, target)
            with translate_errors(client):
                await client.ping()
        except BaseException:
            await client.aclose()
            raise
    return client


def _sentinel_client(target: SentinelTarget, options: dict[str, Any], sentinel_password: str | None) -> SentinelRedis:
    tls: dict[str, Any] = {"ssl": True, **target.tls_options} if target.tls else {}
    sentinel_options: dict[str, Any] = {
        "socket_connect_timeout": options["socket_connect_timeout"],
        "socket_timeout": options["socket_timeout"],
        "decode_responses": True,
        **tls,
    }
    if sentinel_password is not None:
        sentinel_options["password"] = sentinel_password
    master_options = dict(options, db=target.db, **tls)
    if target.username is not None:
        master_options["username"] = target.username
    if "password" not in master_options and target.password is not None:
        master_options["password"] = target.password
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_options)
    client = sentinel.master_for(target.master, redis_class=SentinelRedis, **master_options)
    client.sentinel_manager = sentinel
    return client  # type: ignore[no-any-return]


async def _check_sentinels(client: SentinelRedis, target: SentinelTarget) -> None:
    """Ask every Sentinel which masters it watches: none answering and none knowing the master are
    different mistakes (a wrong host or port, a wrong master name) and are reported as such."""
    hosts = sentinel_hosts(client.sentinel_manager)
    causes: list[str] = []
    known: set[str] = set()
    usable = False
    for sentinel in client.sentinel_manager.sentinels:
        address = f"{sentinel.connection_pool.connection_kwargs.get('host')}:" \
                  f"{sentinel.connection_pool.connection_kwargs.get('port')}"
        try:
            masters: dict[str, Any] = await sentinel.sentinel_masters()  # type: ignore[assignment]
        except Exception as exc:  # each Sentinel's reason is kept; none is fatal on its own
            causes.append(f"{address}: {type(exc).__name__}")
            continue
        known.update(masters)
        state = masters.get(target.master)
        usable = usable or bool(state and client.sentinel_manager.check_master_state(state, target.master))
    if not known and causes and len(causes) == len(client.sentinel_manager.sentinels):
        raise SentinelUnavailable(hosts, causes)
    if not usable:
        raise UnknownSentinelMaster(target.master, hosts, sorted(known))
