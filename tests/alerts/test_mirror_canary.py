"""The mirror canary alert without a JVM: the pure canary state (due, arrivals, silence) and the shared lag
figures (ages of the oldest uncopied records), the clusters file's ``mirror_canary`` and its mistakes, and the
monitor over the port fakes (``FakeMirrorCanary`` stands in for MirrorMaker 2 copying the canary record or
not, ``MemoryCanaryStates`` for Redis) posting, updating, resolving and staying quiet while snoozed through
the real evaluator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config.settings import ConfigError, load_clusters
from handlers.alerting.evaluator import AlertEvaluator
from handlers.alerting.mirror_monitor import MirrorMonitor
from handlers.mirror_ports import ConnectorStatus
from handlers.ports import ClusterRef
from runbooks.alerting.lifecycle import (
    AlertRules,
    Condition,
    MirrorCanaryRule,
    MirrorLagRule,
    Phase,
    alert_id,
)
from runbooks.alerting.mirror import (
    CanaryArrival,
    CanaryState,
    after_probe,
    canary_due,
    canary_silence_s,
    mirror_lag,
    uncopied_positions,
    with_ages,
)
from runbooks.engine.models import Actor
from tests.alerts.test_mirror_alerts import ReaderByAddress
from tests.fakes.alerts import FakeClock, FakeLagReader, MemoryAlertStore, RecordingChannel, cluster
from tests.fakes.mirror_canary import FakeMirrorCanary, MemoryCanaryStates
from tests.fakes.mirror_makers import FakeMirrorMakers

pytestmark = pytest.mark.timeout(10)
T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
SOURCE = "east->west.MirrorSourceConnector"


def ms(at: datetime) -> float:
    return at.timestamp() * 1000


# -- the pure rules -------------------------------------------------------------------------------


def fresh() -> CanaryState:
    return CanaryState(cluster="west", mirror="dr", source="east", topic="kafka-chatops-canary-dr",
                       remote_topic="east.kafka-chatops-canary-dr", watching_since=T0)


def test_a_canary_is_due_every_interval_and_the_silence_counts_from_the_last_arrival() -> None:
    """Due at once, then only once ``every`` passed since the last send; silence runs from the start until a
    record arrives, then from its arrival; the newest record (by produce time) gives the latency, and a late
    older one does not move the arrival back."""
    state = fresh()
    assert canary_due(None, T0, 30) and canary_due(state, T0, 30)
    assert canary_silence_s(state, T0 + timedelta(seconds=90)) == 90.0
    seen = T0 + timedelta(seconds=1)
    state = after_probe(state, sent_at=T0, arrivals=[
        CanaryArrival(sent_ms=ms(T0) - 30_000, seen_ms=ms(seen)),  # a late one from before
        CanaryArrival(sent_ms=ms(T0) + 880, seen_ms=ms(seen)),
    ], positions={0: 7})
    assert (state.last_sent_at, state.last_arrival_at, state.last_latency_ms, state.positions) == (
        T0, seen, 120.0, {0: 7})
    assert not canary_due(state, T0 + timedelta(seconds=29), 30) and canary_due(state, T0 + timedelta(seconds=30), 30)
    assert canary_silence_s(state, T0 + timedelta(seconds=61)) == 60.0
    older = after_probe(state, sent_at=None, arrivals=[CanaryArrival(sent_ms=ms(T0) - 5000, seen_ms=ms(T0))],
                        positions={0: 8})
    assert older.last_arrival_at == seen and older.last_sent_at == T0


def test_the_lag_figures_give_each_lagging_partition_the_age_of_its_oldest_uncopied_record() -> None:
    """The positions read are the remote partitions' ends (0 where none exists), worst first; the mirror's seconds
    are the oldest age; nothing behind is 0 s, behind without readable times is unknown (None)."""
    lag = mirror_lag("dr", {("orders", 0): 100, ("orders", 1): 50, ("new", 0): 7},
                     {("east.orders", 0): 90, ("east.orders", 1): 50}, "east", identity=False)
    assert uncopied_positions(lag) == [("orders", 0, 90), ("new", 0, 0)]
    now = ms(T0)
    aged = with_ages(lag, {("orders", 0, 90): int(now) - 42_000, ("new", 0, 0): int(now) - 7_000}, now)
    assert [(p.topic, p.partition, p.age_s) for p in aged.partitions] == [("new", 0, 7.0), ("orders", 0, 42.0),
                                                                          ("orders", 1, None)]
    assert aged.seconds == 42.0
    assert with_ages(lag, None, now).seconds is None and with_ages(lag, {}, now).seconds is None
    caught_up = mirror_lag("dr", {("orders", 0): 5}, {("east.orders", 0): 5}, "east", identity=False)
    assert with_ages(caught_up, {}, now).seconds == 0.0


def test_a_partition_ahead_on_the_target_does_not_hide_one_behind() -> None:
    """Duplicates made partition 0's copy longer than its source: partition 1's 5 records behind still count (mirror
    status summed a topic's end offsets, which showed 0 here; it now reads these figures too)."""
    lag = mirror_lag("dr", {("orders", 0): 100, ("orders", 1): 100}, {("east.orders", 0): 105, ("east.orders", 1): 95},
                     "east", identity=False)
    assert lag.records == 5 and [(p.partition, p.records) for p in lag.worst()] == [(1, 5)]


# -- the clusters file ----------------------------------------------------------------------------


def load(tmp_path: Path, block: str) -> AlertRules:
    path = tmp_path / "clusters.yaml"
    path.write_text(f"clusters:\n  west:\n    approvers: [U01ANA]\n    alerts: {block}\n")
    return load_clusters(path)["west"].alerts


def test_the_canary_rule_has_defaults_and_is_read_from_the_alerts_block(tmp_path: Path) -> None:
    assert AlertRules().mirror_canary == MirrorCanaryRule(every_s=30.0, max_silence_s=300.0, for_s=0.0)
    rules = load(tmp_path, "{mirror_canary: {every: 10s, max_silence: 2m, cooldown: 0s}}")
    assert rules.mirror_canary == MirrorCanaryRule(every_s=10.0, max_silence_s=120.0, cooldown_s=0.0)
    assert load(tmp_path, "{mirror_canary: {enabled: false}}").mirror_canary.enabled is False


@pytest.mark.parametrize(("block", "fragment"), [
    ("{mirror_canary: {every: 0s}}", "mirror_canary.every: must be a duration above 0 (e.g. 30s or 5m), not '0s'"),
    ("{mirror_canary: {max_silence: soon}}", "'soon' is not a duration"),
    ("{mirror_canary: {every: 5m, max_silence: 1m}}", "mirror_canary max_silence (60 s) must be longer than every "
                                                      "(300 s)"),
    ("{mirror_canary: {silence: 1m}}", "silence: unknown key (valid here: enabled, for, cooldown, every, "
                                       "max_silence)"),
])
def test_mistakes_in_the_canary_rule_are_named(tmp_path: Path, block: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, block)
    assert fragment in str(raised.value)


# -- the monitor over the port fakes --------------------------------------------------------------

SPEC: dict[str, Any] = {
    "target": {"alias": "west", "bootstrapServers": "west:9092"},
    "mirrors": [{"source": {"alias": "east", "bootstrapServers": "east:9092"},
                 "topicsPattern": "orders.*|kafka-chatops-canary-dr", "sourceConnector": {"tasksMax": 1}}],
}
RULES = AlertRules(update_interval_s=0, mirror_lag=MirrorLagRule(enabled=False),
                   mirror_canary=MirrorCanaryRule(every_s=30, max_silence_s=120, cooldown_s=0))
REF = ClusterRef(name="west", namespace="kafka", kafka="west")


class World:
    """Both clusters' fakes, one alert channel and store, and the canary's state store: a new monitor over
    the same world is another replica taking the monitor lease over."""

    def __init__(self) -> None:
        self.clock = FakeClock(T0)
        self.mirrors, self.canary, self.states = FakeMirrorMakers(), FakeMirrorCanary(), MemoryCanaryStates()
        self.canary.clock = self.clock.now
        self.channel, self.store = RecordingChannel(), MemoryAlertStore()
        self.reader = ReaderByAddress(**{"east:9092": FakeLagReader(), "west:9092": FakeLagReader()})
        self.west = cluster("west", rules=RULES)
        self.evaluator = AlertEvaluator(clusters={"west": self.west}, store=self.store, clock=self.clock, owner="a",
                                        channel=self.channel)

    def monitor(self) -> MirrorMonitor:
        async def bootstrap() -> str:
            return "west:9092"

        return MirrorMonitor(self.west, mirrors=self.mirrors, admin=self.reader, reader=self.reader,  # type: ignore[arg-type]
                             evaluator=self.evaluator, bootstrap=bootstrap, now=self.clock.now, canary=self.canary,
                             canary_states=self.states)

    async def every(self, monitor: MirrorMonitor, seconds: float, times: int = 1) -> None:
        for _ in range(times):
            self.clock.advance(seconds)
            await monitor.check()


async def world_with_mirror(spec: dict[str, Any] = SPEC) -> World:
    world = World()
    await world.mirrors.create_mirror_maker(REF, "dr", spec)
    return world


async def test_a_silent_canary_posts_one_alert_updates_it_and_resolves_when_records_arrive_again() -> None:
    """Copying: the canary goes east → west every 30 s and nothing is posted. MirrorMaker 2 stops copying (its
    source connector PAUSED): once no record arrived for 2 min, one alert saying when the last arrived, its
    latency then and what to check; still silent: the same message updated; copying again: resolved."""
    world = await world_with_mirror()
    monitor = world.monitor()
    await monitor.check()
    assert world.canary.probes[0][:2] == ("kafka-chatops-canary-dr", "east.kafka-chatops-canary-dr")
    assert world.canary.probes[0][2].startswith("monitor:dr:")
    saved = await world.states.load("west", "dr")
    assert saved is not None and saved.last_arrival_at == T0 and saved.last_latency_ms == 80.0
    world.canary.copying = False
    world.mirrors.operator_reports("kafka", "dr", connectors=(ConnectorStatus(name=SOURCE, state="PAUSED"),))
    await world.every(monitor, 30, times=3)  # 90 s of silence: under 2 min
    assert world.channel.posts == [] and len(world.canary.probes) == 4
    await world.every(monitor, 30)  # 120 s: the threshold
    (post,) = world.channel.posts
    assert post.condition is Condition.MIRROR_CANARY and post.subject == "mirror/dr"
    assert post.alert_id == alert_id("west", Condition.MIRROR_CANARY, "mirror/dr")
    assert "west: MirrorMaker 2 dr: no canary record arrived for 2 min" in post.headline
    assert "(kafka-chatops-canary-dr on east → east.kafka-chatops-canary-dr)" in post.text
    assert "last arrived 2026-11-26 12:00:00 UTC (120 s ago), latency then 80 ms" in post.text
    assert f"Check the connectors ({SOURCE} is PAUSED) and `/kafka mirror status dr`" in post.text
    assert [(b.label, b.value) for b in post.buttons if b.action == "command"] == [("Mirror status",
                                                                                   "/kafka mirror status dr")]
    await world.every(monitor, 30)
    assert len(world.channel.posts) == 1 and world.channel.updates[-1][1].value == 150.0
    assert world.channel.updates[-1][1].phase is Phase.FIRING
    world.canary.copying = True
    await world.every(monitor, 30)
    assert len(world.channel.posts) == 1 and world.channel.updates[-1][1].phase is Phase.RESOLVED
    state = await world.states.load("west", "dr")
    assert state is not None and state.last_arrival_at == T0 + timedelta(seconds=180)


async def test_a_snoozed_canary_alert_posts_nothing_new_until_the_snooze_ends() -> None:
    """Snoozed while firing: it resolves and, silent again within the snooze, fires without a post; still silent
    when the snooze ends, it is posted then."""
    world = await world_with_mirror()
    monitor = world.monitor()
    await monitor.check()
    world.canary.copying = False
    await world.every(monitor, 30, times=4)  # 120 s: fires
    (post,) = world.channel.posts
    reply = await world.evaluator.snooze(post.alert_id, timedelta(minutes=10), Actor(id="U01ANA"))
    assert reply.ok, reply.text
    world.canary.copying = True
    await world.every(monitor, 30)
    assert world.channel.updates[-1][1].phase is Phase.RESOLVED
    world.canary.copying = False
    await world.every(monitor, 30, times=5)  # silent 150 s again at 12:05, the snooze lasts until 12:12
    assert len(world.channel.posts) == 1
    (state, _), = await world.store.load_cluster("west")
    assert state.phase is Phase.FIRING and state.snoozed(world.clock.now())
    await world.every(monitor, 30, times=14)  # 12:12, the snooze ended
    assert len(world.channel.posts) == 2 and world.channel.posts[1].phase is Phase.FIRING


async def test_a_replica_taking_the_lease_over_reads_on_from_where_the_other_stopped() -> None:
    """The canary state is the store's: a second monitor sends on schedule (not at once) and reads the remote
    topic from the position the first one reached, and counts the silence from the same last arrival."""
    world = await world_with_mirror()
    await world.monitor().check()
    other = world.monitor()
    await world.every(other, 10)
    assert len(world.canary.probes) == 1  # not due yet: the first replica sent 10 s ago
    world.canary.copying = False
    await world.every(other, 20)
    assert world.canary.probes[1][3] == {0: 1}
    await world.every(other, 100)
    assert world.channel.posts[0].value == 130.0


async def test_a_failing_probe_leaves_the_alert_as_it_is_and_a_mirror_without_a_canary_gets_none() -> None:
    """Firing, then the probe fails (the source unreachable): the alert neither resolves nor moves. A mirror the
    runbook did not set up (no canary topic in its pattern) is never probed."""
    world = await world_with_mirror()
    monitor = world.monitor()
    await monitor.check()
    world.canary.copying = False
    await world.every(monitor, 30, times=4)
    assert len(world.channel.posts) == 1
    edits = len(world.channel.updates)
    world.canary.probe_error = ConnectionError("east is unreachable")
    await world.every(monitor, 30, times=3)
    assert len(world.channel.updates) == edits
    (state, _), = await world.store.load_cluster("west")
    assert state.phase is Phase.FIRING

    other = await world_with_mirror({**SPEC, "mirrors": [{**SPEC["mirrors"][0], "topicsPattern": "orders.*"}]})
    await other.every(other.monitor(), 300, times=2)
    assert other.canary.probes == [] and other.channel.posts == []
