"""Runs stored by an older bot load and finish under this one.

A run can wait days for an approval, across bot upgrades, so the documents in
``tests/fixtures/records/`` are frozen: they were written by the bot at commit 91ca3d0 (before the
stored record got a schema version) through the real store, against the in-memory Strimzi of
``tests/handlers/fake_strimzi.py`` (now ``tests.fakes.strimzi``), and must never be regenerated.
A change to the run model that cannot read them needs an upgrade path in the loader, not new fixtures.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot import store
from bot.store.repository import RedisRunRepository
from handlers.commands.service import CommandService
from runbooks.engine.models import Run, RunState
from tests.fakes.cluster import FakeCluster, managed
from tests.fakes.strimzi import FakeStrimzi
from tests.fixtures.fake_runtime import close_runtime, fake_runtime
from tests.fixtures.waiting import wait_for
from tests.handlers.test_change_runbooks import APPROVER, make_bot  # noqa: F401  (make_bot is a fixture)

RECORDS = Path(__file__).resolve().parents[1] / "fixtures" / "records"
FROZEN = sorted(p.stem for p in RECORDS.glob("*.json"))

pytestmark = pytest.mark.timeout(60)


def frozen(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((RECORDS / f"{name}.json").read_text())
    return document


async def store_frozen(redis_url: str, name: str) -> str:
    """Write the frozen document the way the bot wrote it: holding its cluster's lock."""
    document = frozen(name)
    document.pop("fencing_token")
    client = await store.connect(redis_url)
    try:
        await store.RunStore(client).create_run_holding_lock(
            document["id"], document["cluster"], document, token_field="fencing_token")
    finally:
        await client.aclose()
    return str(document["id"])


def test_the_frozen_records_are_all_there() -> None:
    """The fixtures this module promises exist (a glob over an emptied folder would prove nothing)."""
    assert FROZEN == ["config-awaiting-approval", "restart-awaiting-approval", "upgrade-awaiting-approval",
                      "upgrade-paused-mid-roll"]


@pytest.mark.parametrize("name", FROZEN)
async def test_a_frozen_record_loads_with_its_state_steps_and_approval(redis_url: str, name: str) -> None:
    """Every stored field that decides what happens next survives the load: state, position, the
    step list, the waiting approval's nonce and plan hash, the pause reason."""
    document = frozen(name)
    run_id = await store_frozen(redis_url, name)
    client = await store.connect(redis_url)
    try:
        loaded = await RedisRunRepository(store.RunStore(client)).load(run_id)
    finally:
        await client.aclose()
    assert loaded is not None
    run = loaded[0]
    assert run.state.value == document["state"]
    assert run.current == document["current"]
    assert [s.id for s in run.steps] == [s["spec"]["id"] for s in document["steps"]]
    assert [s.state.value for s in run.steps] == [s["state"] for s in document["steps"]]
    assert run.plan_hash == document["plan_hash"]
    assert run.pause_reason == document["pause_reason"]
    if document["approval"] is not None:
        assert run.approval is not None and run.approval.nonce == document["approval"]["nonce"]


def world_of(document: dict[str, Any], version: str) -> FakeStrimzi:
    """The cluster the frozen run was planned on and has changed so far: same name and version, the
    pod uids its steps expect, and the spec edits of its steps already done."""
    fake = FakeStrimzi(document["cluster"], version=version, zookeeper=False)
    for step in document["steps"]:
        args = step["spec"]["args"]
        if "uid" in args:
            fake.pods[int(args["broker"])].uid = args["uid"]
        if step["state"] == "done" and step["spec"]["kind"] == "patch-kafka":
            for edit in args["edits"]:
                (key,) = edit["path"]
                fake.spec[key] = edit["value"]
                fake.generation = fake.observed = fake.generation + 1
    return fake


async def answer_until_finished(service: CommandService, runs: RedisRunRepository, run_id: str) -> list[str]:
    """Act as the approver on a frozen run until it ends; returns what was done, in order.

    The frozen approval requests expired long ago (30 minutes after they were written), so the run
    must first fail closed (pause), then be resumed: an old approval never carries on by itself,
    however the bot was upgraded meanwhile. A resume by an approver is that step's approval (the
    engine's retry rule); later steps are approved as they come.
    """
    done: list[str] = []

    async def finished() -> Run | None:  # None: not yet
        loaded = await runs.load(run_id)
        assert loaded is not None
        run = loaded[0]
        if run.state.terminal:
            return run
        if run.state is RunState.PAUSED and (run.pause_reason or "").startswith("Approval for"):
            assert (await service.handle_text(f"resume {run_id}", APPROVER)).ok
            done.append("resumed after expiry")
        elif run.state is RunState.AWAITING_APPROVAL and run.approval is not None and run.current_step \
                and run.current_step.detail and run.approval.expires_at > datetime.now(UTC) \
                and (await service.actions.approve(run_id, APPROVER, step_id=run.approval.step_id)).ok:
            done.append(f"approved {run.approval.step_id}")
        return None

    run: Run = await wait_for(finished, timeout=45, interval=0.02, message=f"frozen run {run_id} to finish")
    assert run.state is RunState.SUCCEEDED, run.pause_reason
    return done


@pytest.mark.parametrize(("name", "version"), [
    ("config-awaiting-approval", "4.3.1"),
    ("upgrade-awaiting-approval", "4.2.2"),
])
async def test_a_frozen_run_awaiting_approval_fails_closed_then_is_resumed_and_finishes(  # type: ignore[no-untyped-def]
        redis_url: str, make_bot, name: str, version: str) -> None:  # noqa: F811
    """The expired approval an older bot asked for pauses the run; resumed and approved by this bot,
    the run goes to the end and changes the cluster as planned."""
    document = frozen(name)
    fake = world_of(document, version)
    bot = await make_bot(fake)
    run_id = await store_frozen(redis_url, name)
    done = await answer_until_finished(bot.service, bot.runs, run_id)
    assert done[0] == "resumed after expiry"
    assert f"approved {document['approval']['step_id']}" not in done, "the resume was its approval"
    if name.startswith("config"):
        assert fake.spec["config"]["auto.create.topics.enable"] is False
    if name.startswith("upgrade"):
        assert fake.kafka_version == "4.3.1"


async def test_a_frozen_restart_awaiting_approval_is_resumed_approved_and_restarts_every_broker(redis_url: str) -> None:
    """The rolling restart (pod rolls, which ``FakeCluster`` performs) resumed and approved to the end."""
    document = frozen("restart-awaiting-approval")
    cluster = document["cluster"]
    fake = FakeCluster()
    runtime = await fake_runtime(redis_url, {cluster: managed(cluster)}, fake, poll_interval_s=0.02)
    await runtime.start()
    try:
        run_id = await store_frozen(redis_url, "restart-awaiting-approval")
        done = await answer_until_finished(runtime.service, RedisRunRepository(store.RunStore(runtime.redis)), run_id)
    finally:
        await close_runtime(runtime)
    assert done == ["resumed after expiry", "approved restart-1", "approved restart-2", "approved elect-leaders"]
    assert fake.rolls == {(cluster, 0): 1, (cluster, 1): 1, (cluster, 2): 1}
