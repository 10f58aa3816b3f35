"""Each cluster's Kafka client settings, resolved from the clusters file, the listener in the Kafka
resource and Secrets (a fake Kubernetes port: what the real one returns is proven by the sandbox e2e,
tests/security): the protocol and mechanism each listener needs, the CA and credentials from the
right Secrets, re-read after 30 s or a failure, and never shown in a repr, a log line or a message."""

from __future__ import annotations

import logging
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.client import AIOKafkaClient
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient
from kafka.net.sasl.oauth import AbstractTokenProvider

from bot.config.kafka_security import AuthenticationConfig, KafkaSecurityConfig, SecretKey, TlsConfig
from bot.kafka.client_security import PLAINTEXT_SECURITY
from bot.kafka.security import KafkaSecurityError, KafkaSecurityResolver, explain_failure
from handlers.ports import ClusterRef
from tests.fakes.kafka_secrets import FakeSecurityKube

pytestmark = pytest.mark.timeout(20)

REF = ClusterRef(name="prod", namespace="kafka", kafka="prod-kafka", listener="tls")
PASSWORD = "Sup3rS3cretPassw0rdOfTheBotUser1"
LISTENERS = [
    {"name": "plain", "port": 9092, "type": "internal", "tls": False},
    {"name": "tls", "port": 9093, "type": "internal", "tls": True, "authentication": {"type": "scram-sha-512"}},
    {"name": "mtls", "port": 9094, "type": "internal", "tls": True, "authentication": {"type": "tls"}},
]


def pem_pair(folder: Path, cn: str) -> tuple[bytes, bytes]:
    """A self-signed certificate and its key, PEM."""
    key, crt = folder / f"{cn}.key", folder / f"{cn}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(crt), "-subj", f"/CN={cn}", "-days", "1"],
                   capture_output=True, check=True)
    return crt.read_bytes(), key.read_bytes()


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("pem")
    ca, _ = pem_pair(folder, "cluster-ca")
    other_ca, _ = pem_pair(folder, "renewed-ca")
    user_crt, user_key = pem_pair(folder, "bob")
    return {"ca": ca, "other_ca": other_ca, "user.crt": user_crt, "user.key": user_key}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def kube_with(pems: dict[str, bytes]) -> FakeSecurityKube:
    kube = FakeSecurityKube(LISTENERS)
    kube.secrets["prod-kafka-cluster-ca-cert"] = {"ca.crt": pems["ca"], "ca.p12": b"x", "ca.password": b"y"}
    jaas = f'org.apache.kafka.common.security.scram.ScramLoginModule required username="alice" password="{PASSWORD}";'
    kube.secrets["alice"] = {"password": PASSWORD.encode(), "sasl.jaas.config": jaas.encode()}
    kube.secrets["bob"] = {"ca.crt": pems["other_ca"], "user.crt": pems["user.crt"], "user.key": pems["user.key"]}
    return kube


def scram(listener: str = "tls", **auth: str) -> KafkaSecurityConfig:
    return KafkaSecurityConfig(listener=listener, authentication=AuthenticationConfig(kafka_user="alice", **auth))


def key_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("kco-tls-*"))


def ca_names(context: ssl.SSLContext | None) -> list[str]:
    assert context is not None
    return [dict(part[0] for part in cert["subject"])["commonName"] for cert in context.get_ca_certs()]


async def test_a_cluster_without_keys_is_plaintext_and_reads_nothing(pems: dict[str, bytes]) -> None:
    kube = kube_with(pems)
    resolver = KafkaSecurityResolver({"prod": KafkaSecurityConfig()}, kube)
    assert await resolver.security(REF) is PLAINTEXT_SECURITY
    assert await resolver.security(REF.model_copy(update={"name": "unlisted"})) is PLAINTEXT_SECURITY
    assert kube.reads == []


