"""What the upgrade and config end-to-end tests share: a topic made the Strimzi way, two console
bot processes (a requester and an approver), and a loop that approves every step the moment it is
asked while a hook watches the run's events (the kill test uses it to strike mid-roll)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.kafka.admin import KafkaAdminAdapter
from handlers.ports import ClusterRef
from runbooks.rules.health import ClusterSnapshot, assess
from tests.engine.harness import APPROVER, REQUESTER, bot, run_id_of, write_clusters_file
from tests.fixtures.bot_process import BotProcess, Event
from tests.fixtures.sandbox import SandboxInfo
from tests.sandbox.cluster_helpers import StrimziCluster

TOPIC = "orders"
PARTITIONS = 6


def make_topic(sandbox: SandboxInfo, name: str = TOPIC, partitions: int = PARTITIONS) -> StrimziCluster:
    """A KafkaTopic with replication factor 3 and min.insync.replicas 2, Ready."""
    cluster = StrimziCluster(sandbox.api_client(), sandbox.namespace, sandbox.cluster)
    cluster.create_topic(name, partitions=partitions, replicas=3, config={"min.insync.replicas": 2})
    cluster.wait_topic_ready(name)
    return cluster


def snapshot(sandbox: SandboxInfo) -> ClusterSnapshot:
    async def take() -> ClusterSnapshot:
        admin = KafkaAdminAdapter()
        try:
            return await admin.snapshot(ClusterRef(name=sandbox.cluster, namespace=sandbox.namespace,
                                                   kafka=sandbox.cluster), sandbox.bootstrap_servers)
        finally:
            await admin.close()

    return asyncio.run(take())


def healthy(sandbox: SandboxInfo) -> bool:
    return assess(snapshot(sandbox), expected_brokers=range(sandbox.brokers)).ok


@dataclass
class Bots:
    requester: BotProcess
    approver: BotProcess
    events: list[Event] = field(default_factory=list)


@contextmanager
def console_bots(sandbox: SandboxInfo, redis_url: str, workdir: Path) -> Iterator[Bots]:
    config = write_clusters_file(workdir / "clusters.yaml", sandbox)
    requester = bot(REQUESTER, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=workdir).start()
    approver = bot(APPROVER, redis_url=redis_url, sandbox=sandbox, config=config, log_dir=workdir).start()
    try:
        requester.command("runs")  # both processes are up and subscribed before the run starts
        approver.command("runs")
        yield Bots(requester, approver)
    finally:
        requester.stop()
        approver.stop()


def run_with_approvals(bots: Bots, command: str, *, on_event: Callable[[Event], str | None] | None = None,
                       timeout_s: float = 900.0) -> tuple[str, Event, float]:
    """Start ``command`` as the requester; the approver approves each step as soon as it waits, until the run
    finishes (or ``on_event`` returns "stop"). Returns the run id, the last event and the wall time."""
    start = time.monotonic()
    run_id = run_id_of(bots.requester.command(command))
    seen = 0
    while True:
        event = bots.approver.expect(lambda e: e.get("run_id") == run_id, timeout=timeout_s,
                                     what=f"the next event of {run_id}", since=seen)
        seen = bots.approver.past(event, seen)
        bots.events.append(event)
        if on_event is not None and on_event(event) == "stop":
            return run_id, event, time.monotonic() - start
        if event["event"] == "run_finished":
            return run_id, event, time.monotonic() - start
        if event["event"] == "step_awaiting_approval":
            bots.approver.send(f"approve {run_id} {event['step_id']}")


def kafka_status(cluster: StrimziCluster) -> dict[str, Any]:
    return dict(cluster.kafka().get("status") or {})
