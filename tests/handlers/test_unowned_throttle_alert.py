"""The unowned-throttle alert through the monitor: the fake cluster's throttles (``FakeStrimzi``), the
runs in the in-memory run repository, alert state in a real Redis. It waits out its ``for`` window,
names what is throttled with the commands that clear it, resolves when the throttles go or a run
that moves replicas owns them, and is never raised while such a run is active."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from bot.config.settings import load_clusters
from bot.store.alert_state import RedisAlertStore
from handlers.alerting.evaluator import AlertEvaluator
from handlers.alerting.monitoring import ClusterMonitor, KubeState
from handlers.replica_moves import ReplicationThrottle
from runbooks.alerting.lifecycle import AlertKey, AlertRules, Condition, Phase
from runbooks.engine.models import ApprovalPolicy, Run, RunState
from runbooks.rules.reassignment import PartitionMove
from tests.fakes import FakeStrimzi
from tests.fakes.alerts import FakeClock, MemoryLagReports, RecordingChannel, cluster
from tests.fakes.store import MemoryRunRepository

pytestmark = pytest.mark.timeout(20)

KEY = AlertKey(cluster="prod", condition=Condition.UNOWNED_THROTTLES, subject="replication-throttles")
MIB = 1024 * 1024
TOOL = "kafka-configs.sh --bootstrap-server prod:9092"


class Setup:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.kafka = FakeStrimzi("prod", zookeeper=False, brokers=3)
        self.runs = MemoryRunRepository()
        self.clock = FakeClock()
        self.start = self.clock.at
        self.channel = RecordingChannel()
        self.store = RedisAlertStore(redis)
        prod = cluster(rules=AlertRules(update_interval_s=0))
        evaluator = AlertEvaluator(clusters={"prod": prod}, store=self.store, clock=self.clock, owner="a",
                                   channel=self.channel, runs=self.runs)
        self.monitor = ClusterMonitor(prod, admin=self.kafka, gateway=self.kafka, poller=None,  # type: ignore[arg-type]
                                      reports=MemoryLagReports(), evaluator=evaluator, kube=KubeState,
                                      now=self.clock.now, runs=self.runs)

    async def throttle(self) -> None:
        """What a move of orders-0 from [0, 1] to [0, 2] sets: 20 MiB/s on brokers 0-2, its current
        replicas in the leader list, broker 2 in the follower list."""
        move = PartitionMove(topic="orders", partition=0, old=(0, 1), new=(0, 2), leader=0, size_bytes=0)
        await self.kafka.set_replication_throttles(self.monitor.cluster.ref, "prod:9092",
                                                   ReplicationThrottle.for_moves([move], 20 * MIB))

    async def poll_at(self, *seconds: float) -> None:
        """One throttle poll at each of these times (seconds from the start)."""
        for at in seconds:
            self.clock.at = self.start + timedelta(seconds=at)
            await self.monitor.check_throttles()

    async def phase(self) -> Phase | None:
        loaded = await self.store.load(KEY.id)
        return None if loaded is None else loaded[0].phase

    async def start_run(self, runbook: str, run_id: str = "r-0000beef") -> None:
        now = self.clock.now()
        run = Run(id=run_id, runbook=runbook, cluster="prod", requested_by="U_ANA", created_at=now, updated_at=now,
                  steps=(), plan_hash="h", policy=ApprovalPolicy(approvers=("U_APP",)), state=RunState.RUNNING)
        await self.runs.create(run, [])

    async def finish_run(self, run_id: str = "r-0000beef") -> None:
        loaded = await self.runs.load(run_id)
        assert loaded is not None
        run, version = loaded
        await self.runs.save(run.model_copy(update={"state": RunState.SUCCEEDED}), expected_version=version, audit=[])


async def test_unowned_throttles_alert_after_five_minutes_not_before_with_the_commands(
        redis_client: aioredis.Redis) -> None:
    """Throttles and no run: pending for 5 min (the default window), then one message naming the
    brokers with their rate, the topic with its replica count, and the exact clearing commands."""
    s = Setup(redis_client)
    await s.throttle()
    await s.poll_at(0, 60, 120, 240, 299)
    assert s.channel.posts == [] and await s.phase() is Phase.PENDING
    await s.poll_at(300)
    assert len(s.channel.posts) == 1
    view = s.channel.posts[0]
    assert view.text == "\n".join((
        "🔴 prod: replication throttles left on 3 brokers and 1 topic with no run owning them",
        "replication throttles are set on prod while no replace-broker or scale run is active there (left by hand, "
        "by another tool, or by a run that ended without clearing them): they slow every out-of-sync follower of "
        "the listed partitions until someone removes them",
        "Since 12:05 UTC (0 s) · now 4 · steady · worst 4",
        "Broker rates: brokers 0, 1, 2: leader 20 MiB/s, follower 20 MiB/s",
        "Topics with throttled replicas: orders (3 throttled replicas)",
        "To clear them (the bot does not: check nobody still needs them):",
        f'for id in 0 1 2; do {TOOL} --entity-type brokers --entity-name "$id" --alter --delete-config '
        "leader.replication.throttled.rate,follower.replication.throttled.rate; done",
        f"{TOOL} --entity-type topics --entity-name orders --alter --delete-config "
        "leader.replication.throttled.replicas,follower.replication.throttled.replicas",
        f"Alert {KEY.id} · /kafka snooze {KEY.id} 2h",
    ))
    assert [b.label for b in view.buttons] == ["Snooze 30 min", "Snooze 2 h", "Snooze 1 day"]


async def test_the_alert_resolves_when_the_throttles_are_cleared(redis_client: aioredis.Redis) -> None:
    """Someone runs the commands: the next poll edits the message to resolved, commands gone."""
    s = Setup(redis_client)
    await s.throttle()
    await s.poll_at(0, 300)
    assert len(s.channel.posts) == 1
    await s.kafka.remove_replication_throttles(s.monitor.cluster.ref, "prod:9092", [0, 1, 2], ["orders"])
    await s.poll_at(360)
    assert await s.phase() is Phase.RESOLVED
    ref, resolved = s.channel.updates[-1]
    assert ref == "m1" and resolved.phase is Phase.RESOLVED and "resolved" in resolved.headline
    assert not any("kafka-configs.sh" in line for line in resolved.lines)


async def test_no_alert_while_a_replace_broker_run_owns_them_and_one_after_it_ends(
        redis_client: aioredis.Redis) -> None:
    """A replace-broker run is active: its throttles, never reported however long it moves. It ends
    and leaves them: reported 5 min later."""
    s = Setup(redis_client)
    await s.start_run("replace-broker")
    await s.throttle()
    await s.poll_at(0, 300, 600, 1200)
    assert s.channel.posts == [] and await s.phase() is None
    await s.finish_run()
    await s.poll_at(1260, 1500)
    assert s.channel.posts == []
    await s.poll_at(1560)
    assert len(s.channel.posts) == 1


async def test_a_firing_alert_resolves_when_a_scale_run_takes_the_throttles_over(
        redis_client: aioredis.Redis) -> None:
    """A scale run starts on a cluster with leftover throttles: they are its own now (it clears
    them in its cleanup step), so the alert resolves."""
    s = Setup(redis_client)
    await s.throttle()
    await s.poll_at(0, 300)
    assert len(s.channel.posts) == 1
    await s.start_run("scale")
    await s.poll_at(360)
    assert await s.phase() is Phase.RESOLVED


async def test_a_restart_run_does_not_own_throttles(redis_client: aioredis.Redis) -> None:
    """A rolling restart sets no throttle: throttles during one are someone else's."""
    s = Setup(redis_client)
    await s.start_run("restart")
    await s.throttle()
    await s.poll_at(0, 300)
    assert len(s.channel.posts) == 1