async def test_a_tls_scram_listener_gives_sasl_ssl_with_the_user_secret_and_the_default_cluster_ca(
        pems: dict[str, bytes]) -> None:
    kube = kube_with(pems)
    security = await KafkaSecurityResolver({"prod": scram()}, kube).security(REF)
    assert (security.security_protocol, security.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (security.username, security.password) == ("alice", PASSWORD)
    assert ca_names(security.ssl_context) == ["cluster-ca"]  # trusts the cluster CA Secret's ca.crt, only it
    assert kube.reads == ["kafka", "secret/prod-kafka-cluster-ca-cert", "secret/alice"]
    assert security.source == "listener tls, CA Secret prod-kafka-cluster-ca-cert, KafkaUser Secret alice"


async def test_the_password_comes_from_sasl_jaas_config_when_the_secret_has_no_password_key(
        pems: dict[str, bytes]) -> None:
    kube = kube_with(pems)
    del kube.secrets["alice"]["password"]
    security = await KafkaSecurityResolver({"prod": scram()}, kube).security(REF)
    assert security.password == PASSWORD


async def test_an_mtls_listener_gives_ssl_with_the_users_certificate_and_leaves_no_key_file(
        pems: dict[str, bytes]) -> None:
    kube = kube_with(pems)
    config = KafkaSecurityConfig(listener="mtls", authentication=AuthenticationConfig(kafka_user="bob"))
    before = key_folders()
    security = await KafkaSecurityResolver({"prod": config}, kube).security(REF.model_copy(update={"listener": "mtls"}))
    assert (security.security_protocol, security.sasl_mechanism, security.password) == ("SSL", None, None)
    assert ca_names(security.ssl_context) == ["cluster-ca"]  # the cluster CA, not the clients CA in bob's Secret
    assert key_folders() == before  # the key's files are gone


async def test_a_key_that_does_not_match_the_certificate_is_refused_without_showing_it(
        pems: dict[str, bytes], tmp_path: Path) -> None:
    kube = kube_with(pems)
    _, foreign_key = pem_pair(tmp_path, "mallory")
    kube.secrets["bob"]["user.key"] = foreign_key
    config = KafkaSecurityConfig(listener="mtls", authentication=AuthenticationConfig(kafka_user="bob"))
    with pytest.raises(KafkaSecurityError) as caught:
        await KafkaSecurityResolver({"prod": config}, kube).security(REF)
    assert "the client certificate and key of listener mtls, CA Secret prod-kafka-cluster-ca-cert, KafkaUser " \
           "Secret bob cannot be used together" in str(caught.value)
    assert "PRIVATE KEY" not in str(caught.value)


async def test_a_ca_file_and_a_named_ca_secret_are_used_instead_of_the_default(
        pems: dict[str, bytes], tmp_path: Path) -> None:
    kube = kube_with(pems)
    (tmp_path / "ca.crt").write_bytes(pems["other_ca"])
    from_file = KafkaSecurityConfig(listener="tls", tls=TlsConfig(ca_file="ca.crt"),
                                    authentication=AuthenticationConfig(kafka_user="alice"))
    security = await KafkaSecurityResolver({"prod": from_file}, kube, base_dir=tmp_path).security(REF)
    assert ca_names(security.ssl_context) == ["renewed-ca"]
    kube.secrets["my-ca"] = {"ca.crt": pems["other_ca"]}
    named = KafkaSecurityConfig(listener="tls", tls=TlsConfig(ca_secret="my-ca"),
                                authentication=AuthenticationConfig(kafka_user="alice"))
    security = await KafkaSecurityResolver({"prod": named}, kube).security(REF)
    assert ca_names(security.ssl_context) == ["renewed-ca"] and "secret/my-ca" in kube.reads


async def test_plain_and_oauthbearer_on_a_plaintext_listener(pems: dict[str, bytes], tmp_path: Path) -> None:
    kube = kube_with(pems)
    kube.secrets["bot-pw"] = {"pw": b"plain-password\n"}
    plain = KafkaSecurityConfig(listener="plain", authentication=AuthenticationConfig(
        type="plain", username="bot", password_secret=SecretKey(name="bot-pw", key="pw")))
    security = await KafkaSecurityResolver({"prod": plain}, kube).security(REF)
    assert (security.security_protocol, security.sasl_mechanism, security.username, security.password) == (
        "SASL_PLAINTEXT", "PLAIN", "bot", "plain-password")
    assert security.ssl_context is None
    (tmp_path / "token").write_text("token-1\n")
    oauth = KafkaSecurityConfig(listener="plain", authentication=AuthenticationConfig(type="oauthbearer",
                                                                                      token_file="token"))
    security = await KafkaSecurityResolver({"prod": oauth}, kube, base_dir=tmp_path).security(REF)
    assert (security.security_protocol, security.sasl_mechanism) == ("SASL_PLAINTEXT", "OAUTHBEARER")
    sync_provider = security.kafka_python_config()["sasl_oauth_token_provider"]
    aio_provider = security.aiokafka_config()["sasl_oauth_token_provider"]
    assert isinstance(sync_provider, AbstractTokenProvider)
    assert sync_provider.token() == "token-1" and await aio_provider.token() == "token-1"
    (tmp_path / "token").write_text("token-2\n")  # renewed by a sidecar: the next request sends the new one
    assert sync_provider.token() == "token-2" and await aio_provider.token() == "token-2"


@pytest.mark.parametrize(("config", "said"), [
    (KafkaSecurityConfig(listener="tlss", authentication=AuthenticationConfig(kafka_user="alice")),
     "clusters.prod.listener 'tlss' is not in spec.kafka.listeners of Kafka kafka/prod-kafka: give one of plain, "
     "tls, mtls"),
    (KafkaSecurityConfig(listener="tls"),
     "clusters.prod.authentication.kafka_user is missing: listener 'tls' authenticates with scram-sha-512"),
    (KafkaSecurityConfig(listener="tls", authentication=AuthenticationConfig(type="tls", kafka_user="bob")),
     "clusters.prod.authentication.type is tls, but listener 'tls' authenticates with scram-sha-512: give "
     "scram-sha-512"),
    (KafkaSecurityConfig(listener="plain", tls=TlsConfig()),
     "clusters.prod.tls: listener 'plain' has tls: false in the Kafka resource"),
    (KafkaSecurityConfig(listener="tls", authentication=AuthenticationConfig(kafka_user="carol")),
     "prod: the KafkaUser's Secret kafka/carol does not exist"),
    (KafkaSecurityConfig(listener="tls", tls=TlsConfig(ca_secret="alice"),
                         authentication=AuthenticationConfig(kafka_user="alice")),
     "Secret alice has no `ca.crt` (its keys: password, sasl.jaas.config)"),
])
async def test_what_cannot_work_is_said(pems: dict[str, bytes], config: KafkaSecurityConfig, said: str) -> None:
    with pytest.raises(KafkaSecurityError) as caught:
        await KafkaSecurityResolver({"prod": config}, kube_with(pems)).security(REF)
    assert said in str(caught.value)
    assert PASSWORD not in str(caught.value)


async def test_secrets_are_read_again_after_30_s_or_a_failure_and_a_change_makes_a_new_fingerprint(
        pems: dict[str, bytes]) -> None:
    kube, clock = kube_with(pems), Clock()
    resolver = KafkaSecurityResolver({"prod": scram()}, kube, clock=clock)
    first = await resolver.security(REF)
    reads = len(kube.reads)
    clock.now += 29
    assert await resolver.security(REF) is first and len(kube.reads) == reads  # cached
    clock.now += 1
    assert (await resolver.security(REF)).fingerprint == first.fingerprint and len(kube.reads) > reads
    kube.secrets["prod-kafka-cluster-ca-cert"]["ca.crt"] = pems["other_ca"]  # Strimzi renewed the CA
    resolver.failed(REF)  # a connection failed: no waiting for the 30 s
    renewed = await resolver.security(REF)
    assert renewed.fingerprint != first.fingerprint and ca_names(renewed.ssl_context) == ["renewed-ca"]


async def test_an_unreachable_api_keeps_the_credentials_read_before(pems: dict[str, bytes]) -> None:
    kube, clock = kube_with(pems), Clock()
    resolver = KafkaSecurityResolver({"prod": scram()}, kube, clock=clock)
    first = await resolver.security(REF)
    kube.down, clock.now = True, clock.now + 60
    assert await resolver.security(REF) is first
    with pytest.raises(KafkaSecurityError, match="prod: cannot read its Kafka credentials: KubeReadFailed"):
        await KafkaSecurityResolver({"prod": scram()}, kube).security(REF)


async def test_no_password_or_key_in_reprs_logs_or_messages(pems: dict[str, bytes],
                                                            caplog: pytest.LogCaptureFixture) -> None:
    kube, clock = kube_with(pems), Clock()
    mtls = KafkaSecurityConfig(listener="mtls", authentication=AuthenticationConfig(kafka_user="bob"))
    resolver = KafkaSecurityResolver({"prod": scram(), "mprod": mtls}, kube, clock=clock)
    with caplog.at_level(logging.DEBUG):
        scram_security = await resolver.security(REF)
        mtls_security = await resolver.security(REF.model_copy(update={"name": "mprod", "listener": "mtls"}))
        kube.secrets["alice"]["password"] = b"AnotherPassw0rdAfterRotation1234"
        clock.now += 31
        rotated = await resolver.security(REF)  # logged: the credentials changed
        kube.down, clock.now = True, clock.now + 31
        await resolver.security(REF)  # logged: the re-read failed
    assert "credentials changed" in caplog.text and "re-reading the Kafka credentials failed" in caplog.text
    key_body = pems["user.key"].decode().splitlines()[1]
    for shown in (caplog.text, repr(scram_security), str(scram_security), repr(rotated), repr(mtls_security),
                  repr(resolver.__dict__)):
        assert PASSWORD not in shown and "AnotherPassw0rd" not in shown and key_body not in shown


async def test_both_clients_take_the_settings_by_their_own_parameter_names(pems: dict[str, bytes]) -> None:
    """Every key given is a parameter of kafka-python's admin client and consumer, and of aiokafka's
    client and consumer (aiokafka validates them as it is built)."""
    from bot.kafka.client_security import KafkaClientSecurity, ssl_context

    security = KafkaClientSecurity(security_protocol="SASL_SSL", ssl_context=ssl_context(pems["ca"]),
                                   sasl_mechanism="SCRAM-SHA-512", username="alice", password=PASSWORD)
    sync = security.kafka_python_config()
    assert set(sync) == {"security_protocol", "ssl_context", "sasl_mechanism", "sasl_plain_username",
                         "sasl_plain_password"}
    assert set(sync) <= set(KafkaAdminClient.DEFAULT_CONFIG) and set(sync) <= set(KafkaConsumer.DEFAULT_CONFIG)
    aio = security.aiokafka_config()
    client = AIOKafkaClient(bootstrap_servers="127.0.0.1:1", **aio)
    assert client._security_protocol == "SASL_SSL" and client._sasl_mechanism == "SCRAM-SHA-512"
    assert client._sasl_plain_password == PASSWORD and client._ssl_context is security.ssl_context
    await client.close()
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", **aio)
    await consumer.stop()


def test_the_failure_seam_says_nothing_without_the_probe() -> None:
    """``explain_failure`` answers None (the generic message stands) unless bot.kafka.handshake explains."""
    try:
        import bot.kafka.handshake  # noqa: F401
    except ImportError:
        assert explain_failure("127.0.0.1:1", PLAINTEXT_SECURITY, timeout_s=0.5) is None
    else:  # the probe is there: a refused connection is explained, or at least not an exception
        said = explain_failure("127.0.0.1:1", PLAINTEXT_SECURITY, timeout_s=0.5)
        assert said is None or isinstance(said, str)
