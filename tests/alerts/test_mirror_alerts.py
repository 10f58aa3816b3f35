"""MirrorMaker 2 alerts without a JVM: the pure rules (FAILED connectors and tasks, the trace's first line,
the mirrored topics, lag from end offsets), the clusters file's `mirror_*` rules and their mistakes, and the
mirror monitor over the port fakes (a KafkaMirrorMaker2 in ``FakeMirrorMakers``, both clusters' offsets in
``FakeLagReader``s) posting, updating and resolving through the real evaluator."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.config.settings import ConfigError, load_clusters
from handlers.alerting.evaluator import AlertEvaluator
from handlers.alerting.mirror_monitor import MirrorMonitor, mirror_sources
from handlers.mirror_ports import ConnectorStatus, MirrorMakerStatus, TaskStatus
from handlers.ports import ClusterRef
from runbooks.alerting.lifecycle import AlertRules, Condition, ConditionRule, MirrorLagRule, Phase
from runbooks.alerting.mirror import (
    ConnectorHealth,
    TaskHealth,
    first_line,
    mirror_failures,
    mirror_lag,
    mirrored_topics,
)
from runbooks.rules.health import BrokerInfo, ClusterSnapshot, PartitionInfo
from tests.fakes.alerts import FakeClock, FakeLagReader, MemoryAlertStore, RecordingChannel, cluster
from tests.fakes.mirror_makers import FakeMirrorMakers

pytestmark = pytest.mark.timeout(10)
SOURCE = "east->west.MirrorSourceConnector"
CHECKPOINT = "east->west.MirrorCheckpointConnector"
TRACE = ("org.apache.kafka.common.KafkaException: Failed to construct kafka consumer\n"
         "\tat org.apache.kafka.clients.consumer.KafkaConsumer.<init>(KafkaConsumer.java:1)\n")


# -- the pure rules -------------------------------------------------------------------------------


def test_each_failed_connector_and_task_is_one_failure_with_its_restart_annotation() -> None:
    """A FAILED task of a RUNNING connector, and a FAILED connector: one failure each, with the Strimzi annotation
    that restarts exactly that; RUNNING and PAUSED ones are not failures."""
    found = mirror_failures("dr", [
        ConnectorHealth(name=SOURCE, state="RUNNING", tasks=(TaskHealth(id=0, state="RUNNING"),
                                                               TaskHealth(id=1, state="FAILED", trace=TRACE))),
        ConnectorHealth(name=CHECKPOINT, state="FAILED", trace="java.lang.IllegalStateException: boom\n\tat x"),
        ConnectorHealth(name="other", state="PAUSED", tasks=(TaskHealth(id=0, state="PAUSED"),)),
    ])
    assert [(f.subject, f.first_line, f.restart_annotation) for f in found] == [
        (f"mirror/dr/{SOURCE}/task-1", "org.apache.kafka.common.KafkaException: Failed to construct kafka consumer",
         f"strimzi.io/restart-connector-task={SOURCE}:1"),
        (f"mirror/dr/{CHECKPOINT}", "java.lang.IllegalStateException: boom",
         f"strimzi.io/restart-connector={CHECKPOINT}:includeTasks,onlyFailed"),
    ]


def test_a_trace_is_cut_to_its_first_line_and_a_missing_one_is_said() -> None:
    assert first_line("\n  java.io.IOException: disk\n\tat a.b") == "java.io.IOException: disk"
    assert first_line(None) == first_line("") == "Connect gave no trace"
    assert len(first_line("x" * 1000)) == 300


def test_mirrored_topics_follow_the_pattern_whole_names_and_mirrormaker_excludes() -> None:
    """Comma-separated regexes matched against the whole name; internal topics, replicas, __ topics and
    heartbeats never; an invalid regex matches nothing."""
    topics = ["orders.eu", "orders", "orders-internal", "x.orders", "__consumer_offsets", "heartbeats", "pay.replica",
              "payments"]
    assert mirrored_topics(topics, "orders.*, payments") == ["orders", "orders.eu", "payments"]
    assert mirrored_topics(topics, ".*") == ["orders", "orders.eu", "payments", "x.orders"]
    assert mirrored_topics(topics, "orders.(*") == []


def test_lag_is_the_source_end_minus_the_remote_partitions_end() -> None:
    """Per source partition against <alias>.<topic> (or the same name with the identity policy); a missing remote
    partition counts every source record and is named."""
    source = {("orders", 0): 100, ("orders", 1): 50, ("new", 0): 7}
    target = {("east.orders", 0): 90, ("east.orders", 1): 50}
    lag = mirror_lag("dr", source, target, "east", identity=False)
    assert lag.records == 10 + 0 + 7
    assert [(p.topic, p.partition, p.records) for p in lag.worst()] == [("orders", 0, 10), ("new", 0, 7)]
    assert lag.missing_remote == ["new"]
    same = mirror_lag("dr", source, {("orders", 0): 100, ("orders", 1): 50, ("new", 0): 7}, "east", identity=True)
    assert same.records == 0


def test_a_spec_gives_each_mirrors_source_pattern_and_policy() -> None:
    spec = {"mirrors": [
        {"source": {"alias": "east", "bootstrapServers": "e:9092"}, "topicsPattern": "orders.*",
         "sourceConnector": {"config": {"replication.policy.class":
                                        "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"}}},
        {"source": {"alias": "south"}, "topicsPattern": "x"},  # no address: cannot be measured, skipped
    ]}
    (only,) = mirror_sources(spec)
    assert (only.alias, only.bootstrap_servers, only.topics_pattern, only.identity) == ("east", "e:9092", "orders.*",
                                                                                        True)


# -- the clusters file ----------------------------------------------------------------------------


def load(tmp_path: Path, block: str) -> AlertRules:
    path = tmp_path / "clusters.yaml"
    path.write_text(f"clusters:\n  west:\n    approvers: [U01ANA]\n    alerts: {block}\n")
    return load_clusters(path)["west"].alerts


def test_mirror_rules_have_defaults_and_are_read_from_the_alerts_block(tmp_path: Path) -> None:
    """Defaults: poll 15 s, FAILED at once, lag 10,000 records or 5 min held 1 min; the block overrides each, and
    null turns one lag threshold off."""
    defaults = AlertRules()
    assert (defaults.mirror_poll_s, defaults.mirror_failed.for_s) == (15.0, 0.0)
    assert defaults.mirror_lag == MirrorLagRule(for_s=60.0, max_records=10_000, max_seconds=300.0)
    rules = load(tmp_path, "{mirror_poll: 2s, mirror_failed: {for: 10s}, "
                           "mirror_lag: {for: 0s, max_records: 500, max_seconds: null}}")
    assert (rules.mirror_poll_s, rules.mirror_failed.for_s) == (2.0, 10.0)
    assert rules.mirror_lag == MirrorLagRule(for_s=0.0, max_records=500, max_seconds=None)
    assert load(tmp_path, "{mirror_lag: {max_seconds: 2m}}").mirror_lag.max_seconds == 120.0


@pytest.mark.parametrize(("block", "fragment"), [
    ("{mirror_lag: {max_records: null, max_seconds: null}}", "mirror_lag needs max_records"),
    ("{mirror_lag: {max_records: 0}}", "greater than or equal to 1"),
    ("{mirror_lag: {max_seconds: soon}}", "is not a duration"),
    ("{mirror_lag: {max_seconds: 0s}}", "max_seconds must be a duration above 0"),
    ("{mirror_lag: {max_lag: 5}}", "max_lag"),
    ("{mirror_poll: 0}", "greater than 0"),
    ("{mirror_failed: {after: 1m}}", "after"),
])
def test_mistakes_in_the_mirror_rules_are_named(tmp_path: Path, block: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load(tmp_path, block)


# -- the monitor over the port fakes --------------------------------------------------------------


class ReaderByAddress:
    """The LagReader port of two clusters: each bootstrap address is one cluster's fake. The topics the
    KafkaAdmin port's snapshot lists are those the fake has offsets for (its other fields stay empty)."""

    def __init__(self, **clusters: FakeLagReader) -> None:
        self.clusters = clusters

    async def snapshot(self, cluster: ClusterRef, bootstrap_servers: str) -> ClusterSnapshot:
        partitions = tuple(PartitionInfo(topic=t, partition=p, leader=0, replicas=(0,), isr=(0,))
                           for t, p in sorted(self.clusters[bootstrap_servers].ends))
        return ClusterSnapshot(taken_at=datetime.now(UTC), brokers=(BrokerInfo(id=0),), partitions=partitions)

    async def log_offsets(self, cluster: ClusterRef, bootstrap_servers: str,
                          partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, int]]:
        return await self.clusters[bootstrap_servers].log_offsets(cluster, bootstrap_servers, partitions)

    async def record_timestamps(self, cluster: ClusterRef, bootstrap_servers: str,
                                positions: Sequence[tuple[str, int, int]]) -> dict[tuple[str, int, int], int]:
        return await self.clusters[bootstrap_servers].record_timestamps(cluster, bootstrap_servers, positions)


