"""One contract for the run-store ports (RunRepository, ClusterLocks, RunLease), held by both the
in-memory fakes (tests/fakes/store.py) and the Redis adapters on a real redis-server: a fake that
drifts from the adapters fails here, not in a test that trusted it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bot import store
from bot.store.repository import RedisClusterLocks, RedisRunRepository
from handlers.ports import ClusterHeld, ClusterLocks, RunExists, RunLease, RunRepository, VersionConflict
from runbooks.catalogue.restart import RestartBrokerArgs
from runbooks.engine.models import AuditEntry, Run, RunState
from tests.fakes import MemoryClusterLocks, MemoryRunLease, MemoryRunRepository, MemoryRunStore
from tests.runbooks.builders import make_run, spec

pytestmark = pytest.mark.timeout(20)
CLUSTER = "prod-east"


@dataclass
class Ports:
    runs: RunRepository
    locks: ClusterLocks
    leases: RunLease


@pytest.fixture(params=["memory", "redis"])
async def ports(request: pytest.FixtureRequest) -> AsyncIterator[Ports]:
    if request.param == "memory":
        state = MemoryRunStore()
        yield Ports(MemoryRunRepository(state), MemoryClusterLocks(state), MemoryRunLease(state))
        return
    client = await store.connect(request.getfixturevalue("redis_url"))
    try:
        yield Ports(RedisRunRepository(store.RunStore(client), events_channel=None),
                    RedisClusterLocks(store.ClusterLock(client)), store.RunLease(client))
    finally:
        await client.aclose()


def run(run_id: str, cluster: str = CLUSTER) -> Run:
    """A run of the restart runbook's own step kind: both stores read runs back through the catalogue."""
    specs = [spec(f"restart-{b}", args=RestartBrokerArgs(broker=b, pod=f"{cluster}-pool-{b}")) for b in range(3)]
    return make_run(run_id=run_id, specs=specs).model_copy(update={"cluster": cluster})


def entry(r: Run, action: str, to: RunState = RunState.PLANNED) -> AuditEntry:
    return AuditEntry(at=r.created_at, run_id=r.id, actor="U1", action=action, from_state=r.state, to_state=to)


async def test_a_new_run_takes_its_clusters_lock_and_carries_the_token(ports: Ports) -> None:
    first = run("r-00000001")
    token = await ports.runs.create(first, [entry(first, "created")])
    loaded = await ports.runs.load(first.id)
    assert loaded is not None
    stored, version = loaded
    assert version == 1 and stored.fencing_token == token
    assert stored.model_copy(update={"fencing_token": None}) == first
    assert await ports.locks.holder(CLUSTER) == first.id
    assert await ports.locks.check_token(CLUSTER, token)
    assert not await ports.locks.check_token(CLUSTER, token + 1)
    assert [e.action for e in await ports.runs.audit(first.id)] == ["created"]


async def test_a_held_cluster_refuses_another_run_and_writes_nothing(ports: Ports) -> None:
    await ports.runs.create(run("r-00000001"), [])
    with pytest.raises(ClusterHeld) as held:
        await ports.runs.create(run("r-00000002"), [])
    assert held.value.holder == "r-00000001"
    assert await ports.runs.load("r-00000002") is None
    assert await ports.runs.active() == ["r-00000001"]


async def test_a_taken_run_id_is_refused(ports: Ports) -> None:
    await ports.runs.create(run("r-00000001"), [])
    assert await ports.locks.release(CLUSTER, "r-00000001")
    with pytest.raises(RunExists):
        await ports.runs.create(run("r-00000001", cluster="other"), [])
    assert await ports.locks.holder("other") is None


async def test_save_is_compare_and_set(ports: Ports) -> None:
    first = run("r-00000001")
    await ports.runs.create(first, [])
    moved = first.model_copy(update={"state": RunState.RUNNING})
    assert await ports.runs.save(moved, expected_version=1, audit=[entry(first, "start", RunState.RUNNING)]) == 2
    with pytest.raises(VersionConflict):
        await ports.runs.save(first.model_copy(update={"state": RunState.ABORTED}), expected_version=1, audit=[])
    loaded = await ports.runs.load(first.id)
    assert loaded is not None and loaded[0].state is RunState.RUNNING and loaded[1] == 2
    with pytest.raises(VersionConflict):
        await ports.runs.save(run("r-0000000f"), expected_version=1, audit=[])


