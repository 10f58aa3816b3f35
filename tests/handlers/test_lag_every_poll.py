"""Lag rules on every poll (issue #17 §2): ``ClusterMonitor.check_lag`` evaluates the lag alerts
each time it runs (every second when the offsets are streamed) while the report other replicas
read is written once per ``lag_poll_s``; the growth rule keeps a bounded history; the flat
figures (``LagSnapshot.stats``) agree with the report's models."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence

import pytest

from handlers.alerting.evaluator import AlertEvaluator
from handlers.alerting.lag_document import lag_document
from handlers.alerting.lag_models import LagReport, SecondsFrom
from handlers.alerting.lag_poll import LagPoller
from handlers.alerting.monitoring import GROWTH_BUCKETS, ClusterMonitor, KubeState
from handlers.ports import ClusterRef, ConsumerGroup, GroupMember, KafkaResourceStatus
from runbooks.alerting.lifecycle import AlertRules, Condition, LagRule
from tests.fakes.alerts import (
    FakeClock,
    FakeLagReader,
    MemoryAlertStore,
    MemoryLagReports,
    RecordingChannel,
    cluster,
)

pytestmark = pytest.mark.timeout(20)
BOOTSTRAP = "k:9092"


def monitor_for(reader: FakeLagReader, clock: FakeClock, rule: LagRule,
                lag_poll_s: float = 15.0) -> tuple[ClusterMonitor, RecordingChannel, MemoryLagReports]:
    rules = AlertRules(lag_poll_s=lag_poll_s, consumer_lag=rule)
    channel, reports = RecordingChannel(), MemoryLagReports()
    evaluator = AlertEvaluator(clusters={"prod": cluster(rules=rules)}, store=MemoryAlertStore(), clock=clock,
                               owner="a", channel=channel)
    synced = KubeState(synced=True, kafka=KafkaResourceStatus(ready=True, bootstrap_servers=BOOTSTRAP))
    monitor = ClusterMonitor(cluster(rules=rules), admin=None, gateway=None,  # type: ignore[arg-type]
                             poller=LagPoller(reader, clock, sample_spacing_s=lag_poll_s), reports=reports,
                             evaluator=evaluator, kube=lambda: synced, now=clock.now)
    return monitor, channel, reports


def one_group(name: str = "app") -> FakeLagReader:
    reader = FakeLagReader()
    reader.groups = [ConsumerGroup(group=name, state="Stable")]
    reader.commits = {name: {"t": {0: 100}}}
    reader.ends = {("t", 0): (0, 100)}
    return reader


async def test_an_alert_fires_on_the_next_poll_while_the_report_waits_for_its_interval() -> None:
    reader, clock = one_group(), FakeClock()
    monitor, channel, reports = monitor_for(reader, clock, LagRule(for_s=0, max_lag=50, max_lag_seconds=None))
    await monitor.check_lag()
    saved = await reports.latest("prod")
    assert saved is not None and saved.groups[0].max_lag == 0
    clock.advance(1)
    reader.ends = {("t", 0): (0, 200)}  # a producer pushes the stopped group 100 records behind
    await monitor.check_lag()
    assert [v.condition for v in channel.posts] == [Condition.CONSUMER_LAG]  # one second later
    assert "100 records" in channel.posts[0].text
    still = await reports.latest("prod")
    assert still is not None and still.taken_at == saved.taken_at  # the report is not rewritten every second
    clock.advance(14)
    await monitor.check_lag()
    fresh = await reports.latest("prod")
    assert fresh is not None and fresh.groups[0].max_lag == 100
    assert len(channel.posts) == 1  # and nothing is posted twice


async def test_the_growth_rule_keeps_a_bounded_history_polled_every_second() -> None:
    """Ten minutes of one-second polls keep at most GROWTH_BUCKETS + 2 numbers per group, and a
    spike over the window's smallest total still fires."""
    reader, clock = one_group(), FakeClock()
    rule = LagRule(for_s=0, max_lag=None, max_lag_seconds=None, growth_window_s=300, growth_min_increase=1000,
                   growth_factor=3)
    monitor, channel, _ = monitor_for(reader, clock, rule)
    end = 100
    for second in range(600):
        end += 10
        reader.ends = {("t", 0): (0, end)}
        reader.commits = {"app": {"t": {0: end - 200 - (second % 7)}}}  # a healthy consumer, ~200 behind
        await monitor.check_lag()
        clock.advance(1)
    assert channel.posts == []
    assert len(monitor._lag_history["app"]) <= GROWTH_BUCKETS + 2
    reader.ends = {("t", 0): (0, end + 5000)}  # the consumer stops; 5,000 records arrive
    await monitor.check_lag()
    assert [v.condition for v in channel.posts] == [Condition.CONSUMER_LAG]
    assert "grew 3x" in channel.posts[0].text


