"""explain_connection_failure against real brokers: the TLS, SCRAM-SHA-512 and mTLS listeners.

One sandbox (1 dual-role node) with ``--listeners plain,tls,mtls``. The probe gets only what the
Kubernetes API gives a client (the listener's bootstrap from the Kafka status, the cluster CA from
``<cluster>-cluster-ca-cert``, the KafkaUsers' Secrets), then something wrong in one place, and
must name that place: the broker's SASL refusal, the handshake's unknown CA, the broker's alert on
a client certificate (foreign, or expired though signed by the cluster's real clients CA, whose key
the sandbox publishes in ``<cluster>-clients-ca`` as Strimzi does).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.rest import ApiException

from bot.kafka.handshake import explain_connection_failure
from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_until
from tests.kafka.tls_listener import client_context, issue, make_ca
from tests.sandbox.cluster_helpers import StrimziCluster

pytestmark = pytest.mark.sandbox
NAME = "probe"
REFUSED_CERT = "TLS: the broker refused our client certificate ("


@pytest.fixture(scope="module")
def cluster(sandbox_factory: Callable[..., SandboxInfo]) -> Iterator[StrimziCluster]:
    info = sandbox_factory(NAME, brokers=1, extra_args=("--listeners", "plain,tls,mtls"))
    api = info.api_client()
    try:
        yield StrimziCluster(api, info.namespace, info.cluster)
    finally:
        api.close()
        info.down()


def secret(cluster: StrimziCluster, name: str) -> dict[str, bytes]:
    data = cluster.core.read_namespaced_secret(name, cluster.namespace).data or {}
    return {k: base64.b64decode(v) for k, v in data.items()}


def create_user(cluster: StrimziCluster, name: str, auth: str) -> None:
    try:
        cluster.get("kafkausers", name)
    except ApiException:
        cluster.custom.create_namespaced_custom_object("kafka.strimzi.io", "v1", cluster.namespace, "kafkausers", {
            "apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaUser",
            "metadata": {"name": name, "labels": {"strimzi.io/cluster": NAME}},
            "spec": {"authentication": {"type": auth}}})

    def ready() -> bool:
        status = cluster.get("kafkausers", name).get("status") or {}
        return any(c["type"] == "Ready" for c in status.get("conditions") or [])

    wait_until(ready, timeout=60, message=f"KafkaUser {name} Ready")


@pytest.fixture(scope="module")
def env(cluster: StrimziCluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Bootstraps, CA files, alice's password, bob's certificate, and the wrong certificates."""
    d = tmp_path_factory.mktemp("probe")
    create_user(cluster, "alice", "scram-sha-512")
    create_user(cluster, "bob", "tls")

    def write(name: str, data: bytes) -> Path:
        (d / name).write_bytes(data)
        return d / name

    listeners = {lst["name"]: lst["bootstrapServers"] for lst in cluster.kafka()["status"]["listeners"]}
    bob = secret(cluster, "bob")
    clients_ca = (write("clients-ca.crt", secret(cluster, f"{NAME}-clients-ca-cert")["ca.crt"]),
                  write("clients-ca.key", secret(cluster, f"{NAME}-clients-ca")["ca.key"]))
    return {
        "listeners": listeners,
        "cluster_ca": write("cluster-ca.crt", secret(cluster, f"{NAME}-cluster-ca-cert")["ca.crt"]),
        "password": secret(cluster, "alice")["password"].decode(),
        "bob": (write("bob.crt", bob["user.crt"]), write("bob.key", bob["user.key"])),
        "bob_expired": issue(d, "bob-expired", clients_ca, sans=(), days=-1),
        "foreign": issue(d, "bob-foreign", make_ca(d, "foreign-ca"), sans=()),
        "foreign_ca": make_ca(d, "other-cluster-ca")[0],
    }


def probe(bootstrap: str, context: Any = None, mechanism: str | None = None, user: str | None = None,
          password: str | None = None) -> str | None:
    return explain_connection_failure(bootstrap, ssl_context=context, sasl_mechanism=mechanism, username=user,
                                      password=password, timeout_s=5)


