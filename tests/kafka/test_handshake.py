"""explain_connection_failure: TCP and TLS failures named as such, against local OpenSSL listeners.

Each test makes the failure really happen (a real handshake between Python's ssl on both sides,
certificates from the openssl command) and asserts the sentence the user gets. The SASL steps and
the Kafka brokers' own TLS are proved in tests/sandbox/test_connection_probe.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.kafka.handshake import explain_connection_failure
from tests.kafka.tls_listener import client_context, free_port, issue, listener, make_ca, server_context

pytestmark = pytest.mark.timeout(30)

Pair = tuple[Path, Path]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pair]:
    """The cluster CA and what it signed, the clients CA and its user, and a foreign CA with its own."""
    d = tmp_path_factory.mktemp("pki")
    cluster_ca, clients_ca, foreign_ca = make_ca(d, "cluster-ca"), make_ca(d, "clients-ca"), make_ca(d, "foreign-ca")
    return {
        "cluster_ca": cluster_ca, "clients_ca": clients_ca, "foreign_ca": foreign_ca,
        "broker": issue(d, "broker", cluster_ca, sans=("IP:127.0.0.1", "DNS:localhost")),
        "broker_expired": issue(d, "broker-expired", cluster_ca, days=-1),
        "broker_elsewhere": issue(d, "broker-elsewhere", cluster_ca, sans=("DNS:kafka-0.example.com",)),
        "alice": issue(d, "alice", clients_ca, sans=()),
        "alice_expired": issue(d, "alice-expired", clients_ca, sans=(), days=-1),
        "mallory": issue(d, "mallory", foreign_ca, sans=()),
    }


def explain(bootstrap: str, context: object = None) -> str | None:
    return explain_connection_failure(bootstrap, ssl_context=context,  # type: ignore[arg-type]
                                      sasl_mechanism=None, username=None, password=None, timeout_s=3)


def test_a_tls_listener_that_verifies_gives_no_explanation(pki: dict[str, Pair]) -> None:
    with listener(server_context(pki["broker"])) as address:
        assert explain(address, client_context(pki["cluster_ca"][0])) is None


def test_a_plaintext_listener_reached_in_plaintext_gives_no_explanation() -> None:
    with listener(None) as address:
        assert explain(address) is None


def test_a_refused_port_is_named_with_the_address() -> None:
    address = f"127.0.0.1:{free_port()}"
    said = explain(address)
    assert said is not None and said.startswith(f"TCP: {address} refused the connection")


def test_an_unresolvable_host_is_a_dns_failure() -> None:
    said = explain("no-such-broker.invalid:9093")
    assert said is not None and said.startswith("TCP: cannot resolve the host no-such-broker.invalid")


def test_a_malformed_bootstrap_says_what_is_valid() -> None:
    said = explain("broker-without-port")
    assert said == "Bootstrap address 'broker-without-port' is not host:port (e.g. my-cluster-kafka-bootstrap:9093)."


def test_the_first_reachable_bootstrap_address_is_probed(pki: dict[str, Pair]) -> None:
    with listener(server_context(pki["broker"])) as address:
        said = explain(f"127.0.0.1:{free_port()},{address}", client_context(pki["foreign_ca"][0]))
    assert said is not None and said.startswith("TLS: certificate signed by an unknown CA: the broker at "
                                                f"{address} presented")


def test_a_broker_certificate_from_another_ca_is_an_unknown_ca(pki: dict[str, Pair]) -> None:
    with listener(server_context(pki["broker"])) as address:
        said = explain(address, client_context(pki["foreign_ca"][0]))
    assert said is not None and said.startswith("TLS: certificate signed by an unknown CA")
    assert address in said and "<cluster>-cluster-ca-cert" in said


def test_an_expired_broker_certificate_is_named(pki: dict[str, Pair]) -> None:
    with listener(server_context(pki["broker_expired"])) as address:
        said = explain(address, client_context(pki["cluster_ca"][0]))
    assert said is not None and said.startswith(f"TLS: the broker's certificate has expired: the broker at {address}")


def test_a_broker_certificate_for_another_host_is_named(pki: dict[str, Pair]) -> None:
    with listener(server_context(pki["broker_elsewhere"])) as address:
        said = explain(address, client_context(pki["cluster_ca"][0]))
    assert said is not None and said.startswith("TLS: the broker's certificate does not name the host 127.0.0.1")


def test_tls_against_a_plaintext_listener_says_it_does_not_speak_tls(pki: dict[str, Pair]) -> None:
    with listener(None) as address:
        said = explain(address, client_context(pki["cluster_ca"][0]))
    assert said is not None and said.startswith(f"TLS: the listener at {address} does not speak TLS")


def test_plaintext_against_a_tls_listener_says_it_speaks_tls(pki: dict[str, Pair]) -> None:
    with listener(server_context(pki["broker"])) as address:
        said = explain(address)
    assert said is not None and said.startswith(f"TLS: the listener at {address} speaks TLS and the bot connects "
                                                "in plaintext")


@pytest.mark.parametrize("user", ["mallory", "alice_expired"])
def test_a_client_certificate_the_listener_does_not_accept_is_refused(pki: dict[str, Pair], user: str) -> None:
    """A certificate from a foreign CA, and an expired one from the right CA: the server's alert."""
    with listener(server_context(pki["broker"], clients_ca=pki["clients_ca"][0])) as address:
        said = explain(address, client_context(pki["cluster_ca"][0], pki[user]))
    assert said is not None and said.startswith("TLS: the broker refused our client certificate (")
    assert address in said and "KafkaUser's Secret" in said


def test_a_listener_that_requires_a_client_certificate_when_none_is_sent(pki: dict[str, Pair]) -> None:
    with listener(server_context(pki["broker"], clients_ca=pki["clients_ca"][0])) as address:
        assert explain(address, client_context(pki["cluster_ca"][0], pki["alice"])) is None
        said = explain(address, client_context(pki["cluster_ca"][0]))
    assert said is not None and said.startswith(f"TLS: the broker at {address} requires a client certificate (mTLS) "
                                                "and the bot sent none")
