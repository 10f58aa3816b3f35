"""``KafkaSecurityResolver``: each cluster's ``KafkaClientSecurity``, from the clusters file's
``listener`` / ``tls`` / ``authentication`` keys, the Kafka resource's ``spec.kafka.listeners``
entry (``tls``, ``authentication.type``) and Secrets read through that cluster's Kubernetes API.

- Trust: ``tls.ca_file``, else the Secret ``tls.ca_secret``, else Strimzi's ``<kafka>-cluster-ca-cert``
  (key ``ca.crt``), whenever the listener has ``tls: true`` (or, without a listener, a ``tls:`` block).
- Identity: the KafkaUser's Secret (same name, the cluster's namespace): ``password`` (else the
  password in ``sasl.jaas.config``) for scram-sha-512, ``user.crt``/``user.key`` for tls; for
  plain a username and a password from a Secret key or a file; for oauthbearer a token file.
- Renewal: Strimzi renews certificates and may change a password. Secrets are read again when a
  cluster's security is asked for and the last read is ``refresh_s`` old (30 s), and at once after
  ``failed(cluster)`` (a connection failed). A new fingerprint makes the clients built on the old
  one go (they cache by it). If the Kubernetes API does not answer, the last credentials stay.

Only names reach logs and messages; values never do.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bot.config.kafka_security import KAFKA_USER_TYPES, STRIMZI_AUTH_TYPES, KafkaSecurityConfig
from bot.kafka.client_security import (
    MECHANISMS,
    PLAINTEXT,
    PLAINTEXT_SECURITY,
    SASL_PLAINTEXT,
    SASL_SSL,
    SSL,
    KafkaClientSecurity,
    SecurityMaterialError,
    fingerprint,
    ssl_context,
)
from bot.kafka.handshake import explain_connection_failure
from handlers.ports import ClusterRef, KafkaResourceStatus

log = logging.getLogger(__name__)

REFRESH_S = 30.0
_JAAS_PASSWORD = re.compile(r'password="((?:[^"\\]|\\.)*)"')


class KafkaSecurityError(Exception):
    """The bot cannot say how to connect to a cluster: a key, the listener or a Secret is wrong.
    The message names the cluster, the key or Secret, and what is valid; never a credential."""


class SecurityKube(Protocol):
    """What the resolver reads from a cluster's Kubernetes API (``bot.kube.apis.ClusterGateways``)."""

    async def kafka_status(self, cluster: ClusterRef) -> KafkaResourceStatus: ...

    async def read_secret(self, cluster: ClusterRef, name: str) -> dict[str, bytes]: ...


class ClientSecurities(Protocol):
    """What the Kafka adapters ask: a cluster's security now, and "connecting with it failed"."""

    async def security(self, cluster: ClusterRef) -> KafkaClientSecurity: ...

    def failed(self, cluster: ClusterRef) -> None: ...


class PlaintextOnly:
    """Every cluster in plaintext: the adapters' default when nothing else is wired."""

    async def security(self, cluster: ClusterRef) -> KafkaClientSecurity:
        return PLAINTEXT_SECURITY

    def failed(self, cluster: ClusterRef) -> None:
        return None


@dataclass
class _Entry:
    security: KafkaClientSecurity
    read_at: float


