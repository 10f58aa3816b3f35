"""Health alerts and Kubernetes watches end to end on a sandbox of this module's own (a broker is
killed here): the under-replication alert after a broker dies, updated in place, resolved when it
returns; and a watch that resumes after 410 Gone by listing again."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient
from kubernetes import client

from bot.monitors.kube_watch import ClusterWatches
from handlers.ports import ClusterRef
from tests.alerts.harness import alert_events, bot, clusters_file, create_topic, posted
from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_for, wait_until

pytestmark = pytest.mark.sandbox

POLL_S = 2.0
DOWN_FOR_S = 60
TOPIC = "kill-orders"


@pytest.fixture(scope="module")
def own(sandbox_factory: Callable[..., SandboxInfo]) -> Iterator[SandboxInfo]:
    sandbox = sandbox_factory("alerts-kill")
    create_topic(sandbox.bootstrap_servers, TOPIC, partitions=6, replication=3, configs={"min.insync.replicas": "2"})
    yield sandbox
    sandbox.down()


async def test_watches_resume_after_410_by_listing_again(own: SandboxInfo) -> None:
    """More than the API server's history of changes goes by between two watch streams: the resume
    answers 410 Gone, the watch lists again, and changes after that still arrive."""
    api = own.api_client()
    changes: list[float] = []
    watches = ClusterWatches(ClusterRef(name=own.cluster, namespace=own.namespace, kafka=own.cluster), api,
                             loop=asyncio.get_running_loop(), on_change=lambda: changes.append(time.monotonic()),
                             timeout_s=1)
    watches.start()
    try:
        await wait_for(lambda: watches.state().synced, timeout=30, message="the watches' first lists")
        assert len(watches.state().pods) == own.brokers

        def noise() -> None:  # 1,100 changes elsewhere: the emulator keeps the last 1,000
            core = client.CoreV1Api(own.api_client())
            for i in range(1100):
                core.create_namespaced_config_map(own.namespace, {"metadata": {"name": f"noise-{i}"}})

        await asyncio.to_thread(noise)
        await wait_for(lambda: watches.relists >= 1, timeout=30, message="a re-list after 410 Gone")
        before = len(changes)
        core = client.CoreV1Api(api)
        await asyncio.to_thread(core.patch_namespaced_pod, f"{own.cluster}-dual-role-0", own.namespace,
                                {"metadata": {"annotations": {"test/touched": "yes"}}})
        await wait_for(lambda: len(changes) > before, timeout=15, message="a pod change after the re-list")
        assert watches.state().synced and len(watches.state().pods) == own.brokers
    finally:
        watches.stop()


def urp_seen_by_kafka(bootstrap: str, broker: int, seen_at: list[float], stop: threading.Event) -> None:
    """Note the time Kafka itself first reports a partition with ``broker`` out of its ISR."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        while not stop.is_set() and not seen_at:
            try:
                for topic in admin.describe_topics([TOPIC]):
                    for p in topic["partitions"]:
                        if broker in p["replica_nodes"] and broker not in p["isr_nodes"] and not seen_at:
                            seen_at.append(time.monotonic())
            except Exception:  # a broker just died: the next attempt asks another one
                pass
            stop.wait(0.25)
    finally:
        admin.close()