async def test_the_flat_figures_agree_with_the_report() -> None:
    reader, clock = FakeLagReader(), FakeClock()
    reader.groups = [ConsumerGroup(group=g, state="Empty") for g in ("a", "b", "broken", "idle")]
    reader.commits = {"a": {"t": {0: 50, 1: 10}, "u": {0: 7}}, "b": {"t": {0: 100, 1: 3}},
                      "broken": "CoordinatorNotAvailable", "idle": {}}
    reader.ends = {("t", 0): (0, 100), ("t", 1): (0, 20), ("u", 0): (0, 7)}
    reader.timestamps = {("t", 0, 50): int((clock.now().timestamp() - 30) * 1000)}
    poller = LagPoller(reader, clock)
    snapshot = await poller.measure(cluster(), BOOTSTRAP, LagRule())
    stats, report = snapshot.stats(), snapshot.report()
    assert set(stats) == {"a", "b", "idle"} and snapshot.failed() == {"broken": "CoordinatorNotAvailable"}
    for group in report.groups:
        if group.error is None:
            figures = stats[group.group]
            assert (figures.max_lag, figures.sum_lag) == (group.max_lag, group.sum_lag)
            assert (figures.max_lag_seconds is None) == (group.max_lag_seconds is None)
            if figures.max_lag_seconds is not None and group.max_lag_seconds is not None:
                assert math.isclose(figures.max_lag_seconds, group.max_lag_seconds)
    assert stats["a"].max_lag_seconds == pytest.approx(30.0)
    assert snapshot.group_lag("a") == report.group("a")


async def test_a_group_without_a_commit_on_a_partition_another_group_reads_is_reported() -> None:
    """OffsetFetch answers -1 where a group never committed; the report skips that pair only."""
    reader, clock = FakeLagReader(), FakeClock()
    reader.groups = [ConsumerGroup(group=g, state="Empty") for g in ("fresh", "old")]
    reader.commits = {"fresh": {"t": {0: -1}}, "old": {"t": {0: 5}}}
    reader.ends = {("t", 0): (0, 10)}
    report = await LagPoller(reader, clock).poll(cluster(), BOOTSTRAP, LagRule())
    assert [(g.group, len(g.partitions)) for g in report.groups] == [("fresh", 0), ("old", 1)]


async def test_the_report_written_without_models_reads_back_as_the_models_report() -> None:
    """``lag_document`` (what the monitor stores) parses into exactly the ``LagReport`` the models
    give: names needing escapes, members and their partitions, an unreadable group, seconds from
    the table, from a record and unknown, a group with no commit on a partition."""
    reader, clock = FakeLagReader(), FakeClock()
    member = GroupMember(member_id="m-1", client_id='cli "ent"', host="10.0.0.1", partitions=(("t\\ü", 0),))
    reader.groups = [ConsumerGroup(group="a\nb", state="Stable", members=(member,)),
                     ConsumerGroup(group="simple", state="Empty", protocol_type=""),
                     ConsumerGroup(group="broken", state="Unknown"), ConsumerGroup(group="fresh", state="Empty")]
    reader.commits = {"a\nb": {"t\\ü": {0: 50, 1: 10}, "u": {0: 7}}, "simple": {"t\\ü": {0: 100, 1: 3}},
                      "broken": "CoordinatorNotAvailable", "fresh": {"t\\ü": {0: -1}}}
    reader.ends = {("t\\ü", 0): (0, 100), ("t\\ü", 1): (2, 20), ("u", 0): (0, 7)}
    reader.timestamps = {("t\\ü", 0, 50): int((clock.now().timestamp() - 30) * 1000)}
    poller = LagPoller(reader, clock)
    await poller.measure(cluster(), BOOTSTRAP, LagRule())
    clock.advance(5)
    reader.ends = {("t\\ü", 0): (0, 110), ("t\\ü", 1): (2, 40), ("u", 0): (0, 7)}
    reader.commits["simple"] = {"t\\ü": {0: 105, 1: 30}}
    snapshot = await poller.measure(cluster(), BOOTSTRAP, LagRule())
    report = snapshot.report()
    sources = {p.seconds_from for g in report.groups for p in g.partitions}
    assert sources == set(SecondsFrom)  # every kind of seconds value is in the comparison
    assert LagReport.model_validate_json(lag_document(snapshot).text) == report