async def test_a_cluster_wide_default_set_by_hand_gets_the_entity_default_command(
        redis_client: aioredis.Redis) -> None:
    """``kafka-configs --entity-default`` left a follower rate on every broker: one command with
    --entity-default, none per broker."""
    s = Setup(redis_client)
    s.kafka.default_throttles = {"follower.replication.throttled.rate": str(5 * MIB)}
    await s.poll_at(0, 300)
    [view] = s.channel.posts
    assert view.headline == "🔴 prod: replication throttles left on 3 brokers with no run owning them"
    assert view.lines[2:5] == (
        "Cluster-wide default rate (in effect on brokers 0, 1, 2): follower 5 MiB/s",
        "To clear them (the bot does not: check nobody still needs them):",
        f"{TOOL} --entity-type brokers --entity-default --alter --delete-config follower.replication.throttled.rate",
    )


def test_the_poll_and_window_are_read_from_the_clusters_file(tmp_path: Path) -> None:
    """``throttle_poll`` and ``unowned_throttles: {for, cooldown, enabled}``; absent: 60 s and 5 min."""
    path = tmp_path / "clusters.yaml"
    path.write_text("clusters:\n  prod:\n    approvers: [U01ANA]\n    alerts:\n      throttle_poll: 30s\n"
                    "      unowned_throttles: {for: 15m}\n  dev:\n    approvers: [U01ANA]\n")
    clusters = load_clusters(path)
    prod, dev = clusters["prod"].alerts, clusters["dev"].alerts
    assert (prod.throttle_poll_s, prod.unowned_throttles.for_s) == (30.0, 900.0)
    assert (dev.throttle_poll_s, dev.unowned_throttles.for_s) == (60.0, 300.0)