SPEC: dict[str, Any] = {
    "target": {"alias": "west", "bootstrapServers": "west:9092"},
    "mirrors": [{"source": {"alias": "east", "bootstrapServers": "east:9092"}, "topicsPattern": "orders.*",
                 "sourceConnector": {"tasksMax": 1}, "checkpointConnector": {}}],
}
RULES = AlertRules(update_interval_s=0, mirror_failed=ConditionRule(cooldown_s=0),
                   mirror_lag=MirrorLagRule(for_s=0, max_records=100, max_seconds=None, cooldown_s=0))


async def monitor_of(mirrors: FakeMirrorMakers, reader: ReaderByAddress,
                     clock: FakeClock) -> tuple[MirrorMonitor, RecordingChannel]:
    west = cluster("west", rules=RULES)
    channel = RecordingChannel()
    evaluator = AlertEvaluator(clusters={"west": west}, store=MemoryAlertStore(), clock=clock, owner="a",
                               channel=channel)

    async def bootstrap() -> str:
        return "west:9092"

    return MirrorMonitor(west, mirrors=mirrors, admin=reader, reader=reader,  # type: ignore[arg-type]
                         evaluator=evaluator, bootstrap=bootstrap, now=lambda: datetime.now(UTC)), channel


def offsets(reader: FakeLagReader, topic: str, ends: Sequence[int]) -> None:
    reader.ends.update({(topic, p): (0, end) for p, end in enumerate(ends)})


