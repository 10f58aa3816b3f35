"""replace-broker and scale with ``--engine cruise-control`` through the real command service and worker
(real Redis), against the in-memory Strimzi and KafkaRebalances with a fake Cruise Control: the
refusals word for word with nothing created, runs approved to the end (the leaving broker empty
before the pool shrinks), the proposal's figures shown to the approver, and an abort mid-rebalance
that annotates ``stop``."""

from __future__ import annotations

from typing import Any

import pytest

from runbooks.engine.models import RunState
from runbooks.rules.rebalance import RebalanceState
from tests.fakes.cruise_control import FakeCruiseControl
from tests.fakes.rebalances import FakeRebalances
from tests.fakes.strimzi import FakeStrimzi
from tests.handlers.test_replica_runbooks import four_brokers, layout_of

pytestmark = pytest.mark.timeout(60)
FIGURES = ("Replica movements: 3; leader movements: 1", "Data to move: 30 MB",
           "Balancedness: 80 before → 95 after (100 is perfectly balanced)")


def with_cruise_control() -> tuple[FakeStrimzi, FakeRebalances, FakeCruiseControl]:
    fake = four_brokers()
    fake.cruise_control = True
    port = FakeRebalances()
    return fake, port, FakeCruiseControl(port, fake)


@pytest.mark.parametrize(("command", "cruise_control", "message"), [
    ("scale c brokers 3 --engine cruise-control", False,
     "Cannot plan scaling pool brokers of c to 3: --engine cruise-control needs Cruise Control, but the Kafka "
     "resource has no spec.cruiseControl: use --engine bot (the default), or add spec.cruiseControl to the Kafka "
     "resource first."),
    ("replace-broker c 3 --engine cruise-control", False,
     "Cannot plan a replacement of broker 3 of c: --engine cruise-control needs Cruise Control, but the Kafka "
     "resource has no spec.cruiseControl: use --engine bot (the default), or add spec.cruiseControl to the Kafka "
     "resource first."),
])
async def test_cruise_control_is_refused_where_the_kafka_has_none(make_bot: Any, command: str, cruise_control: bool,
                                                                   message: str) -> None:
    fake, port, _ = with_cruise_control()
    fake.cruise_control = cruise_control
    bot = await make_bot(fake, rebalances=port)
    reply = await bot.say(command)
    assert not reply.ok and reply.text == message
    assert await bot.runs.active("c") == [] and port.objects == {}


async def test_an_unknown_engine_is_refused_naming_the_valid_ones(make_bot: Any) -> None:
    fake, port, _ = with_cruise_control()
    bot = await make_bot(fake, rebalances=port)
    reply = await bot.say("scale c brokers 3 --engine fast")
    assert not reply.ok
    assert 'unknown engine "fast": the engines are bot (the default: the bot\'s own planner) and cruise-control (a ' \
           "KafkaRebalance, where the Kafka resource has spec.cruiseControl)" in reply.text, reply.text
    assert await bot.runs.active("c") == [] and port.objects == {}


async def test_the_dry_run_shows_the_cruise_control_plan_and_creates_nothing(make_bot: Any) -> None:
    fake, port, _ = with_cruise_control()
    bot = await make_bot(fake, rebalances=port)
    reply = await bot.say("replace-broker c 3 --engine cruise-control --dry-run")
    assert reply.ok and reply.run is None, reply.text
    assert [line for line in reply.text.splitlines() if line.startswith("  ") and not line.startswith("     ")] == [
        "  1. Pre-flight: Kafka Ready, 0 URP, 0 offline, no reassignment [automatic]",
        "  2. Drain broker 3: ask Cruise Control for a proposal (remove-brokers) [automatic]",
        "  3. Drain broker 3: execute Cruise Control's proposal [approval]",
        "  4. Replace broker 3: new pod and empty disk through Strimzi [approval]",
        "  5. Move replicas back to broker 3: ask Cruise Control for a proposal (add-brokers) [automatic]",
        "  6. Move replicas back to broker 3: execute Cruise Control's proposal [approval]",
        "  7. Stop any Cruise Control rebalance of this run still running [automatic]",
    ]
    assert "Cruise Control chooses which replicas it receives (not necessarily the ones it had)" in reply.text
    assert await bot.runs.active("c") == [] and port.objects == {} and fake.replacements == {}


