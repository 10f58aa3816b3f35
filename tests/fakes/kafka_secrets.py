"""What ``bot.kafka.security.KafkaSecurityResolver`` reads from a cluster's Kubernetes API
(``SecurityKube``: the Kafka resource's status with its spec, and Secrets by name), in memory.

A Secret not held answers as the Kubernetes adapter does for a missing one: an error with
``status`` 404 and a message naming the call. ``down`` makes every read fail as an unreachable
API server does (``status`` None).
"""

from __future__ import annotations

from typing import Any

from handlers.ports import ClusterRef, KafkaResourceStatus


class KubeReadFailed(Exception):
    def __init__(self, message: str, status: int | None) -> None:
        super().__init__(message)
        self.status = status


class FakeSecurityKube:
    def __init__(self, listeners: list[dict[str, Any]] | None = None) -> None:
        self.listeners: list[dict[str, Any]] = list(listeners or [])  # spec.kafka.listeners
        self.secrets: dict[str, dict[str, bytes]] = {}
        self.down = False
        self.reads: list[str] = []  # "kafka" or "secret/<name>", in order

    async def kafka_status(self, cluster: ClusterRef) -> KafkaResourceStatus:
        self._check(f"get Kafka {cluster.namespace}/{cluster.kafka}")
        self.reads.append("kafka")
        return KafkaResourceStatus(ready=True, spec={"listeners": [dict(entry) for entry in self.listeners]})

    async def read_secret(self, cluster: ClusterRef, name: str) -> dict[str, bytes]:
        what = f"get Secret {cluster.namespace}/{name}"
        self._check(what)
        self.reads.append(f"secret/{name}")
        if name not in self.secrets:
            raise KubeReadFailed(f"Kubernetes API: {what}: HTTP 404 Not Found", 404)
        return dict(self.secrets[name])

    def _check(self, what: str) -> None:
        if self.down:
            raise KubeReadFailed(f"Kubernetes API: {what}: connection refused", None)