async def test_a_failed_task_posts_one_alert_with_its_trace_and_restart_button_then_resolves() -> None:
    """The operator reports task 0 FAILED: one alert with the trace's first line and a Restart task 0 button that
    runs /kafka mirror-restart; still FAILED: no second post; RUNNING again: the same message resolved."""
    mirrors, east, west = FakeMirrorMakers(), FakeLagReader(), FakeLagReader()
    offsets(east, "orders", [10, 10, 10])
    offsets(west, "east.orders", [10, 10, 10])
    ref = ClusterRef(name="west", namespace="kafka", kafka="west")
    await mirrors.create_mirror_maker(ref, "dr", SPEC)
    running = ConnectorStatus(name=SOURCE, state="RUNNING", tasks=(TaskStatus(id=0, state="RUNNING"),))
    failed = running.model_copy(update={"tasks": (TaskStatus(id=0, state="FAILED", trace=TRACE),)})
    mirrors.operator_reports("kafka", "dr", connectors=(failed,))
    monitor, channel = await monitor_of(mirrors, ReaderByAddress(**{"east:9092": east, "west:9092": west}),
                                        FakeClock())
    await monitor.check()
    await monitor.check()
    (post,) = channel.posts
    assert post.condition is Condition.MIRROR_FAILED and post.subject == f"mirror/dr/{SOURCE}/task-0"
    assert f"MirrorMaker 2 dr: task 0 of {SOURCE} FAILED" in post.headline
    assert "Failed to construct kafka consumer" in post.text and "\tat " not in post.text
    assert f"strimzi.io/restart-connector-task={SOURCE}:0" in post.text
    restart = [b for b in post.buttons if b.action == "command"]
    assert [(b.label, b.value) for b in restart] == [("Restart task 0", f"/kafka mirror-restart west dr '{SOURCE}' "
                                                                        "--task 0")]
    mirrors.operator_reports("kafka", "dr", connectors=(running,))
    await monitor.check()
    assert len(channel.posts) == 1
    assert channel.updates[-1][1].phase is Phase.RESOLVED and channel.updates[-1][1].subject == post.subject


