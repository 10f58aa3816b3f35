"""One lag poll over a fake reader: the order of reads, the sample tables, the record-timestamp
fallback and its cache and budget, groups without members, and one failing group."""

from __future__ import annotations

from handlers.alerting.evaluator import AlertEvaluator
from handlers.alerting.lag_models import SecondsFrom
from handlers.alerting.lag_poll import ABSENT_RETRY_S, LagPoller, selected
from handlers.alerting.monitoring import ClusterMonitor, KubeState
from handlers.ports import ConsumerGroup, GroupMember, KafkaResourceStatus
from runbooks.alerting.lifecycle import AlertRules, Condition, LagRule
from tests.fakes.alerts import (
    FakeClock,
    FakeLagReader,
    MemoryAlertStore,
    MemoryLagReports,
    RecordingChannel,
    cluster,
)

BOOTSTRAP = "k:9092"
RULE = LagRule()


def reader_with(*groups: str) -> FakeLagReader:
    reader = FakeLagReader()
    reader.groups = [ConsumerGroup(group=g, state="Empty") for g in groups]
    return reader


async def test_committed_offsets_are_read_before_the_log_ends() -> None:
    """Read the commits first: a commit racing the poll can only overstate lag, never make it negative."""
    reader = reader_with("g")
    reader.commits = {"g": {"t": {0: 5}}}
    reader.ends = {("t", 0): (0, 10)}
    await LagPoller(reader, FakeClock()).poll(cluster(), BOOTSTRAP, RULE)
    assert reader.calls[:3] == ["groups", "committed", "log_offsets"]


async def test_seconds_come_from_the_sampled_line_once_it_covers_the_commit() -> None:
    """Log end sampled at 100 then 200 (10 s apart); a consumer stopped at 150 is 5 s + the time since behind."""
    reader, clock = reader_with("g"), FakeClock()
    reader.commits = {"g": {"t": {0: 100}}}
    poller = LagPoller(reader, clock)
    reader.ends = {("t", 0): (0, 100)}
    first = await poller.poll(cluster(), BOOTSTRAP, RULE)
    assert first.groups[0].partitions[0].seconds_from is SecondsFrom.CAUGHT_UP
    reader.commits = {"g": {"t": {0: 150}}}
    clock.advance(10)
    reader.ends = {("t", 0): (0, 200)}
    report = await poller.poll(cluster(), BOOTSTRAP, RULE)
    part = report.groups[0].partitions[0]
    assert (part.lag, part.seconds_from) == (50, SecondsFrom.TABLE)
    assert part.seconds == 5.0
    assert reader.fetched == []  # the line answered: no record was read


async def test_an_idle_topic_with_an_old_commit_reads_the_record_time_once() -> None:
    """The table cannot place a commit older than its samples: the record's own timestamp answers,
    and the next poll uses the cached timestamp instead of fetching again."""
    reader, clock = reader_with("g"), FakeClock()
    reader.commits = {"g": {"t": {0: 40}}}
    reader.ends = {("t", 0): (0, 100)}
    produced = clock.now().timestamp() - 7200  # the record at offset 40 is two hours old
    reader.timestamps = {("t", 0, 40): int(produced * 1000)}
    poller = LagPoller(reader, clock)
    report = await poller.poll(cluster(), BOOTSTRAP, RULE)
    part = report.groups[0].partitions[0]
    assert part.seconds_from is SecondsFrom.RECORD and abs(part.seconds - 7200) < 1  # type: ignore[operator]
    clock.advance(30)
    again = (await poller.poll(cluster(), BOOTSTRAP, RULE)).groups[0].partitions[0]
    assert abs(again.seconds - 7230) < 1  # type: ignore[operator]
    assert reader.fetched == [("t", 0, 40)]


async def test_record_fetches_are_bounded_per_poll_worst_first() -> None:
    """With a budget of 2, the two largest lags are fetched; the rest stay unknown for a later poll."""
    reader = reader_with("g")
    reader.commits = {"g": {"t": {0: 90, 1: 10, 2: 50}}}
    reader.ends = {("t", 0): (0, 100), ("t", 1): (0, 100), ("t", 2): (0, 100)}
    report = await LagPoller(reader, FakeClock(), timestamp_budget=2).poll(cluster(), BOOTSTRAP, RULE)
    assert sorted(reader.fetched) == [("t", 1, 10), ("t", 2, 50)]
    assert report.groups[0].partitions[0].seconds_from is SecondsFrom.UNKNOWN


async def test_one_failing_group_does_not_blank_the_others() -> None:
    """The broken group carries its error; the healthy one is computed as usual."""
    reader = reader_with("broken", "healthy")
    reader.commits = {"broken": "CoordinatorNotAvailableError", "healthy": {"t": {0: 3}}}
    reader.ends = {("t", 0): (0, 8)}
    report = await LagPoller(reader, FakeClock()).poll(cluster(), BOOTSTRAP, RULE)
    broken, healthy = report.group("broken"), report.group("healthy")
    assert broken is not None and broken.error == "CoordinatorNotAvailableError" and broken.partitions == ()
    assert healthy is not None and healthy.max_lag == 5


