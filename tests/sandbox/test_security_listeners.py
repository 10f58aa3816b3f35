"""TLS listeners, SCRAM-SHA-512 and mTLS KafkaUsers on real brokers, seen as a client sees them.

One sandbox (1 dual-role node: security does not need a quorum of three, and a start costs seconds)
started with ``--listeners plain,tls,mtls``. Clients are kafka-python's, configured only from what
the Kubernetes API gives: the listener's bootstrap from the Kafka status, the CA from the Secret
``<cluster>-cluster-ca-cert``, the credentials from the KafkaUser's Secret. Every refusal asserted
is the broker's (or the TLS handshake's), not a timeout of ours.
"""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError
from kafka.net.compat import KafkaNetClient
from kubernetes.client.rest import ApiException

from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_until
from tests.sandbox.cluster_helpers import StrimziCluster, with_admin

pytestmark = pytest.mark.sandbox
NAME = "sec"


@pytest.fixture(scope="module")
def sbx(sandbox_factory: Callable[..., SandboxInfo]) -> Iterator[SandboxInfo]:
    info = sandbox_factory(NAME, brokers=1, extra_args=("--listeners", "plain,tls,mtls"))
    try:
        yield info
    finally:
        info.down()


@pytest.fixture(scope="module")
def cluster(sbx: SandboxInfo) -> Iterator[StrimziCluster]:
    api = sbx.api_client()
    try:
        yield StrimziCluster(api, sbx.namespace, sbx.cluster)
    finally:
        api.close()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tls")


def secret(cluster: StrimziCluster, name: str) -> dict[str, bytes]:
    data = cluster.core.read_namespaced_secret(name, cluster.namespace).data or {}
    return {k: base64.b64decode(v) for k, v in data.items()}


def bootstrap(cluster: StrimziCluster, listener: str) -> str:
    listeners = cluster.kafka()["status"]["listeners"]
    return str(next(lst for lst in listeners if lst["name"] == listener)["bootstrapServers"])


def cluster_ca_file(cluster: StrimziCluster, files: Path) -> str:
    path = files / "cluster-ca.crt"
    path.write_bytes(secret(cluster, f"{NAME}-cluster-ca-cert")["ca.crt"])
    return str(path)


def create_user(cluster: StrimziCluster, name: str, auth: str) -> dict[str, Any]:
    """Create the KafkaUser unless it exists (tests may run alone); its status once Ready."""
    try:
        cluster.get("kafkausers", name)
    except ApiException:
        cluster.custom.create_namespaced_custom_object("kafka.strimzi.io", "v1", cluster.namespace, "kafkausers", {
            "apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaUser",
            "metadata": {"name": name, "labels": {"strimzi.io/cluster": NAME}},
            "spec": {"authentication": {"type": auth}}})

    def ready() -> dict[str, Any] | None:
        status = cluster.get("kafkausers", name).get("status") or {}
        return status if any(c["type"] == "Ready" for c in status.get("conditions") or []) else None

    return wait_until(ready, timeout=60, message=f"KafkaUser {name} Ready")


def connect(**config: Any) -> str:
    """Connect an admin client and describe the cluster; the cluster id."""
    client = KafkaAdminClient(**{"request_timeout_ms": 10000, **config})
    try:
        return str(client.describe_cluster()["cluster_id"])
    finally:
        client.close()


def refused(caplog: pytest.LogCaptureFixture, **config: Any) -> str:
    """Connect and expect failure; kafka-python's logged connection errors (what the handshake said)."""
    caplog.clear()
    made: list[KafkaNetClient] = []

    def kafka_client(**kwargs: Any) -> KafkaNetClient:  # kept, to stop its I/O thread after the failure
        made.append(KafkaNetClient(**kwargs))
        return made[-1]

    try:
        with caplog.at_level(logging.ERROR, logger="kafka"), pytest.raises(KafkaError):
            connect(**{**config, "request_timeout_ms": 4000, "bootstrap_timeout_ms": 4000,
                       "kafka_client": kafka_client})
    finally:
        for client in made:  # a KafkaAdminClient whose bootstrap failed never closes its own
            client.close()
            client._net.stop()
    return "\n".join(r.getMessage() for r in caplog.records)


def broker_log(cluster: StrimziCluster) -> str:
    """``kubectl logs`` of the broker pod."""
    return str(cluster.core.read_namespaced_pod_log(f"{NAME}-dual-role-0", cluster.namespace))