class FlakyMirrorMakers(FakeMirrorMakers):
    """The port whose list fails while ``away`` (the API server unreachable)."""

    away = False

    async def list_mirror_makers(self, cluster: ClusterRef) -> list[MirrorMakerStatus]:
        if self.away:
            raise ConnectionError("the API server is away")
        return await super().list_mirror_makers(cluster)


async def test_a_deleted_mirror_resolves_its_alerts_and_a_failed_list_resolves_nothing() -> None:
    """A FAILED connector's alert stays as it is while the resources cannot be listed, and resolves once the
    KafkaMirrorMaker2 is deleted."""
    mirrors, east, west = FlakyMirrorMakers(), FakeLagReader(), FakeLagReader()
    ref = ClusterRef(name="west", namespace="kafka", kafka="west")
    await mirrors.create_mirror_maker(ref, "dr", SPEC)
    mirrors.operator_reports("kafka", "dr", connectors=(ConnectorStatus(name=CHECKPOINT, state="FAILED", trace=TRACE),))
    monitor, channel = await monitor_of(mirrors, ReaderByAddress(**{"east:9092": east, "west:9092": west}),
                                        FakeClock())
    await monitor.check()
    assert [p.subject for p in channel.posts] == [f"mirror/dr/{CHECKPOINT}"]
    mirrors.away = True
    await monitor.check()
    assert channel.updates == []  # unknown is not healthy
    mirrors.away = False
    await mirrors.delete_mirror_maker(ref, "dr")
    await monitor.check()
    assert channel.updates[-1][1].phase is Phase.RESOLVED


async def test_lag_over_the_records_threshold_is_one_alert_per_mirror_with_its_worst_partitions() -> None:
    """east's orders is 150 records ahead of west's east.orders (threshold 100): one mirror_lag alert naming the
    worst partitions, the age of the oldest record not copied and the paused source connector; caught up:
    resolved."""
    mirrors, east, west = FakeMirrorMakers(), FakeLagReader(), FakeLagReader()
    offsets(east, "orders", [200, 100, 10])
    offsets(west, "east.orders", [100, 50, 10])
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    east.timestamps = {("orders", 0, 100): now_ms - 42_000, ("orders", 1, 50): now_ms - 7_000}
    ref = ClusterRef(name="west", namespace="kafka", kafka="west")
    await mirrors.create_mirror_maker(ref, "dr", SPEC)
    mirrors.operator_reports("kafka", "dr", connectors=(ConnectorStatus(name=SOURCE, state="PAUSED"),))
    reader = ReaderByAddress(**{"east:9092": east, "west:9092": west})
    monitor, channel = await monitor_of(mirrors, reader, FakeClock())
    await monitor.check()
    (post,) = channel.posts
    assert post.condition is Condition.MIRROR_LAG and post.subject == "mirror/dr" and post.value == 150
    assert "150 records behind" in post.text and "orders-0 100, orders-1 50" in post.text
    assert "is 42 s old" in post.text or "is 41 s old" in post.text
    assert f"{SOURCE} is PAUSED" in post.text
    offsets(west, "east.orders", [200, 100, 10])
    await monitor.check()
    assert channel.updates[-1][1].phase is Phase.RESOLVED and len(channel.posts) == 1


