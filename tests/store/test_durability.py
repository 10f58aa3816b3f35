"""Crash and outage behaviour: data survives a restart, a dead Redis gives a clear StoreUnavailable."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from bot.store import ClusterLock, RunStore, Signals, StoreUnavailable, connect, redact_url
from bot.store.keys import Keys

if TYPE_CHECKING:
    from tests.fixtures.redis_server import RedisServer

pytest_plugins = ["tests.fixtures.redis_server"]


async def test_data_survives_kill_and_restart(isolated_redis_server: RedisServer) -> None:
    """Runs, audit, lock and pending signals written before a SIGKILL are all there after restart (AOF)."""
    client = await connect(isolated_redis_server.url)
    try:
        store, lock, signals = RunStore(client), ClusterLock(client), Signals(client)
        await store.create_run("r-1", "c1", {"state": "planned"}, audit={"to": "planned"})
        await store.save_run("r-1", {"state": "running"}, expected_version=1, audit={"to": "running"})
        token = await lock.acquire("c1", "r-1")
        await signals.publish("r-1", {"kind": "approve"})

        isolated_redis_server.kill()
        isolated_redis_server.restart()

        assert await store.load_run("r-1") == ({"state": "running"}, 2)
        assert await store.audit_entries("r-1") == [{"to": "planned"}, {"to": "running"}]
        assert await store.active_runs("c1") == ["r-1"]
        assert await lock.holder("c1") == "r-1"
        assert token is not None and await lock.check_token("c1", token)
        assert await signals.take("r-1") == [{"kind": "approve"}]
        # The fencing counter survived too: the next acquisition still gets a larger token.
        await lock.release("c1", "r-1")
        assert (await lock.acquire("c1", "r-2") or 0) > token
    finally:
        await client.aclose()


async def test_killed_server_gives_clear_error_then_reconnects(isolated_redis_server: RedisServer) -> None:
    """With Redis down every operation raises StoreUnavailable naming host:port; after restart they work again."""
    client = await connect(isolated_redis_server.url)
    try:
        store = RunStore(client)
        await store.create_run("r-1", "c1", {"state": "planned"})
        isolated_redis_server.kill()

        address = f"127.0.0.1:{isolated_redis_server.port}"
        with pytest.raises(StoreUnavailable) as err:
            await store.load_run("r-1")
        assert str(err.value).startswith(
            f"Redis at {address} is unreachable: new commands are refused until it is back"
        )
        assert err.value.address == address
        with pytest.raises(StoreUnavailable):
            await store.save_run("r-1", {"state": "running"}, expected_version=1)
        with pytest.raises(StoreUnavailable):
            await ClusterLock(client).acquire("c1", "r-1")

        isolated_redis_server.restart()
        # Same client object: the pool drops dead connections and dials again (scripts are
        # re-loaded into the fresh server's script cache on NOSCRIPT).
        assert await store.save_run("r-1", {"state": "running"}, expected_version=1) == 2
        assert await store.load_run("r-1") == ({"state": "running"}, 2)
    finally:
        await client.aclose()


async def test_hung_server_times_out_as_unavailable(isolated_redis_server: RedisServer) -> None:
    """A Redis that accepts but never answers (SIGSTOP) becomes StoreUnavailable within the socket timeout."""
    import time

    client = await connect(isolated_redis_server.url, socket_timeout_s=0.3, retries=0)
    try:
        store = RunStore(client)
        await store.create_run("r-1", "c1", {"state": "planned"})
        isolated_redis_server.pause()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="is unreachable"):
            await store.load_run("r-1")
        assert time.monotonic() - started < 2.0
        isolated_redis_server.resume()
        assert await store.load_run("r-1") == ({"state": "planned"}, 1)
    finally:
        isolated_redis_server.resume()
        await client.aclose()


async def test_connect_to_dead_server_raises_without_leaking_password() -> None:
    """connect() to a closed port raises StoreUnavailable whose message holds no password."""
    from tests.fixtures.redis_server import free_port

    port = free_port()
    with pytest.raises(StoreUnavailable) as err:
        await connect(f"redis://admin:s3cret-pw@127.0.0.1:{port}/0")
    message = str(err.value)
    assert f"127.0.0.1:{port}" in message
    assert "s3cret-pw" not in message and "s3cret-pw" not in repr(err.value)


async def test_invalid_url_error_is_redacted() -> None:
    """A malformed URL is reported with its password masked."""
    with pytest.raises(ValueError) as err:
        await connect("rediss://user:s3cret-pw@host:notaport/0")
    assert "s3cret-pw" not in str(err.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://user:pw@host:6379/0", "redis://user:***@host:6379/0"),
        ("redis://:pw@host:6379", "redis://:***@host:6379"),
        ("rediss://pw@host", "rediss://***@host"),
        ("redis://host:6379/1", "redis://host:6379/1"),
        ("redis://host/0?password=pw&db=2", "redis://host/0?password=***&db=2"),
        ("unix:///run/redis.sock?password=pw", "unix:///run/redis.sock?password=***"),
        ("redis://u:p%40ss@host", "redis://u:***@host"),
    ],
)
def test_redact_url_masks_passwords(url: str, expected: str) -> None:
    """redact_url hides passwords in userinfo and query strings and keeps everything else."""
    assert redact_url(url) == expected


def test_keys_cannot_collide_across_kinds() -> None:
    """The variable part of every key is its last segment, so no two (kind, id) pairs share a key."""
    keys = Keys("kco")
    generated = {
        keys.lock("a:fence"), keys.fence("a"), keys.lock("a"), keys.run("x"), keys.audit("x"),
        keys.lease("x"), keys.signals("x"), keys.active_cluster("a"), keys.recent_cluster("a"),
        keys.active_all, keys.recent_all, keys.run_seq,
    }  # fmt: skip
    assert len(generated) == 12
    assert keys.lock("a:fence") != keys.fence("a")
