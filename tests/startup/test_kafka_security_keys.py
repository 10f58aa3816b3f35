"""The clusters file's Kafka security keys (`listener`, `tls`, `authentication`): read as written,
with the listener carried to the cluster's ref (its bootstrap comes from that listener), and refused
at start, naming the cluster and the key, saying what is wrong and what is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.settings import ConfigError, load_clusters, load_clusters_config

pytestmark = pytest.mark.timeout(10)

BASE = "clusters:\n  prod:\n    namespace: kafka\n    approvers: [U01ANA]\n"


def write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "clusters.yaml"
    path.write_text(BASE + extra)
    return path


def refusal(tmp_path: Path, extra: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_clusters(write(tmp_path, extra))
    return str(caught.value)


def test_without_the_keys_a_cluster_is_plaintext_on_the_first_listener(tmp_path: Path) -> None:
    clusters, _, security = load_clusters_config(write(tmp_path, ""))
    assert clusters["prod"].ref.listener is None
    assert security["prod"].plaintext


def test_the_keys_are_read_and_the_listener_goes_to_the_ref(tmp_path: Path) -> None:
    clusters, _, security = load_clusters_config(write(tmp_path, (
        "    listener: tls\n"
        "    tls: {ca_secret: prod-cluster-ca-cert}\n"
        "    authentication: {type: scram-sha-512, kafka_user: kafka-chatops}\n")))
    assert clusters["prod"].ref.listener == "tls"
    prod = security["prod"]
    assert not prod.plaintext and prod.listener == "tls"
    assert prod.tls is not None and prod.tls.ca_secret == "prod-cluster-ca-cert"
    assert prod.authentication is not None
    assert (prod.authentication.type, prod.authentication.kafka_user) == ("scram-sha-512", "kafka-chatops")


@pytest.mark.parametrize("extra", [
    "    listener: mtls\n    authentication: {kafka_user: bot}\n",  # type from the listener
    "    listener: tls\n    tls: {}\n",  # the default CA Secret, said explicitly
    "    tls: {ca_file: /etc/kafka-ca/ca.crt}\n    authentication: {type: tls, kafka_user: bot}\n",
    "    authentication: {type: plain, username: bot, password_secret: {name: bot-pw}}\n",
    "    authentication: {type: plain, username: bot, password_file: /run/pw}\n",
    "    listener: oauth\n    authentication: {type: oauthbearer, token_file: /run/token}\n",
])
def test_each_valid_form_is_accepted(tmp_path: Path, extra: str) -> None:
    assert "prod" in load_clusters(write(tmp_path, extra))


@pytest.mark.parametrize(("extra", "said"), [
    ("    authentication: {type: gssapi, kafka_user: bot}\n",
     "clusters.prod.authentication.type: 'gssapi' is not an authentication type: give one of scram-sha-512, tls, "
     "plain, oauthbearer (GSSAPI/Kerberos is not offered)"),
    ("    tls: {ca_secret: prod-cluster-ca-cert, ca_file: /etc/ca.crt}\n",
     "clusters.prod.tls: ca_secret and ca_file both given: give one place to trust the cluster CA from"),
    ("    listener: tls\n    authentication: {type: scram-sha-512}\n",
     "clusters.prod.authentication: type scram-sha-512 needs kafka_user: the KafkaUser whose Secret"),
    ("    listener: mtls\n    authentication: {type: tls}\n", "type tls needs kafka_user"),
    ("    authentication: {type: plain, password_file: /run/pw}\n", "type plain needs username"),
    ("    authentication: {type: plain, username: bot}\n",
     "type plain needs one password: password_secret {name, key} (a Secret in the cluster's namespace) or "
     "password_file (a mounted file), not neither"),
    ("    authentication: {type: plain, username: bot, password_file: /a, password_secret: {name: b}}\n",
     "not both"),
    ("    authentication: {type: oauthbearer}\n", "type oauthbearer needs token_file"),
    ("    listener: tls\n    authentication: {type: scram-sha-512, kafka_user: bot, password_file: /a}\n",
     "password_file not used with type scram-sha-512: it takes kafka_user"),
    ("    listener: tls\n    authentication: {username: bot}\n",
     "username given without `type`: give `type` (scram-sha-512, tls, plain, oauthbearer)"),
    ("    authentication: {kafka_user: bot}\n",
     "clusters.prod: authentication has no `type` and no `listener` is given to take it from"),
    ("    authentication: {type: tls, kafka_user: bot}\n",
     "authentication type tls (a client certificate) needs TLS: give `listener` (one with tls: true) or a `tls:`"),
    ("    listener: TLS-1\n", "clusters.prod.listener: 'TLS-1' is not a Strimzi listener name: lowercase letters and "
                            "digits, at most 25"),
    ("    listener: tls\n    tls: {ca_secret: Prod_CA}\n",
     "clusters.prod.tls.ca_secret: 'Prod_CA' is not a Secret name"),
    ("    listener: tls\n    authentication: {type: tls, kafka_user: Bob}\n",
     "clusters.prod.authentication.kafka_user: 'Bob' is not a KafkaUser name"),
    ("    listener: tls\n    tls: {ca_cert: x}\n",
     "clusters.prod.tls.ca_cert: unknown key (valid here: ca_secret, ca_file)"),
    ("    listener: tls\n    authentication: {type: scram-sha-512, kafka_user: bot, user: x}\n",
     "clusters.prod.authentication.user: unknown key (valid here: type, kafka_user, username, password_secret, "
     "password_file, token_file)"),
])
def test_a_bad_key_is_refused_saying_what_is_valid(tmp_path: Path, extra: str, said: str) -> None:
    assert said in refusal(tmp_path, extra)


def test_a_password_written_in_the_file_is_not_a_key_and_is_not_echoed(tmp_path: Path) -> None:
    """Passwords do not belong in the clusters file: an unknown key is refused by name, the value unshown."""
    message = refusal(tmp_path, "    listener: tls\n    authentication: {type: scram-sha-512, kafka_user: bot, "
                                "password: hunter2-secret}\n")
    assert "clusters.prod.authentication.password: unknown key" in message
    assert "hunter2-secret" not in message


def test_the_readme_examples_load_as_documented(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("**Kafka security (TLS and SASL).**", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "clusters.yaml"
    path.write_text(block)
    clusters, _, security = load_clusters_config(path)
    kinds = {name: (s.listener, s.authentication.type if s.authentication else None) for name, s in security.items()}
    assert kinds == {"prod-east": ("tls", None), "prod-east-mtls": ("mtls", "tls"), "lab": ("external", "plain"),
                     "sso": ("oauth", "oauthbearer")}
    assert clusters["prod-east-mtls"].ref.kafka == "prod-east"