async def test_a_remote_topic_not_created_yet_counts_every_source_record_and_is_named() -> None:
    """west has no east.orders yet: its offsets are not asked for (a missing topic only times out), and every
    record of east's orders is behind."""
    mirrors, east, west = FakeMirrorMakers(), FakeLagReader(), FakeLagReader()
    offsets(east, "orders", [120, 0, 0])
    await mirrors.create_mirror_maker(ClusterRef(name="west", namespace="kafka", kafka="west"), "dr", SPEC)
    monitor, channel = await monitor_of(mirrors, ReaderByAddress(**{"east:9092": east, "west:9092": west}),
                                        FakeClock())
    await monitor.check()
    (post,) = channel.posts
    assert post.value == 120 and "no remote topic yet for orders" in post.text
    assert west.calls == []  # nothing asked of west's offsets


class NoRecordTimes(FakeLagReader):
    """A source whose records cannot be fetched (a consumer that does not start in time)."""

    async def record_timestamps(self, cluster: ClusterRef, bootstrap_servers: str,
                                positions: Sequence[tuple[str, int, int]]) -> dict[tuple[str, int, int], int]:
        raise TimeoutError("the consumer did not start in time")


async def test_records_behind_are_alerted_even_when_their_age_cannot_be_read() -> None:
    mirrors, east, west = FakeMirrorMakers(), NoRecordTimes(), FakeLagReader()
    offsets(east, "orders", [300, 0, 0])
    offsets(west, "east.orders", [0, 0, 0])
    await mirrors.create_mirror_maker(ClusterRef(name="west", namespace="kafka", kafka="west"), "dr", SPEC)
    monitor, channel = await monitor_of(mirrors, ReaderByAddress(**{"east:9092": east, "west:9092": west}),
                                        FakeClock())
    await monitor.check()
    (post,) = channel.posts
    assert post.value == 300 and "300 records behind (" in post.text and " s old" not in post.text


async def test_a_managed_source_is_read_where_the_bot_reaches_it_not_at_the_specs_address() -> None:
    """The source alias names a managed cluster: its offsets are read at the address its own monitor uses (the
    spec's east:9092 may be reachable from MirrorMaker 2's pod only)."""
    mirrors, east, west = FakeMirrorMakers(), FakeLagReader(), FakeLagReader()
    offsets(east, "orders", [500, 0, 0])
    offsets(west, "east.orders", [0, 0, 0])
    await mirrors.create_mirror_maker(ClusterRef(name="west", namespace="kafka", kafka="west"), "dr", SPEC)
    reader = ReaderByAddress(**{"east.example:9094": east, "west:9092": west})  # east:9092 would fail: unknown
    channel = RecordingChannel()
    west_cluster, east_cluster = cluster("west", rules=RULES), cluster("east")
    evaluator = AlertEvaluator(clusters={"west": west_cluster}, store=MemoryAlertStore(), clock=FakeClock(),
                               owner="a", channel=channel)

    async def bootstrap() -> str:
        return "west:9092"

    async def managed_address(managed: Any) -> str:
        assert managed is east_cluster
        return "east.example:9094"

    monitor = MirrorMonitor(west_cluster, mirrors=mirrors, admin=reader, reader=reader,  # type: ignore[arg-type]
                            evaluator=evaluator, bootstrap=bootstrap, now=lambda: datetime.now(UTC),
                            clusters={"west": west_cluster, "east": east_cluster}, source_bootstrap=managed_address)
    await monitor.check()
    (post,) = channel.posts
    assert post.value == 500
