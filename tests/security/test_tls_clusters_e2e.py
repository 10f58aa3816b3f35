"""The bot operates a Kafka that has no plaintext listener: one sandbox (1 node) started with
``--listeners tls,mtls`` (SCRAM-SHA-512 over TLS, and mTLS), the real bot as a console subprocess
with two entries for that Kafka, one per listener, each authenticated by its own KafkaUser:

- ``sec-scram``: ``listener: tls``, the scram-sha-512 KafkaUser ``kafka-chatops``;
- ``sec-mtls``: ``listener: mtls``, the tls KafkaUser ``kafka-chatops-tls``;
- ``sec-wrong``: ``listener: tls`` as an ``impostor`` whose Secret holds a password the broker never
  issued: every call is refused, and the bot says so as an authentication failure.

The Kafka is 4.2.2, so an upgrade to 4.3.1 can be planned through the TLS listener.

The bot is given nothing but those names: the bootstrap comes from the listener's status, the CA
from ``<cluster>-cluster-ca-cert``, the credentials from the KafkaUsers' Secrets, all through the
Kubernetes API. The test's own Kafka clients (kafka-python, configured the same way by hand) make
the topic and the group; they never share code with the bot.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from kubernetes import client
from kubernetes.client.rest import ApiException

from bot.config.kafka_security import AuthenticationConfig, KafkaSecurityConfig
from bot.kafka.admin import KafkaAdminAdapter
from bot.kafka.security import KafkaSecurityResolver
from bot.kube.gateway import KubeClusterGateway
from handlers.ports import ClusterRef
from tests.alerts.harness import group_in, lag_report
from tests.fixtures.bot_process import BotProcess
from tests.fixtures.redis_server import RedisServer, free_port
from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_until

pytestmark = pytest.mark.sandbox

NAME = "tlsbot"
USER = "console:oncall"
SCRAM_USER, TLS_USER, IMPOSTOR = "kafka-chatops", "kafka-chatops-tls", "impostor"


@pytest.fixture(scope="module")
def sbx(sandbox_factory: Callable[..., SandboxInfo]) -> Iterator[SandboxInfo]:
    info = sandbox_factory(NAME, brokers=1, kafka_version="4.2.2", extra_args=("--listeners", "tls,mtls"))
    try:
        yield info
    finally:
        info.down()


@pytest.fixture(scope="module")
def kube(sbx: SandboxInfo) -> Iterator[client.ApiClient]:
    api = sbx.api_client()
    try:
        yield api
    finally:
        api.close()


def secret(kube: client.ApiClient, sbx: SandboxInfo, name: str) -> dict[str, bytes]:
    data = client.CoreV1Api(kube).read_namespaced_secret(name, sbx.namespace).data or {}
    return {k: base64.b64decode(v) for k, v in data.items()}


def kafka_status(kube: client.ApiClient, sbx: SandboxInfo) -> dict[str, Any]:
    obj = client.CustomObjectsApi(kube).get_namespaced_custom_object(
        "kafka.strimzi.io", "v1", sbx.namespace, "kafkas", sbx.cluster)
    return dict(obj.get("status") or {})


def create_user(kube: client.ApiClient, sbx: SandboxInfo, name: str, auth: str) -> None:
    custom = client.CustomObjectsApi(kube)
    try:
        custom.create_namespaced_custom_object("kafka.strimzi.io", "v1", sbx.namespace, "kafkausers", {
            "apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaUser",
            "metadata": {"name": name, "labels": {"strimzi.io/cluster": sbx.cluster}},
            "spec": {"authentication": {"type": auth}}})
    except ApiException as exc:
        if exc.status != 409:
            raise

    def ready() -> bool:
        status = custom.get_namespaced_custom_object("kafka.strimzi.io", "v1", sbx.namespace, "kafkausers",
                                                     name).get("status") or {}
        return any(c["type"] == "Ready" for c in status.get("conditions") or [])

    wait_until(ready, timeout=60, message=f"KafkaUser {name} Ready")


@pytest.fixture(scope="module")
def scram_client(sbx: SandboxInfo, kube: client.ApiClient) -> dict[str, Any]:
    """The test's own kafka-python settings for the tls listener, as the KafkaUser's Secret gives them."""
    create_user(kube, sbx, SCRAM_USER, "scram-sha-512")
    create_user(kube, sbx, TLS_USER, "tls")
    impostor = client.V1Secret(metadata=client.V1ObjectMeta(name=IMPOSTOR),
                               data={"password": base64.b64encode(b"not-issued").decode()})
    try:  # a Secret shaped like a KafkaUser's, for a user the broker does not know
        client.CoreV1Api(kube).create_namespaced_secret(sbx.namespace, impostor)
    except ApiException as exc:
        if exc.status != 409:
            raise
    listeners = {lst["name"]: lst for lst in kafka_status(kube, sbx)["listeners"]}
    assert sorted(listeners) == ["mtls", "tls"]  # no plaintext listener at all
    context = ssl.create_default_context(cadata=secret(kube, sbx, f"{NAME}-cluster-ca-cert")["ca.crt"].decode())
    return {"bootstrap_servers": listeners["tls"]["bootstrapServers"], "security_protocol": "SASL_SSL",
            "ssl_context": context, "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": SCRAM_USER,
            "sasl_plain_password": secret(kube, sbx, SCRAM_USER)["password"].decode()}


@pytest.fixture(scope="module")
def redis_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("tls-redis"))
    server.start()
    yield server
    server.cleanup()


def clusters_file(path: Path, sbx: SandboxInfo) -> Path:
    common = [f"    namespace: {sbx.namespace}", f"    kafka: {sbx.cluster}", f"    approvers: [{json.dumps(USER)}]",
              "    four_eyes: false"]
    path.write_text("\n".join([
        "clusters:",
        "  sec-scram:", *common, "    listener: tls",
        f"    authentication: {{kafka_user: {SCRAM_USER}}}",  # the type is the listener's: scram-sha-512
        "    alerts: {health_poll: 2s, lag_poll: 1s, consumer_lag: {for: 0s, max_lag: 10, growth: {enabled: false},"
        " include_groups: 'tls-group-.*'}}",
        "  sec-mtls:", *common, "    listener: mtls",
        f"    tls: {{ca_secret: {NAME}-cluster-ca-cert}}",
        f"    authentication: {{type: tls, kafka_user: {TLS_USER}}}",
        "    alerts: {health_poll: 2s, lag_poll: 1s}",
        "  sec-wrong:", *common, "    listener: tls",
        f"    authentication: {{kafka_user: {IMPOSTOR}}}",
        "    alerts: {health_poll: 30s, lag_poll: 30s}",
    ]) + "\n")
    return path


@pytest.fixture(scope="module")
def lagging_group(scram_client: dict[str, Any]) -> tuple[str, str]:
    """A topic of 20 records and a group committed at 5, made before the bot starts (so the
    bot's offsets stream finds __consumer_offsets on its first poll): lag 15."""
    topic, group = f"tls-{uuid.uuid4().hex[:6]}", f"tls-group-{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(request_timeout_ms=10000, **scram_client)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
        producer = KafkaProducer(**scram_client)
        try:
            for i in range(20):
                producer.send(topic, f"record-{i}".encode())
            producer.flush(timeout=30)
        finally:
            producer.close()
        deadline = time.monotonic() + 60
        while True:  # the group coordinator may not be there yet on a fresh cluster
            try:
                result = admin.alter_group_offsets(group, {TopicPartition(topic, 0): OffsetAndMetadata(5, "", -1)})
                if all(e.__name__ == "NoError" for e in result.values()):
                    return topic, group
            except KafkaError:
                pass
            assert time.monotonic() < deadline, f"could not commit {group}"
            time.sleep(0.5)
    finally:
        admin.close()


@pytest.fixture(scope="module")
def http_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def bot(sbx: SandboxInfo, scram_client: dict[str, Any], redis_module: RedisServer, lagging_group: tuple[str, str],
        http_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BotProcess]:
    directory = tmp_path_factory.mktemp("tls-bot")
    process = BotProcess(
        user=USER, redis_url=redis_module.url, kubeconfig=sbx.kubeconfig,
        config_path=clusters_file(directory / "clusters.yaml", sbx), log_dir=directory,
        extra_env={"KAFKA_CHATOPS_HTTP_PORT": str(http_port), "KAFKA_CHATOPS_WATCH_TIMEOUT": "20",
                   "KAFKA_CHATOPS_POLL_INTERVAL": "0.3"}).start()
    try:
        yield process
    finally:
        process.stop()
        logs = "".join(p.read_text() for p in directory.glob("bot-*.log"))
        assert scram_client["sasl_plain_password"] not in logs


@pytest.mark.parametrize("cluster", ["sec-scram", "sec-mtls"])
def test_status_answers_with_the_brokers_through_each_listener(bot: BotProcess, cluster: str) -> None:
    reply = bot.command(f"status {cluster}", timeout=60)
    assert reply["event"] == "reply", reply
    text = reply["text"]
    assert f"broker 0: {NAME}-dual-role-0 Ready" in text
    assert "partitions " in text and "controller 0" in text, text  # the admin snapshot, read over TLS
    assert "unreachable" not in text


def test_the_lag_poll_reports_a_groups_lag_through_tls_and_scram(
        bot: BotProcess, lagging_group: tuple[str, str], redis_module: RedisServer, http_port: int) -> None:
    """Committed offsets streamed from __consumer_offsets (aiokafka), log ends by ListOffsets
    (aiokafka), groups by the admin client (kafka-python): all through TLS + SCRAM."""
    _, group = lagging_group

    def lagging() -> dict[str, Any] | None:
        found = group_in(lag_report(redis_module.url, "sec-scram"), group)
        return found if found and found["partitions"] and found["partitions"][0]["lag"] == 15 else None

    found = wait_until(lagging, timeout=60, interval=0.5, message=f"{group} with lag 15 in sec-scram's lag report")
    assert found["partitions"][0]["committed"] == 5
    through_mtls = wait_until(lambda: group_in(lag_report(redis_module.url, "sec-mtls"), group), timeout=60,
                              interval=0.5, message=f"{group} in sec-mtls's lag report")
    assert [(p["committed"], p["lag"]) for p in through_mtls["partitions"]] == [(5, 15)], "the same through mTLS"
    lag = bot.command(f"lag sec-scram {group}", timeout=30)
    assert lag["event"] == "reply" and "15" in lag["text"], lag

    def streamed() -> bool:  # the stream replayed __consumer_offsets, over TLS (a poll may come before)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=10) as response:
                text = response.read().decode()
        except OSError:
            return False
        return 'kafka_chatops_lag_offsets_streamed{cluster="sec-scram"} 1' in text

    wait_until(streamed, timeout=30, interval=0.5, message="sec-scram's committed offsets streamed")


def test_the_lag_alert_fires_from_offsets_read_through_tls(bot: BotProcess, lagging_group: tuple[str, str]) -> None:
    """max_lag 10 and a lag of 15: the alert is raised from what the TLS + SCRAM clients read."""
    _, group = lagging_group
    posted = bot.expect(lambda e: e.get("event") == "alert_posted" and e.get("cluster") == "sec-scram"
                        and e.get("subject") == f"group:{group}", timeout=60, what=f"the lag alert of {group}")
    assert posted["condition"] == "consumer_lag", posted
    assert f"group {group} is 15 records" in posted["text"], posted["text"]


def test_an_upgrade_is_planned_through_the_tls_listener(bot: BotProcess) -> None:
    reply = bot.command("upgrade sec-scram 4.3.1 --dry-run", timeout=60)
    assert reply["event"] == "reply", reply
    assert "4.2.2" in reply["text"] and "4.3.1" in reply["text"], reply["text"]
    assert "unreachable" not in reply["text"] and "cannot bootstrap" not in reply["text"]


def test_refused_credentials_are_reported_as_an_authentication_failure(bot: BotProcess) -> None:
    """Not a timeout: the status names the user and says the broker refused it."""
    text = bot.command("status sec-wrong", timeout=90)["text"]
    assert f"SASL authentication failed for user {IMPOSTOR} (SCRAM-SHA-512)" in text, text
    assert "not-issued" not in text

    def lag_says_why() -> str | None:  # the lag monitor's poll failed the same way, and says so
        said = str(bot.command("lag sec-wrong", timeout=30)["text"])
        return said if "SASL authentication failed" in said else None

    said = wait_until(lag_says_why, timeout=90, interval=3, message="`lag sec-wrong` to give the SASL failure")
    assert said.startswith("The last lag poll of sec-wrong failed: ") and IMPOSTOR in said, said


@pytest.mark.parametrize("cluster", ["sec-scram", "sec-mtls"])
def test_a_broker_restart_completes_through_each_listener(bot: BotProcess, sbx: SandboxInfo, kube: client.ApiClient,
                                                          cluster: str) -> None:
    core = client.CoreV1Api(kube)
    pod = f"{NAME}-dual-role-0"
    uid = core.read_namespaced_pod(pod, sbx.namespace).metadata.uid
    started = bot.command(f"restart {cluster} --brokers 0")
    assert started["event"] == "reply", started
    run_id = started["run_id"]
    for step in ("restart-0", "elect-leaders"):
        bot.expect(lambda e, step=step: (e.get("event") == "step_awaiting_approval" and e.get("run_id") == run_id
                                         and e.get("step_id") == step), timeout=180, what=f"{step} to wait")
        assert bot.command(f"approve {run_id} {step}")["event"] == "reply"
    done = bot.expect(lambda e: e.get("event") == "run_finished" and e.get("run_id") == run_id, timeout=180,
                      what="the run to finish")
    assert done["final_state"] == "succeeded", done
    assert core.read_namespaced_pod(pod, sbx.namespace).metadata.uid != uid
    # The bot reached the restarted broker again, through both listeners.
    for name in ("sec-scram", "sec-mtls"):
        assert "controller 0" in bot.command(f"status {name}", timeout=60)["text"], name


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_rotated_password_is_read_again_and_the_old_client_is_closed(
        sbx: SandboxInfo, kube: client.ApiClient) -> None:
    """The resolver on the sandbox's Kubernetes API and the admin adapter on its TLS listener: the
    KafkaUser is recreated (a new password; the old credential is gone from the broker), and once
    the 30 s are up the next call connects with the new password on a new client, the old one closed."""
    user, probe = "rotating", f"rotation-probe-{uuid.uuid4().hex[:4]}"
    create_user(kube, sbx, user, "scram-sha-512")
    ref = ClusterRef(name="rot", namespace=sbx.namespace, kafka=sbx.cluster, listener="tls")
    gateway = KubeClusterGateway(sbx.api_client())
    clock = Clock()
    resolver = KafkaSecurityResolver(
        {"rot": KafkaSecurityConfig(listener="tls", authentication=AuthenticationConfig(kafka_user=user))},
        gateway, clock=clock)
    admin = KafkaAdminAdapter(client_id=probe, request_timeout_ms=5000, call_deadline_s=15, security=resolver)
    try:
        bootstrap = (await gateway.kafka_status(ref)).bootstrap_servers
        assert bootstrap is not None
        first = await resolver.security(ref)
        assert (await admin.snapshot(ref, bootstrap)).brokers
        (old_io,) = io_threads(probe)
        old_password = secret(kube, sbx, user)["password"]
        client.CustomObjectsApi(kube).delete_namespaced_custom_object("kafka.strimzi.io", "v1", sbx.namespace,
                                                                      "kafkausers", user)
        wait_until(lambda: _gone(kube, sbx, user), timeout=30, message=f"Secret {user} deleted")
        create_user(kube, sbx, user, "scram-sha-512")
        assert secret(kube, sbx, user)["password"] != old_password
        clock.now += 30
        assert (await admin.snapshot(ref, bootstrap)).brokers  # a new client, with the new password
        assert (await resolver.security(ref)).fingerprint != first.fingerprint  # cached: what the call used
        wait_until(lambda: not old_io.is_alive(), timeout=10, message="the old client's I/O thread stopped")
        assert len(io_threads(probe)) == 1  # the new client's
    finally:
        await admin.close()
        gateway.close()


def io_threads(client_id: str) -> list[threading.Thread]:
    """kafka-python's per-client I/O threads are named after the client id."""
    return [t for t in threading.enumerate() if client_id in t.name and t.is_alive()]


def _gone(kube: client.ApiClient, sbx: SandboxInfo, name: str) -> bool:
    try:
        client.CoreV1Api(kube).read_namespaced_secret(name, sbx.namespace)
    except ApiException as exc:
        return exc.status == 404
    return False
