"""Store exceptions, and the one place where redis-py errors become them.

Callers above ``bot/`` (handlers, the engine) must not import ``redis``, so no redis-py exception
escapes the store: unreachable or timing-out Redis becomes :class:`StoreUnavailable`, anything else
Redis refuses becomes :class:`StoreError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis import exceptions as redis_errors

# Query parameters redis-py (and proxies in front of it) accept that may carry a secret.
_SECRET_QUERY_KEYS = frozenset({"password", "pass", "passwd", "token", "auth", "secret", "ssl_password"})
_MASK = "***"


class StoreError(Exception):
    """Redis answered, but not with what the store needed (refused command, corrupt record)."""


class StoreUnavailable(StoreError):
    """Redis cannot be reached (refused, reset, timed out, still loading its data)."""

    def __init__(self, address: str, cause: BaseException | None = None) -> None:
        self.address = address
        detail = f" ({type(cause).__name__})" if cause is not None else ""
        super().__init__(
            f"Redis at {address} is unreachable: new commands are refused until it is back{detail}"
        )


class SentinelUnavailable(StoreUnavailable):
    """No Sentinel of a ``redis+sentinel://`` URL answered, so the master cannot be found."""

    def __init__(self, sentinels: str, causes: list[str]) -> None:
        self.address = sentinels
        StoreError.__init__(self, f"no Sentinel answers at {sentinels} ({'; '.join(causes) or 'no reply'})")


class UnknownSentinelMaster(StoreError):
    """The Sentinels answer, but none of them watches a master by the URL's name (or it is down)."""

    def __init__(self, master: str, sentinels: str, known: list[str]) -> None:
        self.master = master
        known_text = ", ".join(repr(k) for k in sorted(known)) or "none"
        super().__init__(f"the Sentinels at {sentinels} know no usable master named {master!r} "
                         f"(the masters they watch: {known_text})")


class NotReplicated(StoreUnavailable):
    """A write the master took but fewer replicas than asked confirmed in time (``WAIT``): a failover
    now could lose it, so the caller must not act on it yet (it reloads and retries later)."""

    def __init__(self, address: str, wanted: int, confirmed: int, timeout_ms: int) -> None:
        self.address = address
        self.wanted = wanted
        self.confirmed = confirmed
        StoreError.__init__(
            self, f"Redis at {address} could not confirm the write on a replica (only {confirmed} of the {wanted} "
                  f"replica(s) asked for within {timeout_ms} ms, as during a failover): it stands on the master "
                  "but a failover could still lose it; look at the run again before repeating")


class VersionConflict(StoreError):
    """A compare-and-set lost: the stored version is not the one the caller read."""

    def __init__(self, run_id: str, expected: int | None, actual: int | None) -> None:
        self.run_id = run_id
        self.expected = expected
        self.actual = actual
        if actual is None:
            msg = f"run {run_id} does not exist (expected version {expected})"
        else:
            msg = f"run {run_id} is at version {actual}, not {expected}: someone else wrote it first"
        super().__init__(msg)


class RunExists(VersionConflict):
    """``create_run`` for a run id that is already stored."""

    def __init__(self, run_id: str, actual: int | None) -> None:
        super().__init__(run_id, None, actual)
        self.args = (f"run {run_id} already exists",)


class ClusterHeld(StoreError):
    """``create_run_holding_lock`` for a cluster another run holds."""

    def __init__(self, cluster: str, holder: str) -> None:
        self.cluster = cluster
        self.holder = holder
        super().__init__(f"cluster {cluster} is held by run {holder}")


def redact_url(url: str) -> str:
    """Return ``url`` with any password (userinfo or query parameter) replaced by ``***``.

    Safe to put in logs, exceptions and chat messages. Unparseable input is not echoed back,
    since it could be a secret pasted in the wrong place.
    """
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user, sep, _password = userinfo.partition(":")
            netloc = f"{user}:{_MASK}@{hostport}" if sep else f"{_MASK}@{hostport}"
            # ``redis://secret@host`` is a password-only URL to redis-py, so a bare userinfo
            # is masked too.
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            query = urlencode(
                [(k, _MASK if k.lower() in _SECRET_QUERY_KEYS else v) for k, v in pairs], safe="*"
            )
        redacted = urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
        if not netloc and url.startswith(f"{parts.scheme}://"):
            # urlunsplit drops the empty authority of ``unix:///path``; put it back.
            redacted = f"{parts.scheme}://" + redacted[len(parts.scheme) + 1 :]
        return redacted
    except ValueError:
        return "<unparseable redis url>"


def describe_address(client: Any) -> str:
    """``host:port`` (or the unix socket path) of a redis-py client, without credentials."""
    pool: Any = getattr(client, "connection_pool", None)
    service = getattr(pool, "service_name", None)
    if service is not None:  # a Sentinel-managed pool: the master moves, so name the group
        return f"master {service!r} via Sentinel {sentinel_hosts(pool.sentinel_manager)}"
    try:
        kwargs = client.connection_pool.connection_kwargs
    except AttributeError:
        return "<unknown address>"
    if kwargs.get("path"):
        return str(kwargs["path"])
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


def sentinel_hosts(manager: Any) -> str:
    """``h1:26379,h2:26379`` of a redis-py Sentinel manager."""
    parts = []
    for sentinel in getattr(manager, "sentinels", ()):
        kwargs = sentinel.connection_pool.connection_kwargs
        parts.append(f"{kwargs.get('host')}:{kwargs.get('port')}")
    return ",".join(parts) or "<no sentinels>"


@contextmanager
def translate_errors(client: Any) -> Iterator[None]:
    """Turn redis-py exceptions raised inside the block into store exceptions.

    A plain (sync) context manager works around ``await`` expressions: exceptions from the
    awaited calls propagate through it like any other.
    """
    try:
        yield
    except (redis_errors.ConnectionError, redis_errors.TimeoutError, ConnectionError, TimeoutError) as exc:
        # redis-py's BusyLoadingError (AOF replay after a restart) is a ConnectionError too:
        # for a caller "still loading" and "down" mean the same thing.
        raise StoreUnavailable(describe_address(client), exc) from exc
    except redis_errors.RedisError as exc:
        raise StoreError(f"Redis at {describe_address(client)} refused a command: {exc}") from exc
