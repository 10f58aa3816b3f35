"""What the alert end-to-end tests share: a clusters file with alert rules, the bot as a console
subprocess, and small Kafka helpers (topics, producers, offsets, the record at an offset) that use
kafka-python directly, never the bot's own code, so a bug in the bot cannot hide in the test."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from bot.store import connect
from bot.store.alert_state import RedisLagReports
from handlers.alerting.lag_models import LagReport
from tests.fixtures.bot_process import BotProcess, Event
from tests.fixtures.redis_server import free_port
from tests.fixtures.sandbox import SandboxInfo

USER = "console:oncall"


def clusters_file(path: Path, sandbox: SandboxInfo, alerts: dict[str, str], *, channel: str | None = None) -> Path:
    """One cluster entry per name in ``alerts`` (all on the sandbox's Kafka), each with its own
    ``alerts:`` block given as YAML flow text."""
    lines = ["clusters:"]
    for name, block in alerts.items():
        lines += [f"  {name}:", f"    namespace: {sandbox.namespace}", f"    kafka: {sandbox.cluster}",
                  f"    approvers: [{json.dumps(USER)}]", "    four_eyes: false", f"    alerts: {block}"]
        if channel:
            lines.append(f"    channel: {channel}")
    path.write_text("\n".join(lines) + "\n")
    return path


def bot(name: str, *, redis_url: str, sandbox: SandboxInfo, config: Path, log_dir: Path,
        http_port: int | None = None, extra_env: dict[str, str] | None = None) -> BotProcess:
    env = {"KAFKA_CHATOPS_HTTP_PORT": str(http_port or free_port()), "KAFKA_CHATOPS_WATCH_TIMEOUT": "20",
           **(extra_env or {})}
    return BotProcess(user=f"{USER}-{name}", redis_url=redis_url, kubeconfig=sandbox.kubeconfig, config_path=config,
                      log_dir=log_dir, extra_env=env)


def alert_events(process: BotProcess, alert_id: str | None = None, event: str | None = None) -> list[Event]:
    return [e for e in process.events if e.get("event") in ("alert_posted", "alert_updated")
            and (alert_id is None or e.get("alert_id") == alert_id) and (event is None or e["event"] == event)]


def posted(condition: str, subject: str) -> Callable[[Event], bool]:
    return lambda e: (e.get("event") == "alert_posted" and e.get("condition") == condition
                      and e.get("subject") == subject)


def drain(process: BotProcess, seconds: float) -> None:
    """Keep reading the process's output for ``seconds`` (events land in ``process.events``)."""
    with contextlib.suppress(AssertionError):  # expected: nothing matches, the deadline passes
        process.expect(lambda e: False, timeout=seconds, what="nothing", since=len(process.events))


# -- Kafka, directly ------------------------------------------------------------------------------


def create_topic(bootstrap: str, topic: str, partitions: int = 1, replication: int = 3,
                 configs: dict[str, str] | None = None) -> None:
    """A topic, replicated 3 times by default: the session sandbox is shared, and other tests expect
    every partition there to be 3/3."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, partitions, replication, topic_configs=configs or {})])
    finally:
        admin.close()


def produce(bootstrap: str, topic: str, count: int, *, timestamp_ms: int | None = None, partition: int = 0) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    try:
        for i in range(count):
            producer.send(topic, f"record-{i}".encode(), partition=partition, timestamp_ms=timestamp_ms)
        producer.flush(timeout=30)
    finally:
        producer.close()


def commit(bootstrap: str, group: str, topic: str, offset: int, partition: int = 0) -> None:
    """Set a group's committed offset (the group has no members), as a stopped consumer leaves it.
    Retried while the group coordinator is not there yet (a fresh cluster creates __consumer_offsets
    on first use)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                result = admin.alter_group_offsets(
                    group, {TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)})
            except KafkaError as exc:
                if not exc.retriable or time.monotonic() > deadline:
                    raise
            else:
                errors = [e for e in result.values() if e.__name__ != "NoError"]
                if not errors:
                    return
                if not all(getattr(e, "retriable", False) for e in errors) or time.monotonic() > deadline:
                    raise AssertionError(f"could not commit {group} at {offset}: {result}")
            time.sleep(0.5)
    finally:
        admin.close()


def record_timestamp_ms(bootstrap: str, topic: str, offset: int, partition: int = 0) -> int:
    """The timestamp of the record at ``offset``: what the consumer's true age is measured against."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            for record in consumer.poll(timeout_ms=500).get(tp, []):
                if record.offset >= offset:
                    return int(record.timestamp)
        raise AssertionError(f"no record at {topic}-{partition}@{offset}")
    finally:
        consumer.close()


def lag_report(redis_url: str, cluster: str) -> LagReport | None:
    async def read() -> LagReport | None:
        client = await connect(redis_url)
        try:
            return await RedisLagReports(client).latest(cluster)
        finally:
            await client.aclose()

    return asyncio.run(read())


def group_in(report: LagReport | None, group: str) -> dict[str, Any] | None:
    found = report.group(group) if report is not None else None
    return None if found is None else found.model_dump(mode="json")
