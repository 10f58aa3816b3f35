"""The mirror-restart runbook (what a mirror_failed alert's button runs) through the real service and worker
(real Redis) over the port fakes: one approved step that sets Strimzi's restart annotation and is done once
the operator has acted and the task is RUNNING; refusals that say what is wrong, with nothing created; and the
access rules of any runbook request."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from handlers.mirror_ports import ConnectorStatus, MirrorMakerStatus, TaskStatus
from handlers.ports import ClusterRef
from runbooks.engine.models import Actor, RunState
from tests.fakes.mirror_makers import FakeMirrorMakers
from tests.fakes.strimzi import FakeStrimzi
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.timeout(60)
SOURCE = "east->west.MirrorSourceConnector"
TRACE = "org.apache.kafka.common.KafkaException: Failed to construct kafka consumer\n\tat x.y(Z.java:1)"
TASK_KEY = "strimzi.io/restart-connector-task"


class StrimziWithMirrors(FakeStrimzi):
    """The bot's gateway is the cluster ports and the MirrorMakers port together: so is this fake."""

    def __init__(self, name: str) -> None:
        super().__init__(name, version="4.3.1", zookeeper=False, instant_rolls=True)
        self.mirrors = FakeMirrorMakers()

    async def list_mirror_makers(self, cluster: ClusterRef) -> list[MirrorMakerStatus]:
        return await self.mirrors.list_mirror_makers(cluster)

    async def get_mirror_maker(self, cluster: ClusterRef, name: str) -> MirrorMakerStatus | None:
        return await self.mirrors.get_mirror_maker(cluster, name)

    async def annotate_mirror_maker(self, cluster: ClusterRef, name: str,
                                    annotations: Mapping[str, str | None]) -> MirrorMakerStatus:
        return await self.mirrors.annotate_mirror_maker(cluster, name, annotations)


def task(state: str) -> tuple[ConnectorStatus, ...]:
    return (ConnectorStatus(name=SOURCE, state="RUNNING",
                            tasks=(TaskStatus(id=0, state=state, trace=TRACE if state == "FAILED" else ""),)),)


async def with_failed_task(name: str) -> StrimziWithMirrors:
    fake = StrimziWithMirrors(name)
    await fake.mirrors.create_mirror_maker(ClusterRef(name=name, namespace="kafka", kafka=name), "dr", {"mirrors": []})
    fake.mirrors.operator_reports("kafka", "dr", connectors=task("FAILED"))
    return fake


async def operator_restarts(fake: StrimziWithMirrors) -> None:
    """Strimzi's part: on the annotation, restart the task (RUNNING) and remove the annotation."""
    async def annotated() -> bool:
        found = await fake.mirrors.get_mirror_maker(ClusterRef(name="x", namespace="kafka", kafka="x"), "dr")
        return found is not None and found.annotations.get(TASK_KEY) == f"{SOURCE}:0"

    await wait_for(annotated, timeout=20, interval=0.02, message="the restart annotation")
    fake.mirrors.operator_reports("kafka", "dr", connectors=task("RUNNING"))
    await fake.mirrors.annotate_mirror_maker(ClusterRef(name="x", namespace="kafka", kafka="x"), "dr", {TASK_KEY: None})


async def test_the_alerts_restart_command_asks_an_approver_then_annotates_and_waits_for_running(make_bot: Any) -> None:
    """The button's command line starts a one-step run that waits for an approver (its card names the trace and
    the annotation); approved, it sets strimzi.io/restart-connector-task and ends once the task is RUNNING."""
    fake = await with_failed_task("west-a")
    bot = await make_bot(fake)
    reply = await bot.say(f"mirror-restart west-a dr '{SOURCE}' --task 0")
    assert reply.ok and reply.run is not None, reply.text
    waiting = await bot.drive(reply.run.id, approve=False, until=lambda r: r.state is RunState.AWAITING_APPROVAL)
    (step,) = waiting.steps
    assert step.spec.needs_approval and "Failed to construct kafka consumer" in step.spec.summary
    assert f"{TASK_KEY}={SOURCE}:0" in step.spec.summary
    assert TASK_KEY not in fake.mirrors.objects[("kafka", "dr")].annotations  # nothing before the approval
    operator = asyncio.create_task(operator_restarts(fake))
    done = await bot.drive(reply.run.id)
    await operator
    assert done.state is RunState.SUCCEEDED, done.state
    assert "is RUNNING" in done.steps[0].detail


@pytest.mark.parametrize(("line", "fragment"), [
    ("mirror-restart west-b nope 'x'", "no KafkaMirrorMaker2 nope in this cluster's namespace (its mirrors: dr)"),
    ("mirror-restart west-b dr other", f"dr has no connector other (its connectors: {SOURCE})"),
    (f"mirror-restart west-b dr '{SOURCE}' --task 3", f"{SOURCE} has no task 3 (its tasks: 0)"),
])
async def test_a_restart_of_something_unknown_is_refused_naming_what_exists(make_bot: Any, line: str,
                                                                            fragment: str) -> None:
    fake = await with_failed_task("west-b")
    bot = await make_bot(fake)
    reply = await bot.say(line)
    assert not reply.ok and reply.run is None and fragment in reply.text, reply.text
    assert await bot.runs.active("west-b") == []


async def test_a_restart_of_a_running_task_is_refused(make_bot: Any) -> None:
    """autoRestart (or someone) fixed it since the alert: nothing to restart, no run."""
    fake = await with_failed_task("west-c")
    fake.mirrors.operator_reports("kafka", "dr", connectors=task("RUNNING"))
    bot = await make_bot(fake)
    reply = await bot.say(f"mirror-restart west-c dr '{SOURCE}' --task 0")
    assert not reply.ok and "task 0 of east->west.MirrorSourceConnector is RUNNING, not FAILED" in reply.text


async def test_someone_who_may_not_request_runs_is_refused_before_anything_is_read(make_bot: Any) -> None:
    """The clicker of the alert's button is judged like anyone typing the command: a cluster without requesters
    lets its approvers start runs, so someone else is refused, and no run is created."""
    fake = await with_failed_task("west-d")
    bot = await make_bot(fake)
    reply = await bot.say(f"mirror-restart west-d dr '{SOURCE}' --task 0", Actor(id="U_NOBODY"))
    assert not reply.ok and reply.run is None
    assert "may" in reply.text and "mirror-restart" in reply.text, reply.text
    assert await bot.runs.active("west-d") == []
