"""Kafka's request/response framing over a blocking socket, for the connection probe.

kafka-python's protocol classes encode and decode the messages; this module only moves frames and
tells the probe, in exceptions, how an exchange ended when it did not end with an answer: the peer
closed (``ConnectionEnded``) or answered with bytes that are not a Kafka frame (``NotKafka``, with
the first bytes, so that a TLS record can be recognised).
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from kafka.protocol.metadata.api_versions import ApiVersionsRequest, ApiVersionsResponse
from kafka.protocol.sasl import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)

CLIENT_ID = "kafka-chatops-probe"
# Frames larger than this are not a Kafka answer to one of the probe's small requests.
MAX_FRAME = 1 << 20
# SaslHandshake v1 makes the broker expect SaslAuthenticate requests (KIP-152), as kafka-python does.
SASL_HANDSHAKE_VERSION = 1
SASL_AUTHENTICATE_VERSION = 1


class ConnectionEnded(Exception):
    """The peer closed (or reset) the connection before a whole answer arrived."""


class NotKafka(Exception):
    """The peer answered with bytes that do not frame a Kafka response."""

    def __init__(self, first_bytes: bytes) -> None:
        super().__init__(f"not a Kafka response: {first_bytes[:8]!r}")
        self.first_bytes = first_bytes


def looks_like_tls(data: bytes) -> bool:
    """A TLS record header: content type 20-23 (alert 21, handshake 22), version 3.x."""
    return len(data) >= 2 and data[0] in (20, 21, 22, 23) and data[1] == 3


def _read_exactly(sock: socket.socket | ssl.SSLSocket, size: int, got: bytes = b"") -> bytes:
    buf = bytearray()
    while len(buf) < size:
        try:
            chunk = sock.recv(size - len(buf))
        except (ConnectionResetError, BrokenPipeError) as e:
            raise ConnectionEnded(str(e)) from e
        except ssl.SSLZeroReturnError as e:
            raise ConnectionEnded(str(e)) from e
        if not chunk:
            if got or buf:
                raise NotKafka(got + bytes(buf))
            raise ConnectionEnded("closed")
        buf.extend(chunk)
    return bytes(buf)


class KafkaWire:
    """One connection's request/response exchange; correlation ids are checked."""

    def __init__(self, sock: socket.socket | ssl.SSLSocket) -> None:
        self.sock = sock
        self._correlation_id = 0

    def call(self, request: Any, response_class: Any, version: int) -> Any:
        self._correlation_id += 1
        request.with_header(correlation_id=self._correlation_id, client_id=CLIENT_ID)
        try:
            self.sock.sendall(bytes(request.encode(header=True, framed=True)))
        except (ConnectionResetError, BrokenPipeError) as e:
            raise ConnectionEnded(str(e)) from e
        head = _read_exactly(self.sock, 4)
        size = int.from_bytes(head, "big", signed=True)
        if looks_like_tls(head) or not 4 <= size <= MAX_FRAME:
            raise NotKafka(head)
        payload = _read_exactly(self.sock, size, head)
        if int.from_bytes(payload[:4], "big", signed=True) != self._correlation_id:
            raise NotKafka(head + payload[:4])
        return response_class.decode(payload, version=version, header=True)

    def api_versions(self) -> Any:
        """ApiVersions v0: every broker answers it, before any authentication."""
        return self.call(ApiVersionsRequest(version=0), ApiVersionsResponse, 0)

    def sasl_handshake(self, mechanism: str) -> Any:
        request = SaslHandshakeRequest(mechanism=mechanism, version=SASL_HANDSHAKE_VERSION)
        return self.call(request, SaslHandshakeResponse, SASL_HANDSHAKE_VERSION)

    def sasl_authenticate(self, auth_bytes: bytes) -> Any:
        request = SaslAuthenticateRequest(auth_bytes=auth_bytes, version=SASL_AUTHENTICATE_VERSION)
        return self.call(request, SaslAuthenticateResponse, SASL_AUTHENTICATE_VERSION)
