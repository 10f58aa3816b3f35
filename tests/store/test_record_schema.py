"""The versioned stored record (``bot.store.record``): what this bot writes, and what it refuses to read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot import store
from bot.store.record import SCHEMA, UnreadableRecord, load_run, run_record
from bot.store.repository import RedisRunRepository
from runbooks.catalogue.restart import RestartBrokerArgs
from runbooks.catalogue.step_args import PatchKafkaArgs, RollExpectation, follow_steps
from runbooks.engine.models import ApprovalPolicy, Run, Step, StepSpec, plan_hash
from runbooks.rules.rolls import BrokerPodState

pytestmark = pytest.mark.timeout(10)

RECORDS = Path(__file__).resolve().parents[1] / "fixtures" / "records"
T = datetime(2026, 1, 1, tzinfo=UTC)


def a_run() -> Run:
    specs = [StepSpec(id="restart-1", title="Restart broker 1", args=RestartBrokerArgs(broker=1, pod="k-1")),
             StepSpec(id="patch", title="Patch", args=PatchKafkaArgs(edits=(), expect_pods={"0": "u0"})),
             *follow_steps("roll", [BrokerPodState(id=0, pod="k-0", uid="u0")], None, what="rolled",
                           expect=RollExpectation(kafka_version="4.3.1"))]
    return Run(id="r-00000001", runbook="restart", cluster="prod", requested_by="U1", created_at=T, updated_at=T,
               steps=tuple(Step(spec=s) for s in specs), plan_hash=plan_hash(specs), policy=ApprovalPolicy())


def test_a_record_written_now_has_schema_1_with_each_steps_kind_in_its_args_and_reads_back_equal() -> None:
    run = a_run()
    record: dict[str, Any] = json.loads(run_record(run))
    assert SCHEMA == 1 and record["schema"] == 1
    assert [s["spec"]["args"]["kind"] for s in record["steps"]] == ["restart-broker", "patch-kafka", "follow-roll"]
    assert all("kind" not in s["spec"] for s in record["steps"])
    loaded = load_run(record)
    assert loaded == run
    assert isinstance(loaded.steps[0].spec.args, RestartBrokerArgs)


def test_the_plan_hash_is_the_same_for_the_same_plan_built_twice() -> None:
    assert a_run().plan_hash == a_run().plan_hash == plan_hash([s.spec for s in load_run(
        json.loads(run_record(a_run()))).steps])


async def test_a_run_stored_through_the_repository_is_schema_1_and_loads_back(redis_url: str) -> None:
    run = a_run()
    client = await store.connect(redis_url)
    try:
        runs = RedisRunRepository(store.RunStore(client), events_channel=None)
        token = await runs.create(run, [])
        stored, _ = await store.RunStore(client).load_run(run.id) or ({}, 0)
        loaded = await runs.load(run.id)
    finally:
        await client.aclose()
    assert stored["schema"] == 1 and stored["fencing_token"] == token
    assert loaded is not None and loaded[0] == run.model_copy(update={"fencing_token": token})


def test_a_schema_0_record_moves_each_steps_kind_into_its_args() -> None:
    """A record written before the schema existed (a frozen fixture) reads as typed arguments."""
    record = json.loads((RECORDS / "restart-awaiting-approval.json").read_text())
    assert "schema" not in record and record["steps"][1]["spec"]["kind"] == "restart-broker"
    run = load_run(record)
    assert run.steps[1].spec.kind == "restart-broker"
    assert run.steps[1].spec.args == RestartBrokerArgs(**record["steps"][1]["spec"]["args"])


@pytest.mark.parametrize("schema", [2, 99])
def test_a_record_from_a_newer_bot_is_refused_saying_so(schema: int) -> None:
    record = {**json.loads(run_record(a_run())), "schema": schema}
    with pytest.raises(UnreadableRecord) as refused:
        load_run(record)
    assert str(refused.value) == (f"run r-00000001 was stored with record schema {schema} by a newer version of the "
                                  "bot; this one reads schemas up to 1: upgrade the bot to handle this run")


@pytest.mark.parametrize("schema", [-1, "1", None, True, 1.0])
def test_a_record_whose_schema_is_not_a_version_is_refused(schema: object) -> None:
    record = {**json.loads(run_record(a_run())), "schema": schema}
    with pytest.raises(UnreadableRecord, match="is not a record version"):
        load_run(record)


def test_a_record_with_an_unknown_step_kind_is_refused_naming_it() -> None:
    record = json.loads(run_record(a_run()))
    record["steps"][0]["spec"]["args"]["kind"] = "replace-broker"
    with pytest.raises(UnreadableRecord, match="replace-broker"):
        load_run(record)


def test_a_schema_1_record_with_a_kind_left_outside_its_args_is_not_silently_read() -> None:
    """Schema 1 has no spec.kind: one there means the record is not what its schema says."""
    record = json.loads(run_record(a_run()))
    record["steps"][0]["spec"]["kind"] = "restart-broker"
    with pytest.raises(UnreadableRecord):
        load_run(record)