def failed_logins(cluster: StrimziCluster) -> int:
    return broker_log(cluster).count("Failed authentication with /127.0.0.1")


def scram_config(cluster: StrimziCluster, files: Path, user: str, password: str) -> dict[str, Any]:
    return {"bootstrap_servers": bootstrap(cluster, "tls"), "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": user, "sasl_plain_password": password,
            "ssl_cafile": cluster_ca_file(cluster, files)}


def test_tls_listeners_report_the_cluster_ca_that_the_secret_holds(sbx: SandboxInfo,
                                                                    cluster: StrimziCluster) -> None:
    ca = secret(cluster, f"{NAME}-cluster-ca-cert")["ca.crt"].decode()
    clients_ca = secret(cluster, f"{NAME}-clients-ca-cert")["ca.crt"].decode()
    assert ca.startswith("-----BEGIN CERTIFICATE-----") and clients_ca != ca
    listeners = {lst["name"]: lst for lst in cluster.kafka()["status"]["listeners"]}
    assert list(listeners) == ["plain", "tls", "mtls"]
    assert "certificates" not in listeners["plain"]
    assert listeners["tls"]["certificates"] == [ca] and listeners["mtls"]["certificates"] == [ca]
    ports = {name: lst["addresses"][0]["port"] for name, lst in listeners.items()}
    assert len(set(ports.values())) == 3, ports  # each listener is a port of its own on the broker
    assert sbx.raw["listeners"]["tls"] == listeners["tls"]["bootstrapServers"]


def test_a_scram_user_produces_and_consumes_through_tls_with_the_secret_and_the_cluster_ca(
        cluster: StrimziCluster, files: Path) -> None:
    status = create_user(cluster, "alice", "scram-sha-512")
    assert (status["username"], status["secret"]) == ("alice", "alice")
    creds = secret(cluster, "alice")
    password = creds["password"].decode()
    assert len(password) == 32 and password.isalnum()
    assert creds["sasl.jaas.config"].decode() == ("org.apache.kafka.common.security.scram.ScramLoginModule "
                                                  f'required username="alice" password="{password}";')
    config = scram_config(cluster, files, "alice", password)
    topic = f"sec-{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(request_timeout_ms=10000, **config)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(**config)
    try:
        producer.send(topic, b"over TLS").get(timeout=30)
    finally:
        producer.close()
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=30000, **config)
    try:
        assert next(iter(consumer)).value == b"over TLS"
    finally:
        consumer.close()


def test_a_wrong_password_is_refused_by_the_broker(cluster: StrimziCluster, files: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    create_user(cluster, "alice", "scram-sha-512")
    before = failed_logins(cluster)
    refused(caplog, **scram_config(cluster, files, "alice", "not-the-password"))
    # kafka-python sometimes reads the broker's close before its SaslAuthenticate error, so the
    # broker's own log is the witness that it was the credentials, not the network.
    assert failed_logins(cluster) > before
    assert "invalid credentials with SASL mechanism SCRAM-SHA-512" in broker_log(cluster)


def test_a_client_that_does_not_trust_the_cluster_ca_fails_verification(
        cluster: StrimziCluster, files: Path, caplog: pytest.LogCaptureFixture) -> None:
    create_user(cluster, "alice", "scram-sha-512")
    password = secret(cluster, "alice")["password"].decode()
    config = {k: v for k, v in scram_config(cluster, files, "alice", password).items() if k != "ssl_cafile"}
    said = refused(caplog, **config)  # the system's CAs only
    assert "CERTIFICATE_VERIFY_FAILED" in said


def test_an_mtls_user_connects_with_its_certificate(cluster: StrimziCluster, files: Path) -> None:
    status = create_user(cluster, "bob", "tls")
    assert (status["username"], status["secret"]) == ("CN=bob", "bob")
    creds = secret(cluster, "bob")
    assert set(creds) == {"ca.crt", "user.crt", "user.key", "user.p12", "user.password"}
    assert creds["ca.crt"] == secret(cluster, f"{NAME}-clients-ca-cert")["ca.crt"]
    (files / "bob.crt").write_bytes(creds["user.crt"])
    (files / "bob.key").write_bytes(creds["user.key"])
    (files / "bob.p12").write_bytes(creds["user.p12"])
    subject = subprocess.run(["openssl", "x509", "-noout", "-subject", "-in", str(files / "bob.crt")],
                             capture_output=True, text=True, check=True).stdout
    assert subject.strip().endswith("CN = bob")
    # The keystore opens with its password and holds the same certificate.
    p12 = subprocess.run(["openssl", "pkcs12", "-in", str(files / "bob.p12"), "-nokeys", "-clcerts",
                          "-passin", "stdin"], input=creds["user.password"] + b"\n", capture_output=True, check=True)
    assert creds["user.crt"].strip() in p12.stdout
    cluster_id = connect(bootstrap_servers=bootstrap(cluster, "mtls"), security_protocol="SSL",
                         ssl_cafile=cluster_ca_file(cluster, files), ssl_certfile=str(files / "bob.crt"),
                         ssl_keyfile=str(files / "bob.key"))
    assert cluster_id == cluster.kafka()["status"]["clusterId"]


def test_a_certificate_from_a_foreign_ca_is_refused_in_the_handshake(
        cluster: StrimziCluster, files: Path, caplog: pytest.LogCaptureFixture) -> None:
    key, crt = files / "foreign.key", files / "foreign.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(crt), "-subj", "/CN=bob", "-days", "1"],
                   capture_output=True, check=True)
    said = refused(caplog, bootstrap_servers=bootstrap(cluster, "mtls"), security_protocol="SSL",
                   ssl_cafile=cluster_ca_file(cluster, files), ssl_certfile=str(crt), ssl_keyfile=str(key))
    assert "ALERT_CERTIFICATE_UNKNOWN" in said  # the broker's alert: no path to the clients CA