def test_the_right_settings_for_each_listener_give_no_explanation(env: dict[str, Any]) -> None:
    ca = env["cluster_ca"]
    assert probe(env["listeners"]["plain"]) is None
    assert probe(env["listeners"]["tls"], client_context(ca), "SCRAM-SHA-512", "alice", env["password"]) is None
    assert probe(env["listeners"]["mtls"], client_context(ca, env["bob"])) is None


def test_a_wrong_scram_password_is_the_brokers_refusal_naming_the_user(env: dict[str, Any]) -> None:
    said = probe(env["listeners"]["tls"], client_context(env["cluster_ca"]), "SCRAM-SHA-512", "alice",
                 "not-the-password")
    assert said is not None and said.startswith(
        "SASL authentication failed for user alice (SCRAM-SHA-512): the broker refused the credentials")
    assert "not-the-password" not in said and env["password"] not in said


def test_a_mechanism_the_listener_does_not_enable_lists_what_it_offers(env: dict[str, Any]) -> None:
    said = probe(env["listeners"]["tls"], client_context(env["cluster_ca"]), "SCRAM-SHA-256", "alice",
                 env["password"])
    assert said == (f"SASL: the listener at {env['listeners']['tls']} does not enable SCRAM-SHA-256 (it offers "
                    "SCRAM-SHA-512): configure one of those mechanisms.")


def test_a_sasl_listener_reached_without_credentials_says_it_requires_them(env: dict[str, Any]) -> None:
    said = probe(env["listeners"]["tls"], client_context(env["cluster_ca"]))
    assert said is not None and said.startswith(f"SASL: the listener at {env['listeners']['tls']} requires SASL "
                                                "authentication (it offers SCRAM-SHA-512)")


def test_sasl_settings_for_a_listener_without_sasl_are_named(env: dict[str, Any]) -> None:
    said = probe(env["listeners"]["mtls"], client_context(env["cluster_ca"], env["bob"]), "SCRAM-SHA-512", "alice",
                 env["password"])
    assert said is not None and said.startswith(f"SASL: the listener at {env['listeners']['mtls']} does not use "
                                                "SASL authentication")


def test_a_client_trusting_a_foreign_ca_gets_the_unknown_ca(env: dict[str, Any]) -> None:
    said = probe(env["listeners"]["tls"], client_context(env["foreign_ca"]), "SCRAM-SHA-512", "alice",
                 env["password"])
    assert said is not None and said.startswith("TLS: certificate signed by an unknown CA: the broker at "
                                                f"{env['listeners']['tls']}")


@pytest.mark.parametrize("certificate", ["foreign", "bob_expired"])
def test_a_client_certificate_the_mtls_listener_does_not_accept_is_refused(env: dict[str, Any],
                                                                           certificate: str) -> None:
    """From a foreign CA; or signed by the cluster's clients CA but expired: the broker's alert, named."""
    said = probe(env["listeners"]["mtls"], client_context(env["cluster_ca"], env[certificate]))
    assert said is not None and said.startswith(REFUSED_CERT), said
    assert env["listeners"]["mtls"] in said


def test_the_mtls_listener_without_a_client_certificate(env: dict[str, Any]) -> None:
    """Kafka (Java) answers an empty certificate with bad_certificate, not TLS 1.3's certificate_required."""
    said = probe(env["listeners"]["mtls"], client_context(env["cluster_ca"]))
    assert said is not None and said.startswith(REFUSED_CERT + "SSLV3_ALERT_BAD_CERTIFICATE)"), said
    assert "or found none (an mTLS listener needs one)" in said


def test_tls_and_plaintext_mismatches_are_named(env: dict[str, Any]) -> None:
    plain, tls = env["listeners"]["plain"], env["listeners"]["tls"]
    said = probe(plain, client_context(env["cluster_ca"]))
    assert said is not None and said.startswith(f"TLS: the listener at {plain} does not speak TLS"), said
    said = probe(tls, None, "SCRAM-SHA-512", "alice", env["password"])
    assert said is not None and said.startswith(f"TLS: the listener at {tls} speaks TLS and the bot connects in "
                                                "plaintext"), said
