"""Certificates made with the ``openssl`` command, and a local listener that speaks them.

The listener is a stdlib socket server on 127.0.0.1, TLS (``ssl`` module, server side) or
plaintext, that answers the two requests a client sends before authenticating as a Kafka broker
without SASL does: ApiVersions (no API listed) and SaslHandshake (``ILLEGAL_SASL_STATE``). It is
there for the TLS handshake, which is real OpenSSL on both sides; the Kafka side of the probe is
proved against real brokers in tests/sandbox/test_connection_probe.py.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from kafka.protocol.metadata.api_versions import ApiVersionsResponse
from kafka.protocol.sasl import SaslHandshakeResponse

API_VERSIONS, SASL_HANDSHAKE = 18, 17
MAX_REQUEST = 104857600  # Kafka's socket.request.max.bytes: a larger size ends the connection
ILLEGAL_SASL_STATE = 34


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], capture_output=True, check=True, timeout=30)


def _key(path: Path) -> None:
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(path))


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA: (certificate, key)."""
    crt, key = directory / f"{name}.crt", directory / f"{name}.key"
    _key(key)
    _openssl("req", "-x509", "-new", "-key", str(key), "-out", str(crt), "-days", "2", "-subj", f"/CN={name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return crt, key


def issue(directory: Path, name: str, ca: tuple[Path, Path], *, sans: Sequence[str] = ("IP:127.0.0.1",),
          days: int = 2) -> tuple[Path, Path]:
    """A certificate signed by ``ca``: (certificate, key). ``days=-1`` gives one that has expired
    (OpenSSL 3.0's ``x509 -days`` takes a negative count: its end date is a day before its start)."""
    crt, key, csr, ext = (directory / f"{name}.{suffix}" for suffix in ("crt", "key", "csr", "ext"))
    _key(key)
    _openssl("req", "-new", "-key", str(key), "-out", str(csr), "-subj", f"/CN={name}")
    lines = ["basicConstraints=CA:FALSE", "extendedKeyUsage=serverAuth,clientAuth"]
    if sans:
        lines.append("subjectAltName=" + ",".join(sans))
    ext.write_text("\n".join(lines) + "\n", encoding="ascii")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]), "-CAcreateserial",
             "-out", str(crt), "-days", str(days), "-extfile", str(ext))
    return crt, key


def client_context(ca: Path, cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    """As the bot builds it: verify the broker against ``ca``, host name checked, optional client certificate."""
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


def server_context(cert: tuple[Path, Path], clients_ca: Path | None = None) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert[0]), str(cert[1]))
    if clients_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(str(clients_ca))
    return context


def _answer(sock: Any) -> None:
    while True:
        head = sock.recv(4)
        if len(head) < 4:
            return
        size, frame = int.from_bytes(head, "big"), b""
        if size > MAX_REQUEST:  # a TLS ClientHello read as a Kafka frame is ~369 MB
            return
        while len(frame) < size:
            chunk = sock.recv(size - len(frame))
            if not chunk:
                return
            frame += chunk
        api_key, correlation_id = int.from_bytes(frame[:2], "big"), int.from_bytes(frame[4:8], "big")
        response: Any
        if api_key == API_VERSIONS:
            response = ApiVersionsResponse(error_code=0, api_keys=[], version=0)
        elif api_key == SASL_HANDSHAKE:
            response = SaslHandshakeResponse(error_code=ILLEGAL_SASL_STATE, mechanisms=[], version=1)
        else:
            return
        response.with_header(correlation_id=correlation_id)
        sock.sendall(bytes(response.encode(header=True, framed=True)))


def _serve(conn: socket.socket, context: ssl.SSLContext | None) -> None:
    with conn, suppress(OSError):  # a refused handshake ends the connection; the client reports it
        conn.settimeout(10)
        if context is None:
            _answer(conn)
        else:
            with context.wrap_socket(conn, server_side=True) as tls:
                _answer(tls)


@contextmanager
def listener(context: ssl.SSLContext | None) -> Iterator[str]:
    """A listener on 127.0.0.1 (TLS with ``context``, else plaintext); yields its host:port."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=_serve, args=(conn, context), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        server.close()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
