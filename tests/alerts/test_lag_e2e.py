"""Consumer lag alerts end to end: the bot as a console subprocess on the session sandbox (real
brokers) and a real redis-server. Producers, consumers and commits are plain kafka-python; the
bot is never patched. Two cluster entries point at the same Kafka with different rules (split by
group name), so one process shows both a cooldown of 0 and one of 10 minutes."""

from __future__ import annotations

import secrets
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from tests.alerts.harness import (
    alert_events,
    bot,
    clusters_file,
    commit,
    create_topic,
    drain,
    group_in,
    lag_report,
    posted,
    produce,
    record_timestamp_ms,
)
from tests.fixtures.bot_process import BotProcess
from tests.fixtures.redis_server import RedisServer, free_port
from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.sandbox

SEEN_S = 15  # the seconds threshold of the `lagmon` cluster's lag rule
RULES = {
    # lag in seconds, no cooldown (snooze must then be what mutes a new occurrence)
    "lagmon": "{health_poll: 1s, lag_poll: 1s, update_interval: 1s, consumer_lag: {for: 0s, cooldown: 0s, "
              f"max_lag_seconds: {SEEN_S}s, growth: {{enabled: false}}, "
              "include_groups: 'steady-.*|idle-.*|snooze-.*'}}",
    # lag in records, a 10 minute cooldown (a flap reopens the message instead of posting)
    "lagflap": "{health_poll: 1s, lag_poll: 1s, update_interval: 1s, consumer_lag: {for: 0s, cooldown: 10m, "
               "max_lag: 100, max_lag_seconds: 1d, growth: {enabled: false}, include_groups: 'flap-.*'}}",
}


def name(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def redis_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("alerts-redis"))
    server.start()
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
def http_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def monitor(sandbox: SandboxInfo, redis_module: RedisServer, tmp_path_factory: pytest.TempPathFactory,
            http_port: int) -> Iterator[BotProcess]:
    directory = tmp_path_factory.mktemp("alerts-bot")
    config = clusters_file(directory / "clusters.yaml", sandbox, RULES)
    process = bot("main", redis_url=redis_module.url, sandbox=sandbox, config=config, log_dir=directory,
                  http_port=http_port).start()
    yield process
    process.stop()


def alert_id_of(event: dict) -> str:  # type: ignore[type-arg]
    return str(event["alert_id"])


def test_a_stopped_consumers_lag_in_seconds_is_the_age_of_its_committed_record(
    sandbox: SandboxInfo, monitor: BotProcess, redis_module: RedisServer,
) -> None:
    """A producer at 20 records/s, a consumer that commits then stops: the lag in seconds (placed on
    the sampled log-end line) is within 20 % of the true age of the record at the committed offset,
    and the alert is posted once the group is 15 s behind."""
    topic, group = name("steady"), name("steady")
    create_topic(sandbox.bootstrap_servers, topic)
    stop = threading.Event()

    def steady_producer() -> None:
        producer = KafkaProducer(bootstrap_servers=sandbox.bootstrap_servers, linger_ms=0)
        while not stop.wait(0.05):
            producer.send(topic, b"tick")
        producer.close()

    threading.Thread(target=steady_producer, daemon=True).start()
    try:
        consumer = KafkaConsumer(topic, bootstrap_servers=sandbox.bootstrap_servers, group_id=group,
                                 client_id="steady-client", auto_offset_reset="earliest", enable_auto_commit=False)
        until = time.monotonic() + 8
        while time.monotonic() < until:
            if consumer.poll(timeout_ms=200):
                consumer.commit()
        consumer.close()  # the group is now Empty; its committed offset stays where it stopped

        def behind() -> dict | None:  # type: ignore[type-arg]
            found = group_in(lag_report(redis_module.url, "lagmon"), group)
            part = found["partitions"][0] if found and found["partitions"] else None
            return found if part and (part["seconds"] or 0) >= 25 else None

        wait_until(behind, timeout=90, interval=0.5, message=f"{group} 25 s behind in the lag report")
        report = lag_report(redis_module.url, "lagmon")
        assert report is not None
        found = report.group(group)
        assert found is not None and found.state == "Empty" and found.members == ()
        part = found.partitions[0]
        true_age = report.taken_at.timestamp() - record_timestamp_ms(sandbox.bootstrap_servers, topic,
                                                                      part.committed) / 1000
        assert part.seconds_from.value == "table"
        assert part.seconds is not None and abs(part.seconds - true_age) <= 0.2 * true_age, (part, true_age)
        alert = monitor.expect(posted("consumer_lag", f"group:{group}"), timeout=30, what="the lag alert")
        assert alert["value"] >= SEEN_S and "Show the group" in [b["label"] for b in alert["buttons"]]
        assert "Members: none" in alert["text"]
    finally:
        stop.set()


