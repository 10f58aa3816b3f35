"""Redis that survives a node: the store through a ``redis+sentinel://`` URL while the master fails over.

Real processes (tests/store/sentinel_cluster.py): a master, a replica, three Sentinels. Two writers
share one run as the bot's would: a worker advancing the step and an approver adding approvals,
each a compare-and-set save with an audit entry, retrying on conflicts and outages as the bot does.
The store waits for one replica after each write (``WAIT``), so a write it acknowledged is on the
replica a failover promotes. After the failover every acknowledged write must be on the new master,
the audit must have every version once (no transition lost, none written twice), and the client
must have followed the master without being rebuilt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.store import ClusterLock, RunStore, SentinelUnavailable, StoreUnavailable, VersionConflict, connect
from bot.store.replication import ReplicaWait
from tests.fixtures.waiting import wait_until
from tests.store.sentinel_cluster import SentinelCluster

pytestmark = pytest.mark.timeout(120)

RUN = "r-failover"
WAIT = ReplicaWait(replicas=1, timeout_ms=500)
WRITES_AFTER_FAILOVER = 20


@dataclass
class Acknowledged:
    """What the store said it wrote: (kind, value) -> the version that write made."""

    writes: dict[tuple[str, int], int] = field(default_factory=dict)
    outages: int = 0

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.writes if k == kind)


async def _write_loop(store: RunStore, kind: str, stop: asyncio.Event, acked: Acknowledged) -> None:
    """Load, change, compare-and-set, as the worker (``step``) or a click (``approval``) does."""
    while not stop.is_set():
        try:
            loaded = await store.load_run(RUN)
            assert loaded is not None
            doc, version = loaded
            if kind == "step":
                value = doc["step"] + 1
                new_doc = {**doc, "step": value}
            else:
                value = len(doc["approvals"]) + 1
                new_doc = {**doc, "approvals": [*doc["approvals"], value]}
            new_version = await store.save_run(RUN, new_doc, expected_version=version,
                                               audit={"kind": kind, "value": value})
            acked.writes[(kind, value)] = new_version
        except VersionConflict:
            continue  # the other writer won this version: reload and decide again
        except StoreUnavailable:
            acked.outages += 1  # master gone, or a write not yet on a replica: reload after a pause
            await asyncio.sleep(0.05)
        await asyncio.sleep(0)


async def _writes_during(store: RunStore, fail_over: Any, acked: Acknowledged) -> None:
    stop = asyncio.Event()
    writers = [asyncio.create_task(_write_loop(store, kind, stop, acked)) for kind in ("step", "approval")]
    try:
        await asyncio.sleep(0.5)
        assert acked.writes, "no write went through before the failover"
        await asyncio.to_thread(fail_over)
        before = len(acked.writes)
        await _until(lambda: len(acked.writes) >= before + WRITES_AFTER_FAILOVER, 30,
                     "writes to go through again after the failover")
    finally:
        stop.set()
        await asyncio.gather(*writers)


async def _until(condition: Any, timeout: float, what: str) -> None:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def _check_nothing_lost(cluster: SentinelCluster, acked: Acknowledged) -> None:
    """Read the new master directly (not through the bot's client) and compare with what was acknowledged."""

    def settled_master() -> bool:  # a failover still in progress names a node not yet master
        with cluster.node_on(cluster.master_port()).client() as client:
            return client.info("replication")["role"] == "master"
    wait_until(settled_master, timeout=20, interval=0.1, message="the node the Sentinels name to be master")
    master = cluster.node_on(cluster.master_port())
    with master.client() as direct:
        assert direct.info("replication")["role"] == "master"
        version = int(direct.hget(f"kco:run:{RUN}", "version") or 0)
        audit = [fields for _, fields in direct.xrange(f"kco:audit:{RUN}")]
        clients = direct.client_list()
    versions = [int(fields["version"]) for fields in audit]
    assert versions == list(range(1, version + 1)), "a version is missing from the audit, or written twice"
    by_version = {int(f["version"]): json.loads(f["entry"]) for f in audit}
    lost = [(kind, value, v) for (kind, value), v in acked.writes.items()
            if v > version or by_version[v] != {"kind": kind, "value": value}]
    assert lost == [], f"acknowledged writes missing on the new master: {lost[:5]}"
    assert any(c.get("name") == "kafka-chatops" for c in clients), "the bot's client is not on the new master"


async def _create(store: RunStore) -> None:
    await store.create_run(RUN, "c1", {"step": 0, "approvals": []}, audit={"kind": "created", "value": 0})


async def test_a_coordinated_failover_loses_no_acknowledged_write(sentinel_cluster: SentinelCluster) -> None:
    """SENTINEL FAILOVER while a worker and an approver write the same run: every acknowledged write
    is on the promoted replica, every version is audited once, and the same client follows the master."""
    client = await connect(sentinel_cluster.url())
    try:
        store, lock = RunStore(client, replica_wait=WAIT), ClusterLock(client)
        await _create(store)
        token = await lock.acquire("c1", RUN)
        acked = Acknowledged()

        await _writes_during(store, sentinel_cluster.failover, acked)

        _check_nothing_lost(sentinel_cluster, acked)
        assert acked.count("step") > 0 and acked.count("approval") > 0
        # The lock and its fencing counter moved with the data: the holder's token still checks,
        # and the next holder gets a larger one.
        assert token is not None and await lock.check_token("c1", token)
        assert await lock.release("c1", RUN)
        assert (await lock.acquire("c1", "r-next") or 0) > token
    finally:
        await client.aclose()


async def test_a_killed_master_loses_no_acknowledged_write(sentinel_cluster: SentinelCluster) -> None:
    """SIGKILL the master mid-writes: the Sentinels promote the replica after down-after-milliseconds,
    the killed node comes back as a replica of the new master, and no acknowledged write is lost.
    While the new master has no replica yet, writes are refused as not replicated (not acknowledged)."""
    client = await connect(sentinel_cluster.url())
    try:
        store = RunStore(client, replica_wait=WAIT)
        await _create(store)
        acked = Acknowledged()
        old = sentinel_cluster.master_port()
        promoted: list[int] = []

        def kill_master() -> None:
            node = sentinel_cluster.node_on(old)
            node.kill()
            promoted.append(sentinel_cluster.wait_for_new_master(old))
            node.start()  # its unreplicated tail (if any) is dropped when it resyncs as a replica

        await _writes_during(store, kill_master, acked)

        assert promoted and promoted[0] != old, "no replica was promoted in place of the killed master"
        # On a loaded machine the Sentinels may fail over again later (even back to the restarted
        # node, a replica by then): what counts is that whichever node is master now lost nothing.
        _check_nothing_lost(sentinel_cluster, acked)
        assert acked.outages > 0, "the kill was not noticed: the test did not fail anything over"
    finally:
        await client.aclose()


async def test_without_a_replica_a_write_is_not_acknowledged(sentinel_cluster: SentinelCluster) -> None:
    """With the replica stopped, a save is refused as NotReplicated (the bot must not act on it),
    and the same save is acknowledged once the replica is back."""
    from bot.store import NotReplicated

    client = await connect(sentinel_cluster.url())
    try:
        store = RunStore(client, replica_wait=ReplicaWait(replicas=1, timeout_ms=200))
        await _create(store)
        replica = sentinel_cluster.node_on(
            next(n.port for n in sentinel_cluster.nodes if n.port != sentinel_cluster.master_port()))
        replica.pause()
        try:
            with pytest.raises(NotReplicated) as refused:
                await store.save_run(RUN, {"step": 1, "approvals": []}, expected_version=1)
            assert "could not confirm the write on a replica (only 0 of the 1 replica(s)" in str(refused.value)
            assert f"master 'mymaster' via Sentinel 127.0.0.1:{sentinel_cluster.sentinels[0].port}" \
                   in str(refused.value)
        finally:
            replica.resume()
        # The refused write is on the master (WAIT does not undo it): the caller's reload sees it.
        loaded = await store.load_run(RUN)
        assert loaded is not None and loaded[1] == 2
        assert await store.save_run(RUN, {"step": 2, "approvals": []}, expected_version=2) == 3
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()


async def test_tls_to_the_sentinels_and_the_master_follows_a_failover(tmp_path: Path) -> None:
    """rediss+sentinel:// against Sentinels and Redis servers that speak only TLS (``port 0``): the
    client asks the Sentinels over TLS, writes to the master over TLS, and follows a failover; the
    same URL in clear (redis+sentinel://) finds no Sentinel that answers."""
    cluster = SentinelCluster(tmp_path / "tls-sentinel", tls=True)
    try:
        with pytest.raises(SentinelUnavailable):
            await connect(cluster.url().replace("rediss+sentinel://", "redis+sentinel://").split("?")[0])
        client = await connect(cluster.url())
        try:
            store = RunStore(client, replica_wait=WAIT)
            await _create(store)
            old = await asyncio.to_thread(cluster.failover)
            version = await _save_until_it_stands(store)
            assert version == 2 and cluster.master_port() != old
            with cluster.node_on(cluster.master_port()).client() as direct:
                assert direct.hget(f"kco:run:{RUN}", "version") == "2"
        finally:
            await client.aclose()
    finally:
        cluster.cleanup()


async def _save_until_it_stands(store: RunStore) -> int:
    """One save, retried the way the bot's worker does while the master changes."""
    for _ in range(200):
        try:
            loaded = await store.load_run(RUN)
            assert loaded is not None
            if loaded[1] >= 2:
                return loaded[1]
            return await store.save_run(RUN, {**loaded[0], "step": 1}, expected_version=loaded[1])
        except (StoreUnavailable, VersionConflict):
            await asyncio.sleep(0.1)
    raise AssertionError("the save never went through after the failover")