class KafkaSecurityResolver:
    def __init__(self, configs: Mapping[str, KafkaSecurityConfig], kube: SecurityKube, *,
                 base_dir: Path | None = None, refresh_s: float = REFRESH_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``base_dir``: where relative ``ca_file``/``password_file``/``token_file`` paths start (the
        clusters file's folder)."""
        self._configs = dict(configs)
        self._kube = kube
        self._base = base_dir or Path.cwd()
        self._refresh_s = refresh_s
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._stale: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    def failed(self, cluster: ClusterRef) -> None:
        """A connection with the current settings failed: read the Secrets again on the next ask."""
        self._stale.add(cluster.name)

    async def security(self, cluster: ClusterRef) -> KafkaClientSecurity:
        config = self._configs.get(cluster.name)
        if config is None or config.plaintext:
            return PLAINTEXT_SECURITY
        entry = self._entries.get(cluster.name)
        if entry is not None and not self._due(cluster.name, entry):
            return entry.security
        lock = self._locks.setdefault(cluster.name, asyncio.Lock())
        async with lock:
            entry = self._entries.get(cluster.name)
            if entry is not None and not self._due(cluster.name, entry):
                return entry.security  # another caller read them while this one waited
            self._stale.discard(cluster.name)
            try:
                fresh = await self.read(cluster, config)
            except KafkaSecurityError:
                raise
            except Exception as exc:  # the Kubernetes API did not answer: keep what worked
                if entry is None:
                    raise KafkaSecurityError(f"{cluster.name}: cannot read its Kafka credentials: "
                                             f"{type(exc).__name__}: {exc}") from None
                log.warning("%s: re-reading the Kafka credentials failed (%s: %s); keeping those read before",
                            cluster.name, type(exc).__name__, exc)
                entry.read_at = self._clock()
                return entry.security
            if entry is not None and entry.security.fingerprint != fresh.fingerprint:
                log.info("%s: Kafka credentials changed (%s, fingerprint %s -> %s): clients reconnect",
                         cluster.name, fresh.source, entry.security.fingerprint, fresh.fingerprint)
            self._entries[cluster.name] = _Entry(fresh, self._clock())
            return fresh

    def _due(self, name: str, entry: _Entry) -> bool:
        return name in self._stale or self._clock() - entry.read_at >= self._refresh_s

    # -- reading -----------------------------------------------------------------------------------

    async def read(self, cluster: ClusterRef, config: KafkaSecurityConfig) -> KafkaClientSecurity:
        """The settings now (no cache): KafkaSecurityError saying what is wrong."""
        where = f"clusters.{cluster.name}"
        tls, listener_type = config.tls is not None, None
        if config.listener is not None:
            listener = self._listener(cluster, await self._kube.kafka_status(cluster), config.listener)
            tls = listener.get("tls") is True
            listener_type = (listener.get("authentication") or {}).get("type") if isinstance(
                listener.get("authentication"), dict) else None
            if config.tls is not None and not tls:
                raise KafkaSecurityError(f"{where}.tls: listener {config.listener!r} has tls: false in the Kafka "
                                         "resource: remove `tls:` or name a listener with tls: true")
        kind = self._kind(where, config, listener_type)
        sources = [f"listener {config.listener}" if config.listener else "no listener named"]
        ca = await self._ca(cluster, config, sources) if tls else None
        username = password = token_file = None
        cert = key = None
        if kind is not None:
            auth = config.authentication
            if kind in KAFKA_USER_TYPES and (auth is None or auth.kafka_user is None):
                raise KafkaSecurityError(f"{where}.authentication.kafka_user is missing: listener "
                                         f"{config.listener!r} authenticates with {kind}; give the KafkaUser whose "
                                         "Secret holds the bot's credentials")
            assert auth is not None or kind in KAFKA_USER_TYPES
            if kind == "scram-sha-512":
                assert auth is not None and auth.kafka_user is not None
                username, password = auth.kafka_user, await self._scram_password(cluster, auth.kafka_user)
                sources.append(f"KafkaUser Secret {auth.kafka_user}")
            elif kind == "tls":
                assert auth is not None and auth.kafka_user is not None
                if not tls:
                    raise KafkaSecurityError(f"{where}.authentication.type tls (a client certificate) needs a TLS "
                                             f"listener, and listener {config.listener!r} has tls: false")
                secret = await self._secret(cluster, auth.kafka_user, "the KafkaUser's Secret")
                cert, key = self._key(secret, "user.crt", auth.kafka_user), self._key(secret, "user.key",
                                                                                        auth.kafka_user)
                sources.append(f"KafkaUser Secret {auth.kafka_user}")
            elif kind == "plain":
                assert auth is not None
                username, password = auth.username, await self._plain_password(cluster, where, config)
            else:
                assert auth is not None and auth.token_file is not None
                token_file = str(self._path(auth.token_file))
        mechanism = MECHANISMS.get(kind) if kind not in (None, "tls") else None
        protocol = (SASL_SSL if tls else SASL_PLAINTEXT) if mechanism else SSL if tls else PLAINTEXT
        try:
            context = ssl_context(ca, cert_pem=cert, key_pem=key, where=", ".join(sources)) if tls else None
        except SecurityMaterialError as exc:
            raise KafkaSecurityError(f"{where}: {exc}") from None
        return KafkaClientSecurity(
            security_protocol=protocol, ssl_context=context, sasl_mechanism=mechanism, username=username,
            password=password, token_file=token_file, source=", ".join(sources),
            fingerprint=fingerprint(protocol, mechanism, username, password, ca, cert, key, token_file))

    def _listener(self, cluster: ClusterRef, status: KafkaResourceStatus, name: str) -> dict[str, Any]:
        listeners = [entry for entry in status.spec.get("listeners") or [] if isinstance(entry, dict)]
        found = next((entry for entry in listeners if entry.get("name") == name), None)
        if found is None:
            names = ", ".join(str(entry.get("name")) for entry in listeners) or "none"
            raise KafkaSecurityError(f"clusters.{cluster.name}.listener {name!r} is not in spec.kafka.listeners of "
                                     f"Kafka {cluster.namespace}/{cluster.kafka}: give one of {names}")
        return found

    @staticmethod
    def _kind(where: str, config: KafkaSecurityConfig, listener_type: Any) -> str | None:
        written = config.authentication.type if config.authentication is not None else None
        implied = STRIMZI_AUTH_TYPES.get(str(listener_type)) if listener_type else None
        if listener_type and implied is None and written is None:
            raise KafkaSecurityError(f"{where}: listener {config.listener!r} authenticates with "
                                     f"{str(listener_type)[:40]!r}: give authentication.type, one of "
                                     f"{', '.join(MECHANISMS) + ', tls'}")
        if written is not None and implied is not None and written != implied:
            raise KafkaSecurityError(f"{where}.authentication.type is {written}, but listener {config.listener!r} "
                                     f"authenticates with {listener_type}: give {implied} (or another listener)")
        return written or implied

    async def _ca(self, cluster: ClusterRef, config: KafkaSecurityConfig, sources: list[str]) -> bytes:
        tls = config.tls
        if tls is not None and tls.ca_file is not None:
            path = self._path(tls.ca_file)
            sources.append(f"CA file {path}")
            try:
                return path.read_bytes()
            except OSError as exc:
                raise KafkaSecurityError(f"clusters.{cluster.name}.tls.ca_file {path} cannot be read "
                                         f"({type(exc).__name__}): give a PEM file of the cluster CA") from None
        name = tls.ca_secret if tls is not None and tls.ca_secret else f"{cluster.kafka}-cluster-ca-cert"
        sources.append(f"CA Secret {name}")
        return self._key(await self._secret(cluster, name, "the cluster CA Secret"), "ca.crt", name)

    async def _scram_password(self, cluster: ClusterRef, user: str) -> str:
        secret = await self._secret(cluster, user, "the KafkaUser's Secret")
        if secret.get("password"):
            return secret["password"].decode()
        match = _JAAS_PASSWORD.search(secret.get("sasl.jaas.config", b"").decode(errors="replace"))
        if match is None:
            raise KafkaSecurityError(f"Secret {cluster.namespace}/{user} has neither `password` nor a password in "
                                     "`sasl.jaas.config`: is it a scram-sha-512 KafkaUser's Secret?")
        return match.group(1).replace('\\"', '"').replace("\\\\", "\\")

    async def _plain_password(self, cluster: ClusterRef, where: str, config: KafkaSecurityConfig) -> str:
        auth = config.authentication
        assert auth is not None
        if auth.password_secret is not None:
            ref = auth.password_secret
            raw = self._key(await self._secret(cluster, ref.name, "the password Secret"), ref.key, ref.name)
            return raw.decode().removesuffix("\n")
        assert auth.password_file is not None
        path = self._path(auth.password_file)
        try:
            value = path.read_text(encoding="utf-8").removesuffix("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise KafkaSecurityError(f"{where}.authentication.password_file {path} cannot be read "
                                     f"({type(exc).__name__}): give a file holding the password alone") from None
        if not value:
            raise KafkaSecurityError(f"{where}.authentication.password_file {path} is empty")
        return value

    async def _secret(self, cluster: ClusterRef, name: str, what: str) -> dict[str, bytes]:
        try:
            return await self._kube.read_secret(cluster, name)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:  # the gateway's KubeNotFound (bot.kube.errors)
                raise KafkaSecurityError(f"{cluster.name}: {what} {cluster.namespace}/{name} does not exist"
                                         ) from None
            raise

    @staticmethod
    def _key(secret: dict[str, bytes], key: str, name: str) -> bytes:
        if not secret.get(key):
            keys = ", ".join(sorted(secret)) or "none"
            raise KafkaSecurityError(f"Secret {name} has no `{key}` (its keys: {keys})")
        return secret[key]

    def _path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self._base / path


def explain_failure(bootstrap: str, security: KafkaClientSecurity, *, timeout_s: float = 5.0) -> str | None:
    """Why connecting to ``bootstrap`` with ``security`` fails, in words (a TLS or SASL refusal), or
    None when it cannot tell (the caller keeps its generic message): ``bot.kafka.handshake`` probes the
    listener the way the clients would. Blocking: call it from a worker thread."""
    try:
        said = explain_connection_failure(
            bootstrap, ssl_context=security.ssl_context, sasl_mechanism=security.sasl_mechanism,
            username=security.username, password=security.password, timeout_s=timeout_s)
    except Exception as exc:  # the probe must never hide the failure it was asked about
        log.debug("the connection probe of %s failed: %s", bootstrap, type(exc).__name__)
        return None
    return str(said) if said else None