def test_an_idle_topic_with_an_old_commit_reports_the_records_age_not_an_extrapolation(
    sandbox: SandboxInfo, monitor: BotProcess, redis_module: RedisServer,
) -> None:
    """Records written two hours ago, nothing since, a group stuck at offset 10: about 7200 s
    (read from the record at the committed offset), not a line stretched over the idle time."""
    topic, group = name("idle"), name("idle")
    create_topic(sandbox.bootstrap_servers, topic)
    written = int(time.time() * 1000) - 2 * 3600 * 1000
    produce(sandbox.bootstrap_servers, topic, 50, timestamp_ms=written)
    commit(sandbox.bootstrap_servers, group, topic, 10)
    seen: list[str] = []

    def from_record() -> dict[str, Any] | None:
        # The record is read beside the polls (bot.monitors.scheduler streams the offsets): the
        # group may show once with its seconds unknown first, never with a table's guess.
        found = group_in(lag_report(redis_module.url, "lagmon"), group)
        if found is None or not found["partitions"]:
            return None
        seen.append(found["partitions"][0]["seconds_from"])
        return found if seen[-1] == "record" else None

    found = wait_until(from_record, timeout=60, message=f"{group} in the lag report with its record's age")
    assert set(seen) <= {"unknown", "record"}, seen
    part = found["partitions"][0]
    assert part["lag"] == 40 and part["seconds_from"] == "record"
    assert 7200 - 5 <= part["seconds"] <= 7200 + 120
    alert = monitor.expect(posted("consumer_lag", f"group:{group}"), timeout=30, what="the idle group's alert")
    assert 7200 - 5 <= alert["value"] <= 7200 + 120


def test_metrics_export_the_lag_with_lag_exporters_names(
    sandbox: SandboxInfo, monitor: BotProcess, http_port: int,
) -> None:
    """The running bot's /metrics: per-partition lag and time lag with Lag Exporter's labels, the
    group maxima, the partition offsets, and the bot's own poll and alert metrics."""
    topic, group = name("idle"), name("idle")
    create_topic(sandbox.bootstrap_servers, topic)
    produce(sandbox.bootstrap_servers, topic, 20)
    commit(sandbox.bootstrap_servers, group, topic, 5)

    def scrape() -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as response:
                text = response.read().decode()
        except OSError:  # the server is not listening yet
            return None
        return text if f'group="{group}"' in text else None

    text = wait_until(scrape, timeout=60, interval=0.5, message=f"{group} in /metrics")
    labels = (f'cluster_name="lagmon",group="{group}",topic="{topic}",partition="0",member_host="unknown",'
              'consumer_id="unknown",client_id="unknown"')
    assert f"kafka_consumergroup_group_lag{{{labels}}} 15" in text
    assert f"kafka_consumergroup_group_offset{{{labels}}} 5" in text
    assert f"kafka_consumergroup_group_lag_seconds{{{labels}}} " in text
    assert f'kafka_consumergroup_group_max_lag{{cluster_name="lagmon",group="{group}"}} 15' in text
    assert f'kafka_partition_latest_offset{{cluster_name="lagmon",topic="{topic}",partition="0"}} 20' in text
    assert 'kafka_consumergroup_poll_time_ms{cluster_name="lagmon"}' in text
    assert 'kafka_chatops_monitor_leader{cluster="lagmon"} 1' in text
    assert 'kafka_chatops_poll_duration_seconds{cluster="lagmon",job="lag"}' in text
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=10) as response:
        assert response.status == 200