def test_deleting_a_kafka_user_removes_its_secret_and_its_credential(
        sbx: SandboxInfo, cluster: StrimziCluster, files: Path, caplog: pytest.LogCaptureFixture) -> None:
    create_user(cluster, "alice", "scram-sha-512")
    create_user(cluster, "carol", "scram-sha-512")
    password = secret(cluster, "carol")["password"].decode()
    connect(**scram_config(cluster, files, "carol", password))
    cluster.custom.delete_namespaced_custom_object("kafka.strimzi.io", "v1", cluster.namespace, "kafkausers", "carol")

    def gone() -> bool:
        try:
            cluster.core.read_namespaced_secret("carol", cluster.namespace)
            return False
        except ApiException as e:
            return e.status == 404

    wait_until(gone, timeout=30, message="Secret carol deleted")
    plain = bootstrap(cluster, "plain")
    wait_until(lambda: "carol" not in with_admin(plain, lambda a: a.describe_user_scram_credentials()),
               timeout=30, message="SCRAM credential of carol deleted")
    assert "alice" in with_admin(plain, lambda a: a.describe_user_scram_credentials())
    before = failed_logins(cluster)
    refused(caplog, **scram_config(cluster, files, "carol", password))
    assert failed_logins(cluster) > before



def test_a_kafka_with_only_the_tls_listener_rolls_and_serves_it(cluster: StrimziCluster, files: Path) -> None:
    """Dropping `mtls` and `plain` rolls the broker (its listeners change); the status lists `tls` only.

    (Dropping `plain` alone would not roll: the brokers keep their internal PLAINTEXT listener.)"""
    create_user(cluster, "alice", "scram-sha-512")
    uid = cluster.core.read_namespaced_pod(f"{NAME}-dual-role-0", cluster.namespace).metadata.uid
    listeners = [lst for lst in cluster.kafka()["spec"]["kafka"]["listeners"] if lst["name"] == "tls"]
    generation = cluster.patch_kafka({"spec": {"kafka": {"listeners": listeners}}})

    def reconciled() -> dict[str, Any] | None:
        status = cluster.kafka().get("status") or {}
        done = status.get("observedGeneration") == generation and any(
            c["type"] == "Ready" for c in status.get("conditions") or [])
        return status if done else None

    status = wait_until(reconciled, timeout=180, message="Kafka reconciled with the tls listener only")
    assert [lst["name"] for lst in status["listeners"]] == ["tls"]
    assert cluster.core.read_namespaced_pod(f"{NAME}-dual-role-0", cluster.namespace).metadata.uid != uid
    password = secret(cluster, "alice")["password"].decode()
    assert connect(**scram_config(cluster, files, "alice", password)) == status["clusterId"]