class HeldTimestamps(FakeLagReader):
    """Record timestamps that arrive only when the test lets them (a slow fetch of many records)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()

    async def record_timestamps(self, cluster: ClusterRef, bootstrap_servers: str,
                                positions: Sequence[tuple[str, int, int]]) -> dict[tuple[str, int, int], int]:
        await self.release.wait()
        return await super().record_timestamps(cluster, bootstrap_servers, positions)


async def test_polls_every_second_do_not_wait_for_record_timestamps() -> None:
    """In background mode an evaluation returns while the record fetch is under way (seconds
    unknown meanwhile), polls do not start a second fetch, and the next poll after it uses the cache."""
    reader, clock = HeldTimestamps(), FakeClock()
    reader.groups = [ConsumerGroup(group="stuck", state="Empty")]
    reader.commits = {"stuck": {"t": {0: 0}}}
    reader.ends = {("t", 0): (0, 5000)}
    reader.timestamps = {("t", 0, 0): int((clock.now().timestamp() - 900) * 1000)}
    poller = LagPoller(reader, clock, timestamps_in_background=True)
    first = await asyncio.wait_for(poller.measure(cluster(), BOOTSTRAP, LagRule()), timeout=2)
    second = await asyncio.wait_for(poller.measure(cluster(), BOOTSTRAP, LagRule()), timeout=2)
    assert first.stats()["stuck"].max_lag_seconds is None and second.stats()["stuck"].max_lag_seconds is None
    reader.release.set()
    await asyncio.sleep(0.05)
    third = await poller.measure(cluster(), BOOTSTRAP, LagRule())
    assert third.stats()["stuck"].max_lag_seconds == pytest.approx(900.0)
    assert reader.fetched == [("t", 0, 0)]  # one fetch for the three polls


async def test_a_quick_record_fetch_still_lands_in_the_same_poll() -> None:
    """Background mode waits a moment (BACKGROUND_WAIT_S): one stuck consumer's record is read and
    used by the poll that found it missing, as without background mode."""
    reader, clock = FakeLagReader(), FakeClock()
    reader.groups = [ConsumerGroup(group="stuck", state="Empty")]
    reader.commits = {"stuck": {"t": {0: 0}}}
    reader.ends = {("t", 0): (0, 5000)}
    reader.timestamps = {("t", 0, 0): int((clock.now().timestamp() - 900) * 1000)}
    snapshot = await LagPoller(reader, clock, timestamps_in_background=True).measure(cluster(), BOOTSTRAP, LagRule())
    assert snapshot.stats()["stuck"].max_lag_seconds == pytest.approx(900.0)
    assert snapshot.report().groups[0].partitions[0].seconds_from is SecondsFrom.RECORD


class FailingLagReader(FakeLagReader):
    """Kafka stops answering when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    async def consumer_groups(self, cluster: ClusterRef, bootstrap_servers: str) -> list[ConsumerGroup]:
        if self.down:
            raise ConnectionError("Kafka is not answering")
        return await super().consumer_groups(cluster, bootstrap_servers)


async def test_a_failed_poll_keeps_the_good_figures_and_stores_its_reason_where_there_are_none() -> None:
    """``/kafka lag`` keeps showing the last figures through a blip (until they expire); where there
    are none, or only an earlier failure's, it says why the cluster cannot be polled."""
    reader, clock = FailingLagReader(), FakeClock()
    reader.groups = [ConsumerGroup(group="app", state="Stable")]
    reader.commits = {"app": {"t": {0: 100}}}
    reader.ends = {("t", 0): (0, 100)}
    monitor, _, reports = monitor_for(reader, clock, LagRule())
    await monitor.check_lag()
    good = await reports.latest("prod")
    assert good is not None and good.error is None and await reports.holds_figures("prod")
    reader.down = True
    clock.advance(1)
    assert await monitor.check_lag() is None
    assert await reports.latest("prod") == good
    reports.reports.clear()  # the figures expired
    await monitor.check_lag()
    failed = await reports.latest("prod")
    assert failed is not None and "Kafka is not answering" in (failed.error or "")
    assert not await reports.holds_figures("prod")
