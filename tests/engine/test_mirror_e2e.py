"""``/kafka mirror`` end to end: two sandboxes (east and west, Kafka 4.3.1, each its own Kubernetes API;
the pair the MirrorMaker 2 modules share, tests/fixtures/mirror_pair.py), the real bot as a console
process with both clusters in its clusters file (each with its own ``kubeconfig:``), real MirrorMaker 2
run by west's operator twin.

``mirror east west --topics 'stock.*' --groups ledger --name stock-east-west`` with its approval, to
done: the KafkaMirrorMaker2 created in west's namespace, its connectors RUNNING, the records produced on
east present on west exactly once as ``east.stock...``, the canary's figures on the run, ledger's
committed offset translated to west. (The Slack test mirrors ``orders.*`` with ``billing`` on the same
pair, under the default name: this module's topics, group and name are its own.)
Then ``mirror status``, pause/resume and remove, each approved.
The test's own Kafka clients (kafka-python) and Kubernetes reads share no code with the bot.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.engine.harness import run_id_of, wait_for_run, waiting_on
from tests.fixtures.bot_process import BotProcess
from tests.fixtures.redis_server import RedisServer
from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.sandbox
USER = "console:oncall"
NAME = "stock-east-west"
TOPICS = {"stock.eu": 2, "stock.us": 1}
PATTERN = "stock.*"
GROUP = "ledger"
EU, US = TOPICS
RECORDS = 100  # per topic
BILLING_AT = 60  # the group's committed offset on stock.eu partition 0


@pytest.fixture(scope="module")
def clusters(mirror_clusters: tuple[SandboxInfo, SandboxInfo]) -> tuple[SandboxInfo, SandboxInfo]:
    return mirror_clusters


def produced_values(topic: str) -> list[bytes]:
    return [f"{topic}-{i}".encode() for i in range(RECORDS)]


@pytest.fixture(scope="module")
def orders(clusters: tuple[SandboxInfo, SandboxInfo]) -> None:
    """Topics on east with records, and the group committed on stock.eu, before the bot is asked."""
    east = clusters[0]
    admin = KafkaAdminClient(bootstrap_servers=east.bootstrap_servers, request_timeout_ms=20000)
    try:
        admin.create_topics([NewTopic(t, p, 1) for t, p in TOPICS.items()])
        admin.create_topics([NewTopic("payments", 1, 1)])  # not matched by 'stock.*': not mirrored
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=east.bootstrap_servers, acks="all")
    try:
        for topic in TOPICS:
            for i, value in enumerate(produced_values(topic)):
                producer.send(topic, value, partition=i % TOPICS[topic])
        producer.flush(timeout=30)
    finally:
        producer.close()
    deadline = time.monotonic() + 60
    while True:  # the group coordinator may not be there yet on a fresh cluster
        consumer = KafkaConsumer(bootstrap_servers=east.bootstrap_servers, group_id=GROUP,
                                 enable_auto_commit=False)
        try:
            consumer.commit({TopicPartition(EU, 0): OffsetAndMetadata(BILLING_AT, "", -1)})
            return
        except KafkaError:
            assert time.monotonic() < deadline, f"could not commit {GROUP} on east"
            time.sleep(0.5)
        finally:
            consumer.close()


@pytest.fixture(scope="module")
def redis_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("mirror-redis"))
    server.start()
    yield server
    server.cleanup()


@pytest.fixture(scope="module")
def bot(clusters: tuple[SandboxInfo, SandboxInfo], orders: None, redis_module: RedisServer,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    directory = tmp_path_factory.mktemp("mirror-bot")
    lines = ["clusters:"]
    for name, info in zip(("east", "west"), clusters, strict=True):  # the bot's names, not the sandboxes'
        lines += [f"  {name}:", f"    namespace: {info.namespace}", f"    kafka: {info.cluster}",
                  f"    kubeconfig: {info.kubeconfig}", f"    approvers: [{json.dumps(USER)}]", "    four_eyes: false",
                  "    alerts: {health_poll: 30s, lag_poll: 30s}"]
    (directory / "clusters.yaml").write_text("\n".join(lines) + "\n")
    process = BotProcess(user=USER, redis_url=redis_module.url, kubeconfig=clusters[0].kubeconfig,
                         config_path=directory / "clusters.yaml", log_dir=directory,
                         extra_env={"KAFKA_CHATOPS_POLL_INTERVAL": "0.3", "KAFKA_CHATOPS_MONITORS": "false"}).start()
    try:
        yield process
    finally:
        process.stop()


def custom(info: SandboxInfo) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(info.api_client())


def mirror_resource(west: SandboxInfo) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = custom(west).get_namespaced_custom_object(
            "kafka.strimzi.io", "v1", west.namespace, "kafkamirrormaker2s", NAME)
        return found
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def approve_to_end(bot: BotProcess, redis_url: str, run_id: str, step: str, timeout: float = 240) -> dict[str, Any]:
    wait_for_run(redis_url, run_id, waiting_on(step), timeout=60, what=f"the approval request of {step}")
    assert bot.command(f"approve {run_id} {step}")["event"] == "reply"
    return wait_for_run(redis_url, run_id, lambda r: r["state"] in ("succeeded", "failed", "aborted", "paused"),
                        timeout=timeout, what="the run to finish")


def remote_values(west: SandboxInfo, topic: str, partitions: int) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=west.bootstrap_servers, enable_auto_commit=False, group_id=None)
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        ends = consumer.end_offsets(parts)
        values: list[bytes] = []
        deadline = time.monotonic() + 30
        while any(consumer.position(tp) < end for tp, end in ends.items()) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                values += [r.value for r in records]
        return values
    finally:
        consumer.close()


def step_detail(run: dict[str, Any], step_id: str) -> str:
    return next(str(s.get("detail") or "") for s in run["steps"] if s["spec"]["id"] == step_id)


def test_mirror_is_set_up_proven_and_managed(bot: BotProcess, clusters: tuple[SandboxInfo, SandboxInfo],
                                             redis_module: RedisServer) -> None:
    west = clusters[1]
    refused = bot.command(f"mirror east east --topics '{PATTERN}'", timeout=60)
    assert "the source and the target are both east" in refused["text"], refused
    assert mirror_resource(west) is None

    started = bot.command(f"mirror east west --topics '{PATTERN}' --groups {GROUP} --name {NAME}", timeout=90)
    run_id = run_id_of(started)
    run = approve_to_end(bot, redis_module.url, run_id, "create-mirror")
    assert run["state"] == "succeeded", (run.get("pause_reason"), [(s["spec"]["id"], s.get("detail"))
                                                                    for s in run["steps"]])
    assert run["cluster"] == "west"  # the run held the target's lock

    resource = mirror_resource(west)
    assert resource is not None
    mirror = resource["spec"]["mirrors"][0]
    assert mirror["source"]["alias"] == "east" and resource["spec"]["target"]["alias"] == "west"
    assert mirror["topicsPattern"].startswith(f"{PATTERN}|") and mirror["groupsPattern"].startswith(f"{GROUP}|")
    assert mirror["sourceConnector"]["autoRestart"] == {"enabled": True}
    assert mirror["sourceConnector"]["tasksMax"] == 4  # 3 partitions + the canary's
    connectors = resource["status"]["connectors"]
    assert {c["connector"]["state"] for c in connectors} == {"RUNNING"}
    assert {t["state"] for c in connectors for t in c["tasks"]} == {"RUNNING"}

    for topic, partitions in TOPICS.items():  # every record exactly once, under the default policy's name
        wait_until(lambda t=topic, p=partitions: len(remote_values(west, f"east.{t}", p)) >= RECORDS, timeout=60,
                   interval=1, message=f"{RECORDS} records on east.{topic}")
        assert sorted(remote_values(west, f"east.{topic}", partitions)) == sorted(produced_values(topic))
    admin = KafkaAdminClient(bootstrap_servers=west.bootstrap_servers)
    try:
        assert "east.payments" not in admin.list_topics()
    finally:
        admin.close()

    canary = step_detail(run, "mirror-canary")
    assert canary.startswith("50/50 canary records arrived, 0 missing, 0 duplicated; latency p50 "), canary
    assert "p99" in canary
    assert f"kafka-chatops-canary-{NAME}'s offsets translated" in step_detail(run, "verify-checkpoints")

    def billing_on_west() -> int | None:
        consumer = KafkaConsumer(bootstrap_servers=west.bootstrap_servers, group_id=GROUP,
                                 enable_auto_commit=False)
        try:
            offset: int | None = consumer.committed(TopicPartition(f"east.{EU}", 0))
            return offset
        finally:
            consumer.close()

    translated = wait_until(billing_on_west, timeout=60, interval=2, message=f"{GROUP}'s offset synced to west")
    assert 0 < translated <= BILLING_AT  # translated into east.stock.eu's offsets (never past the original)

    status = bot.command(f"mirror status {NAME}", timeout=60)["text"]
    assert "east->west.MirrorSourceConnector RUNNING" in status and "Ready" in status, status
    assert "canary: 50/50 canary records arrived" in status, status
    assert f"{EU} → east.{EU}: 0 records behind" in status, status

    paused = approve_to_end(bot, redis_module.url, run_id_of(bot.command(f"mirror pause {NAME}", timeout=60)),
                            "mirror-pause", timeout=120)
    assert paused["state"] == "succeeded", paused.get("pause_reason")
    states = {c["connector"]["state"] for c in (mirror_resource(west) or {})["status"]["connectors"]}
    assert states == {"PAUSED"}
    producer = KafkaProducer(bootstrap_servers=clusters[0].bootstrap_servers, acks="all")
    try:  # while paused, 10 more records wait on east: status shows the lag in records and seconds
        for i in range(10):
            producer.send(EU, f"late-{i}".encode(), partition=0)
        producer.flush(timeout=30)
    finally:
        producer.close()
    time.sleep(2)
    lagging = bot.command(f"mirror status {NAME}", timeout=60)["text"]
    assert re.search(rf"{re.escape(EU)} → east\.{re.escape(EU)}: 10 records behind, \d+ s behind", lagging), lagging
    resumed = approve_to_end(bot, redis_module.url, run_id_of(bot.command(f"mirror resume {NAME}", timeout=60)),
                             "mirror-resume", timeout=120)
    assert resumed["state"] == "succeeded", resumed.get("pause_reason")

    # A task really FAILED (the sandbox's fault): Ready stays True, `mirror status` shows the trace.
    west.cli("fault", "mirror-task-fail", "--when", "east->west.MirrorSourceConnector")
    try:
        failing = wait_until(lambda: (lambda t: t if "FAILED" in t else None)(
            bot.command(f"mirror status {NAME}", timeout=60)["text"]), timeout=60, interval=1,
            message="mirror status showing the FAILED task")
    finally:
        west.cli("fault", "mirror-task-fail", "--clear")
    assert "Ready" in failing and "east->west.MirrorSourceConnector FAILED" in failing, failing
    assert "Failed to construct kafka consumer" in failing, failing
    wait_until(lambda: "FAILED" not in bot.command(f"mirror status {NAME}", timeout=60)["text"], timeout=90,
               interval=2, message="autoRestart bringing the task back once the fault is cleared")

    removing = bot.command(f"mirror remove {NAME}", timeout=60)
    remove_id = run_id_of(removing)
    removed = approve_to_end(bot, redis_module.url, remove_id, "remove-mirror", timeout=120)
    assert removed["state"] == "succeeded", removed.get("pause_reason")
    left = removed["steps"][0]["spec"]["summary"]  # what the approver was shown: the copies left in place
    assert f"east.{EU}" in left and "east.checkpoints.internal" in left, left
    assert f"The canary topic kafka-chatops-canary-{NAME} stays on the source" in left
    assert mirror_resource(west) is None
    admin = KafkaAdminClient(bootstrap_servers=west.bootstrap_servers)
    try:
        assert {f"east.{EU}", f"east.{US}"} <= set(admin.list_topics())  # the copies stay
    finally:
        admin.close()
