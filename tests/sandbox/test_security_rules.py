"""The sandbox's security pieces that need no broker: listener rules, broker listener properties,
status shapes, certificates (openssl only), the CA and KafkaUser Secrets, the CLI's --listeners."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from bot.sandbox.daemon import kafka_resources
from bot.sandbox.kube.store import ObjectStore
from bot.sandbox.operator import names
from bot.sandbox.operator.certs import CertificateAuthority
from bot.sandbox.operator.cluster import ClusterRuntime
from bot.sandbox.operator.listeners import (
    PRESETS,
    ListenerError,
    TlsFiles,
    broker_listener_config,
    listener_status,
    parse_listeners,
)
from bot.sandbox.operator.secrets import decode, secret_body
from bot.sandbox.operator.users import jaas_config
from tests.sandbox.conftest import RunningEmulator

pytestmark = pytest.mark.timeout(60)
ALL = [PRESETS["plain"], PRESETS["tls"], PRESETS["mtls"]]


def openssl(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], input=stdin, capture_output=True, check=False, timeout=30)


def test_each_listener_gets_the_security_protocol_strimzi_gives_it() -> None:
    """plain -> the internal PLAINTEXT listener; tls+scram -> SASL_SSL; tls+tls -> SSL, named <NAME>-<PORT>."""
    plain, tls, mtls = parse_listeners(ALL)
    assert (plain.protocol, plain.internal) == ("PLAINTEXT", True)
    assert (tls.protocol, tls.kafka_name, tls.prefix) == ("SASL_SSL", "TLS-9093", "listener.name.tls-9093.")
    assert (mtls.protocol, mtls.kafka_name, mtls.internal) == ("SSL", "MTLS-9094", False)
    assert parse_listeners(None) == [plain]  # no listeners declared: the one plain listener, as before


@pytest.mark.parametrize(("listeners", "message"), [
    ([{**PRESETS["plain"], "name": "Plain_1"}], "name must be 1-11 lowercase letters or digits"),
    ([{**PRESETS["plain"], "port": 9091}], "port must be a number from 9092 to 65535"),
    ([{**PRESETS["plain"], "type": "sidecar"}], "type must be one of internal"),
    ([{**PRESETS["plain"], "tls": "yes"}], "tls must be true or false"),
    ([{**PRESETS["mtls"], "tls": False}], "TLS Client Authentication can be used only with enabled TLS encryption"),
    ([{**PRESETS["tls"], "authentication": {"type": "oauth"}}], "authentication.type must be one of"),
    ([PRESETS["tls"], {**PRESETS["mtls"], "port": 9093}], "unique port; used more than once: 9093"),
    ([PRESETS["tls"], {**PRESETS["mtls"], "name": "tls"}], "unique name; used more than once: tls"),
])
def test_invalid_listeners_are_refused_with_what_is_valid(listeners: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ListenerError, match=message.replace("(", r"\(")):
        parse_listeners(listeners)


def test_broker_properties_of_tls_scram_and_mtls_listeners() -> None:
    """Own port per listener, SCRAM-SHA-512 on the SASL_SSL one, client certificates required on mTLS."""
    internal = {"listeners": "PLAINTEXT://127.0.0.1:1,CONTROLLER://127.0.0.1:2",
                "advertised.listeners": "PLAINTEXT://127.0.0.1:1",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"}
    tls = TlsFiles(keystore="/k.p12", keystore_password="pw", clients_ca="/clients.crt")
    cfg = broker_listener_config(parse_listeners(ALL), {"plain": 1, "tls": 3, "mtls": 4}, host="127.0.0.1",
                                 internal=internal, tls=tls)
    assert cfg["listeners"] == ("PLAINTEXT://127.0.0.1:1,CONTROLLER://127.0.0.1:2,TLS-9093://127.0.0.1:3,"
                                "MTLS-9094://127.0.0.1:4")
    assert cfg["advertised.listeners"] == "PLAINTEXT://127.0.0.1:1,TLS-9093://127.0.0.1:3,MTLS-9094://127.0.0.1:4"
    assert cfg["listener.security.protocol.map"].endswith(",TLS-9093:SASL_SSL,MTLS-9094:SSL")
    assert cfg["listener.name.tls-9093.sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert "ScramLoginModule required" in cfg["listener.name.tls-9093.scram-sha-512.sasl.jaas.config"]
    assert "listener.name.tls-9093.ssl.client.auth" not in cfg
    assert cfg["listener.name.mtls-9094.ssl.client.auth"] == "required"
    assert cfg["listener.name.mtls-9094.ssl.truststore.location"] == "/clients.crt"
    for name in ("tls-9093", "mtls-9094"):
        assert cfg[f"listener.name.{name}.ssl.keystore.location"] == "/k.p12"
        assert cfg[f"listener.name.{name}.ssl.keystore.type"] == "PKCS12"
    # A Kafka with only the plain listener changes nothing in the brokers' properties.
    assert broker_listener_config(parse_listeners(None), {"plain": 1}, host="h", internal=internal, tls=None) == {}


def test_listener_status_carries_the_ca_on_tls_listeners_only() -> None:
    status = listener_status(parse_listeners(ALL[:2]), {"plain": [("127.0.0.1", 1), ("127.0.0.1", 2)],
                                                        "tls": [("127.0.0.1", 3), ("127.0.0.1", 4)]}, "PEM")
    assert status == [
        {"name": "plain", "addresses": [{"host": "127.0.0.1", "port": 1}, {"host": "127.0.0.1", "port": 2}],
         "bootstrapServers": "127.0.0.1:1,127.0.0.1:2"},
        {"name": "tls", "addresses": [{"host": "127.0.0.1", "port": 3}, {"host": "127.0.0.1", "port": 4}],
         "bootstrapServers": "127.0.0.1:3,127.0.0.1:4", "certificates": ["PEM"]},
    ]


def test_a_certificate_verifies_against_its_ca_only_and_names_its_addresses(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path / "ca").ensure("cluster-ca v0")
    other = CertificateAuthority(tmp_path / "other").ensure("cluster-ca v0")
    cert = ca.issue(tmp_path / "broker", "c-kafka", sans=["DNS:c-kafka-bootstrap", "IP:127.0.0.1"],
                    organization="io.strimzi")
    assert openssl("verify", "-CAfile", str(ca.cert_path), str(cert.cert_path)).returncode == 0
    assert openssl("verify", "-CAfile", str(other.cert_path), str(cert.cert_path)).returncode != 0
    text = openssl("x509", "-noout", "-text", "-in", str(cert.cert_path)).stdout.decode()
    assert "DNS:c-kafka-bootstrap" in text and "IP Address:127.0.0.1" in text
    p12 = openssl("pkcs12", "-in", str(cert.p12_path), "-nokeys", "-clcerts", "-passin", "stdin",
                  stdin=cert.password().encode() + b"\n")
    assert p12.returncode == 0 and cert.cert_path.read_bytes().strip() in p12.stdout
    assert ca.ensure("cluster-ca v0").cert_pem() == ca.cert_pem()  # made once, kept after


def test_the_operator_publishes_both_cas_as_strimzi_names_them(tmp_path: Path) -> None:
    store = ObjectStore()
    runtime = ClusterRuntime(store, namespace="ns", name="c", work_dir=tmp_path, heap_mb=256)
    runtime.security.set_listeners(parse_listeners(ALL))
    owner = {"apiVersion": names.KAFKA_API_VERSION, "kind": "Kafka", "name": "c", "uid": "u-1"}
    runtime.security.publish_ca_secrets(owner)
    found = {s["metadata"]["name"]: s for s in store.list("", "secrets", "ns")[0]}
    assert sorted(found) == ["c-clients-ca", "c-clients-ca-cert", "c-cluster-ca", "c-cluster-ca-cert"]
    assert decode(found["c-cluster-ca-cert"]) == {"ca.crt": runtime.security.cluster_ca.cert_pem()}
    assert decode(found["c-clients-ca-cert"]) == {"ca.crt": runtime.security.clients_ca.cert_pem()}
    assert set(decode(found["c-cluster-ca"])) == {"ca.key"}
    assert found["c-cluster-ca-cert"]["metadata"]["labels"][names.LABEL_CLUSTER] == "c"
    assert found["c-cluster-ca-cert"]["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    versions = {name: s["metadata"]["resourceVersion"] for name, s in found.items()}
    runtime.security.publish_ca_secrets(owner)  # unchanged: nothing rewritten (watchers see no change)
    assert {s["metadata"]["name"]: s["metadata"]["resourceVersion"] for s in store.list("", "secrets", "ns")[0]} \
        == versions


def test_a_broker_gets_a_keystore_for_its_tls_listeners_and_keeps_its_ports(tmp_path: Path) -> None:
    runtime = ClusterRuntime(ObjectStore(), namespace="ns", name="c", work_dir=tmp_path, heap_mb=256)
    runtime.security.set_listeners(parse_listeners(ALL))
    runtime.set_quorum([(0, 1)])
    pod = runtime.new_pod("dual-role", 0, frozenset({"broker", "controller"}), ports=(5, 1))
    cfg = runtime.node_config(pod, {})
    assert cfg["listeners"].startswith("PLAINTEXT://127.0.0.1:5,CONTROLLER://127.0.0.1:1,TLS-9093://")
    assert runtime.node_config(pod, {}) == cfg  # same ports, same keystore on every render
    keystore = Path(cfg["listener.name.tls-9093.ssl.keystore.location"])
    password = cfg["listener.name.tls-9093.ssl.keystore.password"]
    chain = openssl("pkcs12", "-in", str(keystore), "-nokeys", "-passin", "stdin", stdin=password.encode() + b"\n")
    assert chain.returncode == 0 and b"subject=O = io.strimzi, CN = c-kafka" in chain.stdout
    status = runtime.security.status([pod])
    assert [s["name"] for s in status] == ["plain", "tls", "mtls"]
    assert status[0]["bootstrapServers"] == "127.0.0.1:5"
    assert status[1]["bootstrapServers"] == cfg["advertised.listeners"].split(",")[1].removeprefix("TLS-9093://")


def test_a_secret_is_served_base64_as_kubernetes_serves_it(tmp_path: Path) -> None:
    emulator = RunningEmulator().start()
    try:
        body = secret_body("alice", "ns", {"password": "pw", "sasl.jaas.config": jaas_config("alice", "pw")},
                           labels={names.LABEL_CLUSTER: "c", names.LABEL_KIND: "KafkaUser"})
        emulator.call(lambda: emulator.store.create("", "secrets", "ns", body))
        api = emulator.api_client(tmp_path)
        try:
            got = client.CoreV1Api(api).read_namespaced_secret("alice", "ns")
        finally:
            api.close()
    finally:
        emulator.stop()
    assert got.type == "Opaque"
    assert base64.b64decode(got.data["password"]) == b"pw"
    assert base64.b64decode(got.data["sasl.jaas.config"]).decode() == (
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="pw";')


def test_the_daemon_declares_the_listeners_it_is_asked_for() -> None:
    kafka = kafka_resources(name="c", namespace="ns", brokers=1, version="4.3.1", listeners=("tls",))[-1]
    assert kafka["spec"]["kafka"]["listeners"] == [PRESETS["tls"]]
    assert "userOperator" in kafka["spec"]["entityOperator"]


def test_sandbox_up_refuses_an_unknown_listener_before_starting_anything(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "bot", "sandbox", "up", "--name", "x", "--listeners", "plain,ssl"],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "KAFKA_CHATOPS_SANDBOX_HOME": str(tmp_path)})
    assert proc.returncode == 1
    assert "error: --listeners 'plain,ssl' is not valid: give one or more of plain, tls, mtls" in proc.stderr
    assert not (tmp_path / "x").exists()
