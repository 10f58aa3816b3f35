"""``KafkaClientSecurity``: what a Kafka client of one cluster needs to connect (protocol, TLS
context, SASL mechanism and credentials), handed in the same shape to kafka-python and aiokafka.

Built by ``bot.kafka.security`` from the clusters file, the Kafka resource and Secrets. The TLS
context is made in memory (``cadata``); only a client key has to pass through files
(``load_cert_chain`` reads nothing else), which live in a private directory for the call only.

Passwords, keys and tokens never show: not in ``repr``, not in any message raised here. The
``fingerprint`` (a hash of all of it) is what caches key clients by, so changed credentials mean
new clients.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.abc import AbstractTokenProvider as AioTokenProvider
from kafka.net.sasl.oauth import AbstractTokenProvider as SyncTokenProvider

PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL = "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"
MECHANISMS = {"scram-sha-512": "SCRAM-SHA-512", "plain": "PLAIN", "oauthbearer": "OAUTHBEARER"}


class SecurityMaterialError(Exception):
    """A CA, certificate or key that cannot be used; the message names where it came from only."""


def read_token(path: str) -> str:
    """The token in ``path``, read now (a sidecar may have renewed it since the last request)."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise SecurityMaterialError(f"token_file {path} cannot be read ({type(exc).__name__})") from None
    if not token:
        raise SecurityMaterialError(f"token_file {path} is empty: it must hold the access token")
    return token


class FileTokenProvider(SyncTokenProvider):  # type: ignore[misc]
    """kafka-python's OAUTHBEARER token provider over a token file."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    def token(self) -> str:
        return read_token(self.path)

    def __repr__(self) -> str:
        return f"FileTokenProvider({self.path!r})"


class AioFileTokenProvider(AioTokenProvider):  # type: ignore[misc]
    """aiokafka's OAUTHBEARER token provider over a token file."""

    def __init__(self, path: str) -> None:
        self.path = path

    async def token(self) -> str:
        return await asyncio.to_thread(read_token, self.path)

    def __repr__(self) -> str:
        return f"AioFileTokenProvider({self.path!r})"


def ssl_context(ca_pem: bytes | None, *, cert_pem: bytes | None = None, key_pem: bytes | None = None,
                where: str = "") -> ssl.SSLContext:
    """A client context trusting ``ca_pem`` (the system's CAs when None), with the client
    certificate and key for mTLS. ``where`` names the sources in messages."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_pem is not None:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=_text(ca_pem, f"the CA of {where}"))
    if cert_pem is not None and key_pem is not None:
        load_client_certificate(context, cert_pem, key_pem, where)
    return context


def _text(pem: bytes, what: str) -> str:
    try:
        text = pem.decode("ascii")
    except UnicodeDecodeError:
        raise SecurityMaterialError(f"{what} is not PEM text") from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise SecurityMaterialError(f"{what} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    return text


def load_client_certificate(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes, where: str) -> None:
    """``load_cert_chain`` reads files only: write both to a 0700 directory (0600 files) and delete
    them as soon as the context holds them."""
    with tempfile.TemporaryDirectory(prefix="kco-tls-") as folder:
        os.chmod(folder, 0o700)
        cert_file, key_file = Path(folder) / "user.crt", Path(folder) / "user.key"
        for path, content in ((cert_file, cert_pem), (key_file, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(content)
        try:
            context.load_cert_chain(str(cert_file), str(key_file))
        except (ssl.SSLError, ValueError) as exc:
            raise SecurityMaterialError(f"the client certificate and key of {where} cannot be used together "
                                        f"({type(exc).__name__}: {getattr(exc, 'reason', None) or 'unreadable'})"
                                        ) from None
        finally:
            for path in (cert_file, key_file):
                path.unlink(missing_ok=True)


def fingerprint(*parts: bytes | str | None) -> str:
    digest = hashlib.sha256()
    for part in parts:
        raw = b"\x00" if part is None else part.encode() if isinstance(part, str) else part
        digest.update(len(raw).to_bytes(8, "big") + raw)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class KafkaClientSecurity:
    """How to connect to one cluster. Immutable: new credentials make a new one (a new fingerprint)."""

    security_protocol: str = PLAINTEXT
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False)
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token_file: str | None = None  # OAUTHBEARER: re-read on each token request
    fingerprint: str = "plaintext"
    source: str = "plaintext"  # where it came from, for logs: listener, Secret names, never values

    def __repr__(self) -> str:
        return (f"KafkaClientSecurity({self.security_protocol}, mechanism={self.sasl_mechanism}, "
                f"username={self.username!r}, fingerprint={self.fingerprint}, source={self.source!r})")

    __str__ = __repr__

    @property
    def tls(self) -> bool:
        return self.security_protocol in (SSL, SASL_SSL)

    def kafka_python_config(self) -> dict[str, Any]:
        """``KafkaAdminClient`` / ``KafkaConsumer`` keyword arguments."""
        return self._client_config(FileTokenProvider)

    def aiokafka_config(self) -> dict[str, Any]:
        """``AIOKafkaClient`` / ``AIOKafkaConsumer`` keyword arguments."""
        return self._client_config(AioFileTokenProvider)

    def _client_config(self, token_provider: type[FileTokenProvider] | type[AioFileTokenProvider]) -> dict[str, Any]:
        # Both libraries name these arguments alike; only the OAUTHBEARER token provider's base differs.
        config: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.ssl_context is not None:
            config["ssl_context"] = self.ssl_context
        if self.sasl_mechanism is not None:
            config["sasl_mechanism"] = self.sasl_mechanism
            if self.sasl_mechanism == "OAUTHBEARER" and self.token_file is not None:
                config["sasl_oauth_token_provider"] = token_provider(self.token_file)
            else:
                config["sasl_plain_username"] = self.username
                config["sasl_plain_password"] = self.password
        return config


PLAINTEXT_SECURITY = KafkaClientSecurity()