async def test_released_lock_gives_the_next_run_a_larger_token_and_fences_the_old_one(ports: Ports) -> None:
    old = await ports.runs.create(run("r-00000001"), [])
    assert not await ports.locks.release(CLUSTER, "r-00000009"), "only the holder releases"
    assert await ports.locks.holder(CLUSTER) == "r-00000001"
    assert await ports.locks.release(CLUSTER, "r-00000001")
    assert await ports.locks.holder(CLUSTER) is None
    new = await ports.runs.create(run("r-00000002"), [])
    assert new > old
    assert not await ports.locks.check_token(CLUSTER, old)
    assert await ports.locks.check_token(CLUSTER, new)


async def test_active_is_oldest_first_recent_newest_first_and_finished_runs_leave_active(ports: Ports) -> None:
    ids = ["r-00000001", "r-00000002", "r-00000003"]
    for i, run_id in enumerate(ids):
        await ports.runs.create(run(run_id, cluster=f"c{i}"), [])
    assert await ports.runs.active() == ids
    assert await ports.runs.active("c1") == ["r-00000002"]
    assert await ports.runs.recent(limit=2) == ["r-00000003", "r-00000002"]
    finished = run("r-00000002", cluster="c1").model_copy(update={"state": RunState.SUCCEEDED})
    await ports.runs.save(finished, expected_version=1, audit=[])
    assert await ports.runs.active() == ["r-00000001", "r-00000003"]
    assert await ports.runs.recent() == ["r-00000003", "r-00000002", "r-00000001"]
    assert await ports.runs.recent(limit=0) == []


async def test_the_audit_keeps_every_entry_in_order(ports: Ports) -> None:
    first = run("r-00000001")
    await ports.runs.create(first, [entry(first, "created")])
    await ports.runs.save(first, expected_version=1, audit=[entry(first, "a"), entry(first, "b")])
    await ports.runs.append_audit(first.id, [entry(first, "approve_refused")])
    assert [e.action for e in await ports.runs.audit(first.id)] == ["created", "a", "b", "approve_refused"]


async def test_supersede_passes_the_lock_with_a_new_token_and_finishes_the_old_run(ports: Ports) -> None:
    old = run("r-00000001")
    old_token = await ports.runs.create(old, [])
    stale = old.model_copy(update={"state": RunState.ABORTED})
    with pytest.raises(VersionConflict):
        await ports.runs.supersede(run("r-00000002"), [], old=stale, old_version=7, old_audit=[])
    with pytest.raises(ClusterHeld):
        await ports.runs.supersede(run("r-00000002"), [], old=run("r-00000009"), old_version=1, old_audit=[])
    assert await ports.runs.load("r-00000002") is None
    token = await ports.runs.supersede(run("r-00000002"), [entry(old, "created")], old=stale, old_version=1,
                                       old_audit=[entry(old, "abort", RunState.ABORTED)])
    assert token > old_token
    assert await ports.locks.holder(CLUSTER) == "r-00000002"
    assert not await ports.locks.check_token(CLUSTER, old_token)
    loaded_old = await ports.runs.load(old.id)
    assert loaded_old is not None and loaded_old[1] == 2 and loaded_old[0].state is RunState.ABORTED
    loaded_new = await ports.runs.load("r-00000002")
    assert loaded_new is not None and loaded_new[0].fencing_token == token
    assert await ports.runs.active() == ["r-00000002"]
    assert [e.action for e in await ports.runs.audit(old.id)] == ["abort"]


async def test_a_lease_has_one_owner_until_released_or_lapsed(ports: Ports) -> None:
    leases = ports.leases
    assert await leases.try_acquire("r-00000001", "a", 10)
    assert await leases.try_acquire("r-00000001", "a", 10), "taking our own lease again extends it"
    assert not await leases.try_acquire("r-00000001", "b", 10)
    assert not await leases.renew("r-00000001", "b", 10)
    assert await leases.renew("r-00000001", "a", 10)
    await leases.release("r-00000001", "b")
    assert not await leases.try_acquire("r-00000001", "b", 10), "only the owner releases"
    await leases.release("r-00000001", "a")
    assert await leases.try_acquire("r-00000001", "b", 0.2)
    await asyncio.sleep(0.4)
    assert not await leases.renew("r-00000001", "b", 10), "a lapsed lease is not renewed"
    assert await leases.try_acquire("r-00000001", "a", 10)
    with pytest.raises(ValueError):
        await leases.try_acquire("r-00000002", "a", 0)


