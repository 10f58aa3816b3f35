"""What a node of the twin is before it runs: its spec (ids, ports, dirs) and the cluster-wide values
its config needs (a cluster id drawn as Kafka draws one, free ports, the static voter string).
``bot.sandbox.node`` runs one.
"""

from __future__ import annotations

import base64
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_ZERO_UUID = "AAAAAAAAAAAAAAAAAAAAAA"
_METADATA_TOPIC_UUID = "AAAAAAAAAAAAAAAAAAAAAQ"  # Uuid(0, 1), reserved by Kafka like the zero Uuid


@dataclass
class NodeSpec:
    node_id: int
    cluster_id: str
    client_port: int
    controller_port: int
    voters: str  # "0@127.0.0.1:p0,1@127.0.0.1:p1,..."
    data_dir: Path
    work_dir: Path
    host: str = "127.0.0.1"
    heap_mb: int = 384


def new_cluster_id() -> str:
    """A Kafka Uuid string, drawn by Kafka's own rules (``Uuid.randomUuid``)."""
    while True:
        cid = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")
        if not cid.startswith("-") and cid not in (_ZERO_UUID, _METADATA_TOPIC_UUID):
            return cid


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all held open together, so no duplicates).

    The usual race applies: another process may grab one before the JVM binds it; the node then
    fails to start with "Address already in use" in its log.
    """
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def voters_string(specs: Sequence[NodeSpec]) -> str:
    return ",".join(f"{s.node_id}@{s.host}:{s.controller_port}" for s in specs)
