"""The bot's log lines (bot.observability.logs): JSON or text, with the run each line is about, and
every audit entry logged once it is stored (through the real service, on real Redis)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot import store
from bot.clock import RandomIds, SystemClock
from bot.observability.logs import configure_logging, log_settings_problem
from bot.store.repository import RedisClusterLocks, RedisRunRepository
from handlers.clusters import ManagedCluster
from handlers.commands.service import CommandService
from handlers.ports import ClusterRef
from handlers.runs import log_context
from runbooks.engine.access import AccessPolicy, People
from runbooks.engine.models import Actor, ApprovalPolicy
from tests.fakes.strimzi import FakeStrimzi

pytestmark = pytest.mark.timeout(30)
CLUSTER = "kraft"
REQUESTER, APPROVER = Actor(id="U_REQ"), Actor(id="U_APP")


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The root logger writing JSON into a buffer for the test; the handlers before it restored after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buffer = io.StringIO()
    configure_logging("json", "INFO", stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_a_json_line_is_one_object_with_time_level_logger_pid_and_the_extra_fields(json_lines: io.StringIO) -> None:
    logging.getLogger("bot.worker").warning("lost the lease on %s", "r-1", extra={"owner": "replica-2"})
    [line] = lines(json_lines)
    assert line["event"] == "lost the lease on r-1"
    assert (line["level"], line["logger"], line["owner"]) == ("warning", "bot.worker", "replica-2")
    assert line["timestamp"].endswith("Z") and isinstance(line["pid"], int)


def test_lines_inside_a_run_carry_its_id_cluster_step_and_actor(json_lines: io.StringIO) -> None:
    """The run context bound while the bot works on a run is on every line, and gone after it."""
    with log_context.bound(run_id="r-1", cluster="prod", step_id="restart-2", actor="U_APP"):
        logging.getLogger("kafka").warning("broker 2 disconnected")  # a library's line too
    logging.getLogger("bot").warning("outside")
    inside, outside = lines(json_lines)
    assert {k: inside[k] for k in ("run_id", "cluster", "step_id", "actor")} == {
        "run_id": "r-1", "cluster": "prod", "step_id": "restart-2", "actor": "U_APP"}
    assert "run_id" not in outside


def test_an_exception_is_one_json_line_with_its_traceback(json_lines: io.StringIO) -> None:
    try:
        raise RuntimeError("Kafka said no")
    except RuntimeError:
        logging.getLogger("bot").exception("driving run r-1 failed")
    [line] = lines(json_lines)
    assert "RuntimeError: Kafka said no" in line["exception"]


def test_text_lines_carry_the_run_fields_as_key_values() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    buffer = io.StringIO()
    try:
        configure_logging("text", "INFO", stream=buffer)
        with log_context.bound(run_id="r-1"):
            logging.getLogger("bot.worker").info("picked up")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    assert "picked up" in buffer.getvalue() and "run_id=r-1" in buffer.getvalue()


def test_the_sdks_stay_at_warning_even_at_debug(json_lines: io.StringIO) -> None:
    """slack_sdk logs request headers (the bot token) at DEBUG: never written, whatever LOG_LEVEL says."""
    configure_logging("json", "DEBUG", stream=json_lines)
    logging.getLogger("slack_sdk.web").debug("Authorization: Bearer xoxb-secret")
    logging.getLogger("bot").debug("a debug line of ours")
    assert [line["event"] for line in lines(json_lines)] == ["a debug line of ours"]


@pytest.mark.parametrize(("fmt", "level", "problem"), [
    ("yaml", "INFO", "KAFKA_CHATOPS_LOG_FORMAT 'yaml' is not a log format: give text or json"),
    ("json", "LOUD", "LOG_LEVEL 'LOUD' is not a level: give one of DEBUG, INFO, WARNING, ERROR"),
])
def test_a_bad_log_setting_is_named_with_what_is_valid(fmt: str, level: str, problem: str) -> None:
    assert log_settings_problem(fmt, level) == problem
    assert log_settings_problem("json", "debug") is None


async def test_every_audit_entry_is_logged_once_stored_with_who_did_what(
        json_lines: io.StringIO, redis_client: aioredis.Redis) -> None:
    """A restart created and its first step approved: each audit entry is one line on kafka_chatops.audit."""
    fake = FakeStrimzi(CLUSTER, version="4.2.0", zookeeper=False)
    cluster = ManagedCluster(ref=ClusterRef(name=CLUSTER, namespace="kafka", kafka=CLUSTER),
                             policy=ApprovalPolicy(approvers=(APPROVER.id,)),
                             access=AccessPolicy(requesters=People(users=(REQUESTER.id,))))
    runs = RedisRunRepository(store.RunStore(redis_client))
    service = CommandService(clusters={CLUSTER: cluster}, runs=runs, locks=RedisClusterLocks(
        store.ClusterLock(redis_client)), gateway=fake, admin=fake, clock=SystemClock(), ids=RandomIds())
    created = await service.handle_text(f"restart {CLUSTER}", REQUESTER)
    assert created.run is not None, created.text
    await service.handle_text(f"abort {created.run.id}", APPROVER)
    audit = [line for line in lines(json_lines) if line["logger"] == "kafka_chatops.audit"]
    stored = await runs.audit(created.run.id)
    assert [(a["action"], a["actor"], a["from_state"], a["to_state"]) for a in audit] == [
        (e.action, e.actor, e.from_state.value, e.to_state.value) for e in stored]
    assert audit[-1]["action"] == "abort" and audit[-1]["actor"] == APPROVER.id
    assert {a["run_id"] for a in audit} == {created.run.id}
    assert audit[-1]["cluster"] == CLUSTER


async def test_a_refused_command_is_one_audit_line_saying_who_what_where_and_why(
        json_lines: io.StringIO, redis_client: aioredis.Redis) -> None:
    """An outsider's restart in the wrong channel: one kafka_chatops.audit line with the actor, the
    verb, the cluster, the channel and the reason; no run is written."""
    fake = FakeStrimzi(CLUSTER, version="4.2.0", zookeeper=False)
    cluster = ManagedCluster(ref=ClusterRef(name=CLUSTER, namespace="kafka", kafka=CLUSTER),
                             policy=ApprovalPolicy(approvers=(APPROVER.id,)),
                             access=AccessPolicy(requesters=People(users=(REQUESTER.id,)), channels=("C0OPS",)))
    runs = RedisRunRepository(store.RunStore(redis_client))
    service = CommandService(clusters={CLUSTER: cluster}, runs=runs, locks=RedisClusterLocks(
        store.ClusterLock(redis_client)), gateway=fake, admin=fake, clock=SystemClock(), ids=RandomIds())
    outsider = Actor(id="U_OUT")
    refused = await service.handle_text(f"restart {CLUSTER}", outsider, channel="C0OPS")
    assert not refused.ok and refused.ephemeral
    misplaced = await service.handle_text(f"restart {CLUSTER}", REQUESTER, channel="D0DM")
    assert not misplaced.ok and "taken in #C0OPS only (this was #D0DM)" in misplaced.text
    audit = [line for line in lines(json_lines) if line["logger"] == "kafka_chatops.audit"]
    assert [(a["action"], a["actor"], a["verb"], a["cluster"], a["channel"], a["code"]) for a in audit] == [
        ("refused", "U_OUT", "restart", CLUSTER, "C0OPS", "not_requester"),
        ("refused", REQUESTER.id, "restart", CLUSTER, "D0DM", "wrong_channel")]
    assert audit[0]["detail"] == refused.text and audit[1]["detail"] == misplaced.text
    assert await runs.recent(CLUSTER, limit=5) == [], "refused before any run was written"