async def test_groups_without_members_are_reported_with_their_lag() -> None:
    """An Empty group (its consumers are down) is exactly the one to report."""
    reader = FakeLagReader()
    reader.groups = [ConsumerGroup(group="dead", state="Empty"),
                     ConsumerGroup(group="live", state="Stable", members=(
                         GroupMember(member_id="m1", client_id="c1", host="10.0.0.1", partitions=(("t", 0),)),))]
    reader.commits = {"dead": {"t": {0: 1}}, "live": {"t": {0: 9}}}
    reader.ends = {("t", 0): (0, 10)}
    report = await LagPoller(reader, FakeClock()).poll(cluster(), BOOTSTRAP, RULE)
    dead, live = report.group("dead"), report.group("live")
    assert dead is not None and dead.max_lag == 9 and dead.members == ()
    assert live is not None and live.partitions[0].client_id == "c1" and live.partitions[0].host == "10.0.0.1"


async def test_no_commit_and_unknown_end_offsets_are_left_out() -> None:
    """-1 means the group never committed there; a partition whose end could not be read is skipped."""
    reader = reader_with("g")
    reader.commits = {"g": {"t": {0: -1, 1: 4, 2: 4}}}
    reader.ends = {("t", 1): (0, 4)}
    report = await LagPoller(reader, FakeClock()).poll(cluster(), BOOTSTRAP, RULE)
    assert [p.partition for p in report.groups[0].partitions] == [1]


async def test_a_recreated_topic_restarts_its_table() -> None:
    """The log end went back (topic deleted and recreated): the table starts again instead of refusing samples."""
    reader, clock = reader_with("g"), FakeClock()
    reader.commits = {"g": {"t": {0: 0}}}
    poller = LagPoller(reader, clock)
    reader.ends = {("t", 0): (0, 1000)}
    await poller.poll(cluster(), BOOTSTRAP, RULE)
    clock.advance(5)
    reader.ends = {("t", 0): (0, 10)}
    await poller.poll(cluster(), BOOTSTRAP, RULE)
    assert poller.tables[("t", 0)].offsets == [10]


def test_group_include_and_exclude_patterns() -> None:
    """include_groups must match; exclude_groups must not."""
    rule = LagRule(include_groups="orders-.*", exclude_groups=".*-test")
    assert selected("orders-app", rule) and not selected("orders-test", rule) and not selected("billing", rule)


async def test_the_lag_check_stores_the_report_and_raises_the_alert() -> None:
    """ClusterMonitor.check_lag: the report goes to the store every replica reads; a stuck group alerts."""
    reader, clock = reader_with("stuck"), FakeClock()
    reader.commits = {"stuck": {"t": {0: 0}}}
    reader.ends = {("t", 0): (0, 5000)}
    reader.timestamps = {("t", 0, 0): int((clock.now().timestamp() - 900) * 1000)}
    rules = AlertRules(consumer_lag=LagRule(for_s=0, max_lag_seconds=600))
    channel, reports = RecordingChannel(), MemoryLagReports()
    evaluator = AlertEvaluator(clusters={"prod": cluster(rules=rules)}, store=MemoryAlertStore(), clock=clock,
                               owner="a", channel=channel)
    synced = KubeState(synced=True, kafka=KafkaResourceStatus(ready=True, bootstrap_servers=BOOTSTRAP))
    monitor = ClusterMonitor(cluster(rules=rules), admin=None, gateway=None,  # type: ignore[arg-type]
                             poller=LagPoller(reader, clock), reports=reports, evaluator=evaluator,
                             kube=lambda: synced, now=clock.now)
    await monitor.check_lag()
    assert await reports.latest("prod") is not None
    assert [v.condition for v in channel.posts] == [Condition.CONSUMER_LAG]
    assert "Members: none" in channel.posts[0].text



async def test_a_position_with_no_record_is_not_fetched_at_every_poll() -> None:
    """A committed offset no record can answer (deleted, compacted) is asked for once, then again
    only after ABSENT_RETRY_S: a poll every second must not seek on it every second."""
    reader, clock = reader_with("g"), FakeClock()
    reader.commits = {"g": {"t": {0: 3}}}
    reader.ends = {("t", 0): (0, 10)}
    poller = LagPoller(reader, clock)
    for _ in range(5):
        await poller.poll(cluster(), BOOTSTRAP, RULE)
        clock.advance(1)
    assert reader.fetched == [("t", 0, 3)]
    clock.advance(ABSENT_RETRY_S)
    await poller.poll(cluster(), BOOTSTRAP, RULE)
    assert reader.fetched == [("t", 0, 3)] * 2