def test_a_killed_broker_raises_one_under_replication_alert_updated_then_resolved(
    own: SandboxInfo, redis_url: str, tmp_path: Path,
) -> None:
    """Broker 2 killed and held down 60 s: the under-replication alert is posted within two polls of
    Kafka reporting it, offers to restart broker 2, is edited (never re-posted) while it lasts, and
    reads resolved once the broker is back; the broker-down and crash-loop alerts come and go too."""
    config = clusters_file(tmp_path / "clusters.yaml", own, {
        own.cluster: f"{{health_poll: {POLL_S:g}s, lag_poll: 30s, update_interval: 1s}}"})
    process = bot("kill", redis_url=redis_url, sandbox=own, config=config, log_dir=tmp_path).start()
    seen_at: list[float] = []
    stop = threading.Event()
    try:
        time.sleep(2 * POLL_S)  # the monitors' first polls; nothing may fire on a healthy cluster
        assert alert_events(process) == []
        own.cli("kill-broker", "2", "--down-for", str(DOWN_FOR_S))
        threading.Thread(target=urp_seen_by_kafka, args=(own.bootstrap_servers, 2, seen_at, stop), daemon=True).start()
        alert = process.expect(posted("under_replicated", "broker-2"), timeout=60, what="the URP alert")
        alerted_at = time.monotonic()
        deadline = time.monotonic() + 30
        while not seen_at and time.monotonic() < deadline:
            time.sleep(0.1)
        assert seen_at, "Kafka never reported broker 2 out of an ISR"
        # Within two of the bot's polls after Kafka reports it (plus the test's own 0.25 s sampling).
        assert alerted_at - seen_at[0] <= 2 * POLL_S + 1.0, (alerted_at - seen_at[0])
        restart = [b for b in alert["buttons"] if b["action"] == "command"]
        assert restart == [{"label": "Restart broker 2", "action": "command",
                            "value": f"/kafka restart {own.cluster} --brokers 2"}]
        alert_id = alert["alert_id"]
        process.expect(posted("broker_down", "broker-2"), timeout=30, what="the broker-down alert")
        process.expect(lambda e: e.get("event") == "alert_posted" and e.get("condition") == "pod_crashing",
                       timeout=30, what="the crash-loop alert from the pod watch")
        resolved = process.expect(lambda e: e.get("alert_id") == alert_id and e.get("phase") == "resolved",
                                  timeout=DOWN_FOR_S + 120, what="the URP alert resolved")
        assert "Resolved at" in resolved["text"]
        ours = alert_events(process, alert_id)
        assert [e["event"] for e in ours].count("alert_posted") == 1
        assert {e["message_id"] for e in ours} == {alert["message_id"]}
        assert len(ours) >= 2  # at least the post and the resolved edit, all on one message
        process.expect(lambda e: e.get("condition") == "broker_down" and e.get("phase") == "resolved",
                       timeout=60, what="the broker-down alert resolved")
    finally:
        stop.set()
        process.stop()



def test_a_strimzi_restart_is_announced_until_the_new_pod_is_ready(
    own: SandboxInfo, redis_url: str, tmp_path: Path,
) -> None:
    """The operator rolls broker 1 (manual-rolling-update): its restart event (events.k8s.io) makes one
    message, resolved once the pod that replaced it is Ready."""
    config = clusters_file(tmp_path / "clusters.yaml", own, {
        own.cluster: f"{{health_poll: {POLL_S:g}s, lag_poll: 30s, update_interval: 1s}}"})
    process = bot("roll", redis_url=redis_url, sandbox=own, config=config, log_dir=tmp_path).start()
    pod = f"{own.cluster}-dual-role-1"
    try:
        # Only a restart the bot sees while it monitors is announced (a roll over before then is over):
        # on a loaded machine the bot can take longer to start than the roll. Lag figures (Redis is
        # emptied for each test) mean this bot holds the monitor lease and its jobs run.
        wait_until(lambda: process.command(f"lag {own.cluster}")["ok"], timeout=90, interval=1.0,
                   message="the bot monitoring (lag figures)")
        core = client.CoreV1Api(own.api_client())
        core.patch_namespaced_pod(pod, own.namespace,
                                  {"metadata": {"annotations": {"strimzi.io/manual-rolling-update": "true"}}})
        alert = process.expect(posted("strimzi_restart", pod), timeout=90, what="the restart announced")
        assert "ManualRollingUpdate" in alert["text"]
        process.expect(lambda e: e.get("alert_id") == alert["alert_id"] and e.get("phase") == "resolved",
                       timeout=120, what="the restart resolved once the new pod is Ready")
        assert len(alert_events(process, alert["alert_id"], "alert_posted")) == 1
    finally:
        process.stop()
