"""Why a Kafka listener cannot be reached: one sentence for the user instead of a timeout.

kafka-python and aiokafka log a failed TLS handshake or a refused SASL login and go on retrying
until the request times out (``NoBrokersAvailable``, ``KafkaTimeoutError``). When that happens the
bot calls ``explain_connection_failure`` with the same settings: it dials the first reachable
bootstrap address as the clients do (TCP, TLS with the same ``SSLContext``, ApiVersions, then
SaslHandshake + SaslAuthenticate with kafka-python's mechanisms) and names the step that failed.
The sentence names the address and the user, never a password or a key.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kafka.errors import for_code
from kafka.net.sasl import get_sasl_mechanism

from bot.kafka.handshake_wire import ConnectionEnded, KafkaWire, NotKafka, looks_like_tls

# OpenSSL's X509_V_ERR_* codes, as ssl.SSLCertVerificationError.verify_code reports them.
_UNKNOWN_ISSUER = {2, 18, 19, 20, 21}
_EXPIRED, _NOT_YET_VALID = 10, 9
_NAME_MISMATCH = {62, 63, 64}
# Alerts the server sends when it rejects the certificate we presented (or that we sent none).
_CLIENT_CERT_ALERTS = ("BAD_CERTIFICATE", "CERTIFICATE_UNKNOWN", "CERTIFICATE_EXPIRED", "UNKNOWN_CA",
                       "CERTIFICATE_REVOKED", "UNSUPPORTED_CERTIFICATE", "DECRYPT_ERROR")
_ERR_UNSUPPORTED_SASL_MECHANISM, _ERR_ILLEGAL_SASL_STATE = 33, 34
_SASL_MECHANISMS_PROBED = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class _Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class _Explained(Exception):
    """A step failed; the message is the sentence for the user."""


def _parse_bootstrap(bootstrap: str) -> list[_Address]:
    addresses = []
    for item in (part.strip() for part in bootstrap.split(",")):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise _Explained(f"Bootstrap address {item!r} is not host:port (e.g. my-cluster-kafka-bootstrap:9093).")
        addresses.append(_Address(host.strip("[]"), int(port)))
    return addresses


def _tcp_failure(address: _Address, error: OSError, timeout_s: float) -> str:
    if isinstance(error, socket.gaierror):
        return f"TCP: cannot resolve the host {address.host} ({error.strerror}): check the bootstrap address"
    if isinstance(error, ConnectionRefusedError):
        return (f"TCP: {address} refused the connection (nothing listens on that port): check the listener's "
                "port in the Kafka status, or the bootstrap override")
    if isinstance(error, TimeoutError):
        return (f"TCP: {address} did not accept a connection within {timeout_s:g} s: check that the address is "
                "reachable from the bot (network policies, firewalls)")
    return f"TCP: cannot connect to {address} ({error.strerror or error}): check that the address is reachable"


def _connect(addresses: list[_Address], timeout_s: float) -> tuple[_Address, socket.socket]:
    failures = []
    for address in addresses:
        try:
            return address, socket.create_connection((address.host, address.port), timeout=timeout_s)
        except OSError as e:
            failures.append(_tcp_failure(address, e, timeout_s))
    if len(addresses) == 1:
        raise _Explained(failures[0] + ".")
    raise _Explained(f"No bootstrap address is reachable ({len(addresses)} tried); the first: {failures[0]}.")


def _server_certificate_failure(address: _Address, error: ssl.SSLCertVerificationError) -> str:
    code = error.verify_code
    if code in _UNKNOWN_ISSUER:
        return (f"TLS: certificate signed by an unknown CA: the broker at {address} presented a certificate "
                "that the CA the bot trusts did not sign; check the cluster CA Secret "
                "(<cluster>-cluster-ca-cert, ca.crt) or the configured CA file.")
    if code == _EXPIRED:
        return (f"TLS: the broker's certificate has expired: the broker at {address} presented a certificate "
                "past its end date; check that the broker's certificate was renewed (Strimzi renews it from "
                "the cluster CA and rolls the brokers).")
    if code == _NOT_YET_VALID:
        return (f"TLS: the broker's certificate is not valid yet: the broker at {address} presented a "
                "certificate whose start date is in the future; check the clocks of the bot and the brokers.")
    if code in _NAME_MISMATCH:
        return (f"TLS: the broker's certificate does not name the host {address.host}: connect through an "
                "address its certificate lists (the listener's bootstrap in the Kafka status).")
    return f"TLS: the broker's certificate at {address} failed verification ({error.verify_message})."


def _received_alert(error: ssl.SSLError) -> str | None:
    reason = str(error.reason or "")
    return reason if "ALERT" in reason else None


def _tls_alert_failure(address: _Address, alert: str) -> str:
    if alert.endswith("CERTIFICATE_REQUIRED"):
        return (f"TLS: the broker at {address} requires a client certificate (mTLS) and the bot sent none: "
                "configure the KafkaUser's certificate (user.crt, user.key) for this listener.")
    if any(alert.endswith(name) for name in _CLIENT_CERT_ALERTS):
        # Java brokers answer an empty client certificate with bad_certificate, so that one may mean none.
        none = ", or found none (an mTLS listener needs one)" if alert.endswith("BAD_CERTIFICATE") else ""
        return (f"TLS: the broker refused our client certificate ({alert}): the broker at {address} did not "
                f"accept the certificate the bot presented{none}; check the KafkaUser's Secret (user.crt, "
                "user.key: current, not expired) and that the clients CA (<cluster>-clients-ca-cert) signed it.")
    return f"TLS: the broker at {address} ended the handshake with the alert {alert}."


def _answers_in_plaintext(address: _Address, timeout_s: float) -> bool:
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout_s) as sock:
            sock.settimeout(timeout_s)
            KafkaWire(sock).api_versions()
            return True
    except (OSError, ConnectionEnded, NotKafka, ValueError):
        return False


def _speaks_tls(address: _Address, timeout_s: float) -> bool:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only to learn whether TLS is spoken; nothing is sent
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout_s) as sock:
            context.wrap_socket(sock, server_hostname=address.host).close()
            return True
    except ssl.SSLError as e:
        return _received_alert(e) is not None  # a TLS alert is TLS spoken
    except OSError:
        return False


def _tls_to_plaintext_listener(address: _Address) -> str:
    return (f"TLS: the listener at {address} does not speak TLS (it answers in plaintext): turn TLS off for "
            "this listener, or choose a TLS listener.")


def _plaintext_to_tls_listener(address: _Address) -> str:
    return (f"TLS: the listener at {address} speaks TLS and the bot connects in plaintext: configure TLS "
            "(the cluster CA) for this listener, or choose a plaintext listener.")


@contextmanager
def _exchange(address: _Address, tls: bool, timeout_s: float) -> Iterator[None]:
    """Turns how an exchange with the listener ended into the sentence that says why."""
    try:
        yield
    except ssl.SSLCertVerificationError as e:
        raise _Explained(_server_certificate_failure(address, e)) from e
    except ssl.SSLError as e:
        alert = _received_alert(e)
        if alert is not None:
            raise _Explained(_tls_alert_failure(address, alert)) from e
        if _answers_in_plaintext(address, timeout_s):
            raise _Explained(_tls_to_plaintext_listener(address)) from e
        raise _Explained(f"TLS: the connection to {address} failed ({e.reason or e}).") from e
    except NotKafka as e:
        if not tls and (looks_like_tls(e.first_bytes) or _speaks_tls(address, timeout_s)):
            raise _Explained(_plaintext_to_tls_listener(address)) from e
        raise _Explained(f"Kafka: {address} answered with something that is not Kafka's protocol: "
                         "check that the address is a Kafka listener.") from e
    except (ConnectionEnded, ConnectionError) as e:
        raise _Explained(_mismatch(address, tls, timeout_s) or (
            f"Kafka: {address} closed the connection without answering: check that it is a Kafka listener "
            "and the broker's log.")) from e
    except TimeoutError as e:
        raise _Explained(_mismatch(address, tls, timeout_s) or (
            f"Kafka: {address} accepted the connection but did not answer within {timeout_s:g} s: check that "
            "it is a Kafka listener and that the broker is not overloaded.")) from e
    except (OSError, ValueError) as e:  # anything else the network or a garbled answer may raise
        raise _Explained(f"Kafka: the exchange with {address} failed ({type(e).__name__}: {e}).") from e


def _mismatch(address: _Address, tls: bool, timeout_s: float) -> str | None:
    """After a silent close or timeout: does the listener speak the other protocol (TLS or plaintext)?"""
    if tls and _answers_in_plaintext(address, timeout_s):
        return _tls_to_plaintext_listener(address)
    if not tls and _speaks_tls(address, timeout_s):
        return _plaintext_to_tls_listener(address)
    return None


def _sasl_required_without_credentials(address: _Address, wire: KafkaWire) -> str | None:
    """With no SASL configured: does the listener expect it? (A plain listener says ILLEGAL_SASL_STATE.)"""
    response = wire.sasl_handshake(_SASL_MECHANISMS_PROBED[-1])
    if response.error_code == _ERR_ILLEGAL_SASL_STATE:
        return None
    offered = ", ".join(response.mechanisms) or "no mechanism"
    return (f"SASL: the listener at {address} requires SASL authentication (it offers {offered}) and the bot "
            "has none configured: configure the KafkaUser's credentials for this listener.")


def _sasl_failure(address: _Address, wire: KafkaWire, mechanism_name: str, username: str | None,
                  password: str | None) -> str | None:
    response = wire.sasl_handshake(mechanism_name)
    offered = ", ".join(response.mechanisms) or "no mechanism"
    if response.error_code == _ERR_ILLEGAL_SASL_STATE:
        return (f"SASL: the listener at {address} does not use SASL authentication, but the bot is configured "
                f"for {mechanism_name} as user {username}: choose the listener that authenticates with SASL, "
                "or drop the SASL settings.")
    if response.error_code not in (0, _ERR_UNSUPPORTED_SASL_MECHANISM):
        return f"SASL: the handshake with {address} failed ({for_code(response.error_code).__name__})."
    if response.error_code == _ERR_UNSUPPORTED_SASL_MECHANISM or mechanism_name not in response.mechanisms:
        return (f"SASL: the listener at {address} does not enable {mechanism_name} (it offers {offered}): "
                "configure one of those mechanisms.")
    if mechanism_name not in _SASL_MECHANISMS_PROBED:
        return None  # offered; logging in with it (OAUTHBEARER, GSSAPI) is beyond this probe
    if not username or password is None:
        return (f"SASL: {mechanism_name} needs a username and a password and the bot has none configured "
                f"for {address}.")
    mechanism = get_sasl_mechanism(mechanism_name)(
        host=address.host, sasl_mechanism=mechanism_name, sasl_plain_username=username,
        sasl_plain_password=password, security_protocol="SASL_SSL")
    refused = (f"SASL authentication failed for user {username} ({mechanism_name}): the broker refused the "
               "credentials; check the password in the KafkaUser's Secret")
    while not mechanism.is_done():
        try:
            answer = wire.sasl_authenticate(mechanism.auth_bytes())
        except ConnectionEnded:
            return f"{refused} (the broker at {address} closed the connection)."
        if answer.error_code != 0:
            said = f": {answer.error_message}" if answer.error_message else ""
            return f"{refused} (the broker at {address} said {for_code(answer.error_code).__name__}{said})."
        try:
            mechanism.receive(answer.auth_bytes)
        except (ValueError, KeyError) as e:  # the server's SCRAM proof; never the password in e
            return f"SASL: the broker at {address} failed to prove it knows user {username}'s credentials ({e})."
    if not mechanism.is_authenticated():
        return f"{refused} (at {address})."
    return None


@dataclass(frozen=True)
class _Settings:
    ssl_context: ssl.SSLContext | None
    sasl_mechanism: str | None
    username: str | None
    password: str | None
    timeout_s: float


def _await_alert(channel: ssl.SSLSocket, wait_s: float, timeout_s: float) -> None:
    """Read before writing, so that a TLS alert the server sends after our handshake is not lost.

    In TLS 1.3 the server judges our certificate after our side of the handshake is done; if our
    first request crosses its alert, its close answers the request with a reset, and Linux drops
    the alert still unread."""
    channel.settimeout(wait_s)
    try:
        if not channel.recv(1):  # a broker sends nothing unasked
            raise ConnectionEnded("closed")
    except TimeoutError:
        pass
    finally:
        channel.settimeout(timeout_s)


def _converse(address: _Address, sock: socket.socket, settings: _Settings, alert_wait_s: float) -> str | None:
    sock.settimeout(settings.timeout_s)
    channel: socket.socket = sock
    if settings.ssl_context is not None:
        channel = settings.ssl_context.wrap_socket(sock, server_hostname=address.host)
    with channel:
        if isinstance(channel, ssl.SSLSocket) and alert_wait_s:
            _await_alert(channel, alert_wait_s, settings.timeout_s)
        wire = KafkaWire(channel)
        wire.api_versions()  # in TLS 1.3, a refused client certificate shows here, not in the handshake
        if settings.sasl_mechanism is None:
            return _sasl_required_without_credentials(address, wire)
        return _sasl_failure(address, wire, settings.sasl_mechanism.upper(), settings.username, settings.password)


def explain_connection_failure(bootstrap: str, *, ssl_context: ssl.SSLContext | None, sasl_mechanism: str | None,
                               username: str | None, password: str | None, timeout_s: float = 5.0) -> str | None:
    """One sentence saying why the listener at ``bootstrap`` refuses the bot, or None if it does not.

    ``bootstrap`` is the clients' comma-separated host:port list; the first address that accepts a
    TCP connection is probed. None means TCP, TLS and SASL all succeeded there, so the failure being
    explained lies elsewhere (a request, a broker, an ACL).
    """
    settings = _Settings(ssl_context, sasl_mechanism, username, password, timeout_s)
    try:
        address, sock = _connect(_parse_bootstrap(bootstrap), timeout_s)
        with _exchange(address, ssl_context is not None, timeout_s):
            try:
                with sock:
                    return _converse(address, sock, settings, alert_wait_s=0)
            except (ConnectionEnded, ConnectionError, ssl.SSLEOFError):
                if ssl_context is None:
                    raise
            # Closed after a TLS handshake: once more, waiting for the alert a reset may have hidden.
            _, sock = _connect([address], timeout_s)
            with sock:
                return _converse(address, sock, settings, alert_wait_s=min(timeout_s, 2.0))
    except _Explained as e:
        return str(e)
