"""The upgrade and config runbooks through the real service and worker (real Redis), against the
in-memory Strimzi of ``tests.fakes.strimzi``: the legacy ZooKeeper procedure the sandbox cannot run, the
KRaft one, the refusals, and a broker crash in the middle of a roll."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bot import store
from bot.clock import RandomIds, SystemClock
from bot.store.repository import RedisClusterLocks, RedisRunRepository
from bot.store.run_events import RunEventBus
from bot.worker import Worker
from handlers.clusters import ManagedCluster
from handlers.commands.service import CommandService
from handlers.ports import ClusterRef
from handlers.rebalances import KafkaRebalances
from handlers.replies import Reply
from runbooks.engine.models import Actor, ApprovalPolicy, Run, RunState
from tests.fakes.strimzi import FakeStrimzi
from tests.fixtures.waiting import wait_for

REQUESTER, APPROVER = Actor(id="U_REQ"), Actor(id="U_APP")


@dataclass
class Bot:
    service: CommandService
    worker: Worker
    fake: FakeStrimzi
    runs: RedisRunRepository
    bus: RunEventBus

    async def say(self, text: str, actor: Actor = REQUESTER) -> Reply:
        return await self.service.handle_text(text, actor)

    async def run(self, run_id: str) -> Run:
        loaded = await self.runs.load(run_id)
        assert loaded is not None
        return loaded[0]

    async def drive(self, run_id: str, *, until: Callable[[Run], bool] | None = None, approve: bool = True,
                    seconds: float = 60.0) -> Run:
        """Approve every step that asks (as APPROVER) until the run is finished (or ``until`` holds)."""
        async def settled() -> Run | None:
            run = await self.run(run_id)
            if (until or (lambda r: r.state.terminal))(run):
                return run
            if approve and run.state is RunState.AWAITING_APPROVAL and run.approval is not None:
                step = run.current_step
                if step is not None and step.detail:  # the advisory gate has reported
                    await self.service.actions.approve(run_id, APPROVER, step_id=run.approval.step_id)
            return None

        result: Run = await wait_for(settled, timeout=seconds, interval=0.02, message=f"run {run_id} to settle")
        return result


@pytest.fixture
async def make_bot(redis_url: str) -> AsyncIterator[Callable[..., Any]]:
    started: list[tuple[Bot, Any]] = []

    async def build(fake: FakeStrimzi, *, allowed_class_keys: frozenset[str] = frozenset(),
                    rebalances: KafkaRebalances | None = None) -> Bot:
        client = await store.connect(redis_url)
        cluster = ManagedCluster(ref=ClusterRef(name=fake.name, namespace="kafka", kafka=fake.name),
                                 policy=ApprovalPolicy(approvers=(REQUESTER.id, APPROVER.id)),
                                 allowed_class_keys=allowed_class_keys)
        clusters = {fake.name: cluster}
        runs, locks, bus = RedisRunRepository(store.RunStore(client)), RedisClusterLocks(store.ClusterLock(client)), \
            RunEventBus(client)
        clock, ids = SystemClock(), RandomIds()
        service = CommandService(clusters=clusters, runs=runs, locks=locks, gateway=fake, admin=fake,
                                 clock=clock, ids=ids)
        worker = Worker(runs=runs, locks=locks, leases=store.RunLease(client), clusters=clusters, gateway=fake,
                        admin=fake, clock=clock, ids=ids, owner="test", poll_interval_s=0.02,
                        scan_interval_s=0.1, rebalances=rebalances)
        bus.add_listener(worker.on_run_event)
        await bus.start()
        await worker.start()
        fake.start()
        bot = Bot(service, worker, fake, runs, bus)
        started.append((bot, client))
        return bot

    yield build
    for bot, client in started:
        # Bounded: Worker.stop() sometimes needs a second cancel (its scan loop appears to lose the
        # first one inside a Redis call); wait_for delivers it after 2 s.
        for stop in (bot.worker.stop, bot.fake.stop, bot.bus.stop, client.aclose):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop(), 2)


def step_states(run: Run) -> dict[str, str]:
    return {s.id: s.state.value for s in run.steps}


async def test_zookeeper_upgrade_pins_protocol_rolls_binaries_then_raises_protocol(make_bot) -> None:  # type: ignore[no-untyped-def]
    """Strimzi 0.45 procedure: IBP pinned (a roll), binaries (a roll), IBP raised (a roll); every roll
    followed broker by broker, every broker restarted once per roll, verified at the end."""
    fake = FakeStrimzi("legacy", version="3.8.1", zookeeper=True)
    bot = await make_bot(fake)
    reply = await bot.say("upgrade legacy 3.9.0")
    assert reply.ok and reply.run is not None, reply.text
    ids = [s.id for s in reply.run.steps]
    assert ids == ["preflight", "pin-protocol", "pin-0", "pin-1", "pin-2", "roll-version", "roll-0", "roll-1",
                   "roll-2", "roll-done", "raise-protocol", "ibp-0", "ibp-1", "ibp-2", "protocol-done", "verify"]
    needs_approval = [s.spec.id for s in reply.run.steps if s.spec.needs_approval]
    assert needs_approval == ["pin-protocol", "roll-version", "raise-protocol"]
    run = await bot.drive(reply.run.id)
    assert run.state is RunState.SUCCEEDED, run.pause_reason
    assert fake.spec["config"]["inter.broker.protocol.version"] == "3.9"
    assert fake.restart_order == [0, 1, 2] * 3
    assert all(p.version == "3.9.0" and p.static["inter.broker.protocol.version"] == "3.9" for p in fake.pods.values())
    assert "Kafka 3.9.0 on brokers 0, 1, 2" in (run.step("verify").detail if run.step("verify") else "")


async def test_zookeeper_upgrade_with_message_format_set_adds_its_roll(make_bot) -> None:  # type: ignore[no-untyped-def]
    """A cluster that still carries log.message.format.version gets it raised after IBP: a fourth roll."""
    fake = FakeStrimzi("legacy", version="3.8.1", zookeeper=True,
                       config={"inter.broker.protocol.version": "3.8", "log.message.format.version": "3.8"})
    bot = await make_bot(fake)
    reply = await bot.say("upgrade legacy 3.9.0")
    assert reply.run is not None, reply.text
    assert [s.id for s in reply.run.steps if s.spec.kind == "patch-kafka"] == [
        "roll-version", "raise-protocol", "raise-format"]
    run = await bot.drive(reply.run.id)
    assert run.state is RunState.SUCCEEDED, run.pause_reason
    assert fake.spec["config"]["log.message.format.version"] == "3.9"
    assert fake.restart_order == [0, 1, 2] * 3


async def test_kraft_upgrade_pins_rolls_once_raises_metadata_live(make_bot) -> None:  # type: ignore[no-untyped-def]
    """KRaft: metadataVersion pinned before the version patch, one roll, metadata raised without a roll."""
    fake = FakeStrimzi("prod", version="4.2.2", zookeeper=False)
    bot = await make_bot(fake)
    reply = await bot.say("upgrade prod 4.3.1")
    assert reply.run is not None, reply.text
    pinned_before_roll: list[bool] = []

    def at_roll_approval(run: Run) -> bool:
        if run.approval is not None and run.approval.step_id == "roll-version":
            pinned_before_roll.append(fake.spec.get("metadataVersion") == "4.2-IV1")
        return run.state.terminal

    run = await bot.drive(reply.run.id, until=at_roll_approval)
    assert run.state is RunState.SUCCEEDED, run.pause_reason
    assert pinned_before_roll and all(pinned_before_roll)
    assert fake.restart_order == [0, 1, 2]
    assert (fake.kafka_version, fake.metadata, fake.spec["metadataVersion"]) == ("4.3.1", "4.3-IV0", "4.3-IV0")
    assert "applied without a restart" in run.step("raise-metadata").detail  # type: ignore[union-attr]


@pytest.mark.parametrize(("setup", "command", "reason"), [
    ({}, "upgrade prod 4.4.0", "Kafka 4.4.0 is not supported by the Strimzi operator 1.2.0 running this cluster "
                               "(Strimzi 1.2's list: reading the operator Deployment kafka/strimzi-cluster-operator "
                               "is not wired in): supported 4.2.0, 4.2.1, 4.2.2, 4.3.0, 4.3.1"),
    ({}, "upgrade prod 4.2.1", "4.2.1 is older than the running 4.2.2: this command only upgrades"),
    ({}, "upgrade prod 4.2.2", "already runs Kafka 4.2.2 with metadata 4.2-IV1: nothing to upgrade"),
    ({"ready": False, "reason": "FatalProblem"}, "upgrade prod 4.3.1",
     "the Kafka resource is not Ready (FatalProblem)"),
    ({"crash": 1}, "upgrade prod 4.3.1", "the cluster is not healthy: brokers missing: 1; 3 under-replicated"),
    ({"zookeeper": True, "version": "3.8.1"}, "upgrade prod 4.3.1",
     "by the Strimzi operator 0.45.0 running this cluster (Strimzi 0.45's list: reading the operator "
     "Deployment kafka/strimzi-cluster-operator is not wired in): supported 3.8.0, 3.8.1, 3.9.0"),
])
async def test_upgrade_refusals_say_why_and_change_nothing(make_bot, setup: dict[str, Any], command: str,  # type: ignore[no-untyped-def]
                                                          reason: str) -> None:
    """Unsupported version (with the list), downgrade, same version, not Ready, unhealthy: refused, no run."""
    fake = FakeStrimzi("prod", version=setup.get("version", "4.2.2"), zookeeper=setup.get("zookeeper", False))
    fake.ready, fake.reason = setup.get("ready", True), setup.get("reason", "")
    if "crash" in setup:
        fake.crash(setup["crash"])
    bot = await make_bot(fake)
    reply = await bot.say(command)
    assert not reply.ok and reply.run is None
    assert reason in reply.text, reply.text
    assert fake.generation == 1 and await bot.runs.active() == []


async def test_broker_crash_mid_roll_pauses_then_resumes_after_retry(make_bot) -> None:  # type: ignore[no-untyped-def]
    """A broker that crashes after its own restart stops the run at the next broker with the reason; the
    operator waits too; once it is back, Retry finishes the upgrade."""
    fake = FakeStrimzi("prod", version="4.2.2", zookeeper=False, restart_ticks=15)
    bot = await make_bot(fake)
    reply = await bot.say("upgrade prod 4.3.1")
    assert reply.run is not None, reply.text
    run = await bot.drive(reply.run.id, until=lambda r: r.step("roll-0") is not None
                          and r.step("roll-0").state.value == "done")  # type: ignore[union-attr]
    fake.crash(0)
    run = await bot.drive(reply.run.id, until=lambda r: r.state is RunState.PAUSED)
    assert run.current_step is not None and run.current_step.id in ("roll-1", "roll-2")
    assert "broker 0 is down" in (run.pause_reason or "")
    assert fake.spec["metadataVersion"] == "4.2-IV1", "nothing after the roll may happen on a sick cluster"
    fake.recover(0)
    resumed = await bot.service.handle_text(f"resume {run.id}", APPROVER)
    assert resumed.ok, resumed.text
    run = await bot.drive(run.id)
    assert run.state is RunState.SUCCEEDED, run.pause_reason
    assert sorted(fake.restart_order) == [0, 1, 2]


async def test_config_change_refuses_denied_keys_and_bad_values_with_reasons(make_bot) -> None:  # type: ignore[no-untyped-def]
    """Keys Strimzi owns, unknown keys, badly typed or impossible values: one refusal listing each reason."""
    fake = FakeStrimzi("prod", version="4.3.1", zookeeper=False)
    bot = await make_bot(fake)
    reply = await bot.say("config prod set node.id=7 log.retention.ms=soon "
                          "log.retension.ms=1 auto.create.topics.enable=maybe")
    assert not reply.ok
    too_high = await bot.say("config prod set min.insync.replicas=5")
    assert not too_high.ok and "min.insync.replicas=5 is more than 3" in too_high.text, too_high.text
    for reason in ("node.id cannot be changed this way: a node's identity",
                   "Invalid value soon for configuration log.retention.ms: Not a number of type LONG",
                   "the brokers know no config 'log.retension.ms' (did you mean log.retention.ms?)",
                   "Invalid value maybe for configuration auto.create.topics.enable: Expected value to be either "
                   "true or false (valid: true or false. Default: true)"):
        assert reason in reply.text, reply.text
    for key, why in (("listeners", "spec.kafka.listeners"), ("log.dirs", "volumes"),
                     ("controller.quorum.voters", "quorum"), ("process.roles", "spec.roles"),
                     ("inter.broker.protocol.version", "/kafka upgrade")):
        refused = await bot.say(f"config prod set {key}=x")
        assert not refused.ok and why in refused.text, refused.text
    assert fake.generation == 1


async def test_config_change_dynamic_applies_live_and_static_rolls_each_broker(make_bot) -> None:  # type: ignore[no-untyped-def]
    """A dynamic key: no roll, reported as such; a start-up key: the operator rolls, the run follows each
    broker and verifies the value on every broker."""
    fake = FakeStrimzi("prod", version="4.3.1", zookeeper=False)
    bot = await make_bot(fake)
    dry = await bot.say("config prod set log.retention.ms=3600000 --dry-run")
    assert dry.ok and "log.retention.ms: (not set) -> 3600000 (applied live, no restart" in dry.text
    reply = await bot.say("config prod set log.retention.ms=3600000")
    assert reply.run is not None
    run = await bot.drive(reply.run.id)
    assert run.state is RunState.SUCCEEDED and fake.restart_order == []
    assert "applied without a restart" in run.step("verify").detail  # type: ignore[union-attr]

    reply = await bot.say("config prod set auto.create.topics.enable=false")
    assert reply.run is not None
    assert [s.id for s in reply.run.steps] == ["preflight", "patch-config", "roll-0", "roll-1", "roll-2",
                                                "roll-done", "verify"]
    run = await bot.drive(reply.run.id)
    assert run.state is RunState.SUCCEEDED, run.pause_reason
    assert fake.restart_order == [0, 1, 2]
    assert "auto.create.topics.enable=false on every broker (brokers 0, 1, 2 restarted)" in \
        run.step("verify").detail  # type: ignore[union-attr]


async def test_a_change_made_behind_the_plans_back_is_refused_at_the_gate(make_bot) -> None:  # type: ignore[no-untyped-def]
    """Someone edits spec.kafka between the plan and the approval: the patch step's gate pauses the run
    and nothing is written over their change."""
    fake = FakeStrimzi("prod", version="4.3.1", zookeeper=False)
    bot = await make_bot(fake)
    reply = await bot.say("config prod set log.retention.ms=3600000")
    assert reply.run is not None
    await bot.drive(reply.run.id, approve=False, until=lambda r: r.state is RunState.AWAITING_APPROVAL)
    fake.spec["config"]["compression.type"] = "zstd"
    fake.generation += 1
    run = await bot.drive(reply.run.id, until=lambda r: r.state in (RunState.PAUSED, RunState.SUCCEEDED))
    assert run.state is RunState.PAUSED
    assert "changed since the plan" in (run.pause_reason or "")
    assert "log.retention.ms" not in fake.spec["config"]