def test_snooze_mutes_the_alert_and_says_who_snoozed_it(
    sandbox: SandboxInfo, monitor: BotProcess, redis_module: RedisServer,
) -> None:
    """Snoozed from the console: its message says by whom and until when; after it resolves and
    fires again (no cooldown on this cluster), nothing new is posted while the snooze lasts."""
    topic, group = name("snooze"), name("snooze")
    create_topic(sandbox.bootstrap_servers, topic)
    produce(sandbox.bootstrap_servers, topic, 30, timestamp_ms=int(time.time() * 1000) - 3600 * 1000)
    commit(sandbox.bootstrap_servers, group, topic, 0)
    first = monitor.expect(posted("consumer_lag", f"group:{group}"), timeout=60, what="the alert")
    alert_id = alert_id_of(first)
    reply = monitor.command(f"snooze {alert_id} 30m")
    assert reply["event"] == "reply" and "Snoozed" in reply["text"], reply
    monitor.expect(lambda e: e.get("event") == "alert_updated" and e.get("alert_id") == alert_id
                   and f"Snoozed by {monitor.user}" in e["text"], timeout=15, what="the snoozed message")
    commit(sandbox.bootstrap_servers, group, topic, 30)
    monitor.expect(lambda e: e.get("alert_id") == alert_id and e.get("phase") == "resolved", timeout=30,
                   what="the resolved edit")
    since = len(monitor.events)
    commit(sandbox.bootstrap_servers, group, topic, 0)
    wait_until(lambda: (group_in(lag_report(redis_module.url, "lagmon"), group) or {}).get("partitions", [{}])[0]
               .get("lag") == 30, timeout=30, message="the lag back")
    drain(monitor, 4)
    reposted = [e for e in monitor.events[since:] if e.get("event") == "alert_posted" and e.get("alert_id") == alert_id]
    assert reposted == []
    listed = monitor.command("alerts lagmon")
    assert alert_id in listed["text"] and f"snoozed by {monitor.user}" in listed["text"]


def test_a_flapping_consumer_reopens_its_message_within_the_cooldown(
    sandbox: SandboxInfo, monitor: BotProcess,
) -> None:
    """Over 100 records, caught up, over again within the 10 minute cooldown: one post, a resolved
    edit, then the same message reopened as flapping."""
    topic, group = name("flap"), name("flap")
    create_topic(sandbox.bootstrap_servers, topic)
    produce(sandbox.bootstrap_servers, topic, 500)
    commit(sandbox.bootstrap_servers, group, topic, 0)
    first = monitor.expect(posted("consumer_lag", f"group:{group}"), timeout=60, what="the first alert")
    alert_id = alert_id_of(first)
    commit(sandbox.bootstrap_servers, group, topic, 500)
    monitor.expect(lambda e: e.get("alert_id") == alert_id and e.get("phase") == "resolved", timeout=30,
                   what="resolved")
    commit(sandbox.bootstrap_servers, group, topic, 0)
    reopened = monitor.expect(lambda e: e.get("alert_id") == alert_id and e.get("phase") == "firing"
                              and "Flapping" in e["text"], timeout=30, what="the reopened message")
    assert reopened["event"] == "alert_updated" and reopened["message_id"] == first["message_id"]
    assert len(alert_events(monitor, alert_id, "alert_posted")) == 1


def test_two_bot_processes_post_once_and_a_restart_posts_nothing_again(
    sandbox: SandboxInfo, redis_url: str, tmp_path: Path,
) -> None:
    """Two replicas on one Redis: one message for a lagging group. The replica that posted is killed
    (SIGKILL); the other takes the monitors over and only edits; the killed one restarted posts nothing."""
    topic, group = name("pair"), name("pair")
    config = clusters_file(tmp_path / "clusters.yaml", sandbox, {
        "lagpair": "{health_poll: 1s, lag_poll: 1s, update_interval: 1s, consumer_lag: {for: 0s, max_lag: 10, "
                   "growth: {enabled: false}, include_groups: 'pair-.*'}}"})
    create_topic(sandbox.bootstrap_servers, topic)
    produce(sandbox.bootstrap_servers, topic, 100)
    commit(sandbox.bootstrap_servers, group, topic, 0)
    a = bot("a", redis_url=redis_url, sandbox=sandbox, config=config, log_dir=tmp_path).start()
    b = bot("b", redis_url=redis_url, sandbox=sandbox, config=config, log_dir=tmp_path).start()
    try:
        is_ours = posted("consumer_lag", f"group:{group}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(is_ours(e) for p in (a, b) for e in p.events):
            drain(a, 0.5)
            drain(b, 0.5)
        drain(a, 3)
        drain(b, 3)
        posts = [(p, e) for p in (a, b) for e in p.events if is_ours(e)]
        assert len(posts) == 1, posts
        poster, event = posts[0]
        other = b if poster is a else a
        alert_id = alert_id_of(event)
        poster.kill()
        produce(sandbox.bootstrap_servers, topic, 100)  # the lag grows: the survivor has something to edit
        other.expect(lambda e: e.get("event") == "alert_updated" and e.get("alert_id") == alert_id, timeout=30,
                     what="the surviving replica editing the alert")
        poster.start()
        drain(poster, 6)
        drain(other, 1)
        assert [e for p in (a, b) for e in alert_events(p, alert_id, "alert_posted")] == [event]
    finally:
        a.stop()
        b.stop()