async def test_scale_down_drains_through_cruise_control_before_the_pool_shrinks(make_bot: Any) -> None:
    fake, port, cruise = with_cruise_control()
    bot = await make_bot(fake, rebalances=port)
    reply = await bot.say("scale c brokers 3 --engine cruise-control")
    assert reply.run is not None, reply.text
    name = f"c-kco-{reply.run.id}-drain"
    async with cruise.running():
        run = await bot.drive(reply.run.id)
    assert run.state is RunState.SUCCEEDED, run.pause_reason
    assert cruise.executed == [name]
    made = port.objects[("kafka", name)]
    assert (made.mode, made.brokers, made.cluster_label, made.state) == ("remove-brokers", (3,), "c",
                                                                          RebalanceState.READY)
    assert made.run_id == reply.run.id
    assert port.annotations_written == [("kafka", name, "approve")]  # never auto-approval, no stop at the end
    drain = run.step("drain-rebalance")
    assert drain is not None and drain.findings == FIGURES
    assert drain.observed["approved_figures"] == list(FIGURES)
    assert sorted(fake.pods) == [0, 1, 2] and fake.scale_warnings == []  # broker 3 was empty: no revert
    assert all(3 not in p.replicas for t in fake.topics.values() for p in t.values())
    assert fake.broker_throttles == {} and fake.topic_throttles == {}  # the bot set none: Cruise Control moved


async def test_replace_broker_drains_replaces_and_fills_through_cruise_control(make_bot: Any) -> None:
    fake, port, cruise = with_cruise_control()
    bot = await make_bot(fake, rebalances=port)
    uid = fake.pods[3].uid
    reply = await bot.say("replace-broker c 3 --engine cruise-control")
    assert reply.run is not None, reply.text
    async with cruise.running():
        run = await bot.drive(reply.run.id)
    assert run.state is RunState.SUCCEEDED, run.pause_reason
    prefix = f"c-kco-{reply.run.id}"
    assert cruise.executed == [f"{prefix}-drain", f"{prefix}-back"]
    assert fake.replacements == {3: 1} and fake.pods[3].uid != uid
    assert sum(3 in p for p in layout_of(fake).values()) > 0  # broker 3 holds replicas again (CC's choice)


async def test_an_abort_mid_rebalance_stops_the_rebalance_and_the_run_ends_aborted(make_bot: Any) -> None:
    fake, port, cruise = with_cruise_control()
    cruise.hold = True  # Cruise Control keeps moving until stopped
    bot = await make_bot(fake, rebalances=port)
    reply = await bot.say("scale c brokers 3 --engine cruise-control")
    assert reply.run is not None, reply.text
    name = f"c-kco-{reply.run.id}-drain"
    async with cruise.running():
        mid = await bot.drive(reply.run.id, until=lambda r: r.current_step is not None
                              and r.current_step.id == "drain-rebalance" and r.current_step.applied
                              and "rebalancing" in r.current_step.detail)
        assert mid.current_step is not None and mid.current_step.detail == ("rebalancing: 50 % of the data moved, "
                                                                            "ETA 1 min")
        aborted = await bot.say(f"abort {reply.run.id}")
        assert aborted.ok, aborted.text
        run = await bot.drive(reply.run.id, approve=False)
    assert run.state is RunState.ABORTED, run.pause_reason
    assert run.outcome == "Aborted by U_REQ. Cleanup done: Stop any Cruise Control rebalance of this run still running."
    assert port.annotations_written == [("kafka", name, "approve"), ("kafka", name, "stop")]
    assert port.objects[("kafka", name)].state is RebalanceState.STOPPED
    assert fake.pools["brokers"].replicas == 4 and sorted(fake.pods) == [0, 1, 2, 3]  # the pool was never patched
