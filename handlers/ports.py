"""The ports through which use cases reach the world. ``bot/`` implements them.

Each port is a small Protocol; the values crossing it are frozen pydantic models, so the use
cases never see a kubernetes or Kafka client object.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from runbooks.events import Notify
from runbooks.health import ClusterSnapshot
from runbooks.models import AuditEntry, Run


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ClusterRef(_Frozen):
    """A managed cluster: the name users type, and where its Kafka resource lives."""

    name: str
    namespace: str
    kafka: str  # the Kafka custom resource's name
    bootstrap_servers: str | None = None  # override; else read from the Kafka status


class KafkaResourceStatus(_Frozen):
    ready: bool
    reason: str = ""
    message: str = ""
    generation: int = 0
    observed_generation: int = 0
    kafka_version: str | None = None
    metadata_version: str | None = None
    spec_kafka_version: str | None = None
    spec_metadata_version: str | None = None
    operator_version: str | None = None
    warnings: tuple[str, ...] = ()
    bootstrap_servers: str | None = None
    paused: bool = False

    @property
    def settled(self) -> bool:
        """Strimzi's "change applied": the operator saw the latest spec and the cluster is Ready."""
        return self.ready and self.observed_generation >= self.generation


class BrokerPod(_Frozen):
    node_id: int
    name: str
    uid: str
    ready: bool
    pool: str = ""
    kafka_version: str | None = None
    restart_count: int = 0
    phase: str = ""


class ClusterGateway(Protocol):
    """The Kubernetes side of a cluster: Strimzi resources and broker pods."""

    async def kafka_status(self, cluster: ClusterRef) -> KafkaResourceStatus: ...

    async def broker_pods(self, cluster: ClusterRef) -> list[BrokerPod]: ...

    async def request_pod_roll(self, cluster: ClusterRef, pod_name: str, expected_uid: str) -> bool:
        """Annotate the pod with ``strimzi.io/manual-rolling-update=true`` if it still has ``expected_uid``.

        Returns False (and changes nothing) when the pod is gone or was already replaced, so a
        retried step can never roll the new pod a second time.
        """
        ...


class KafkaAdmin(Protocol):
    """The Kafka side: metadata, ISR, quorum, leadership."""

    async def snapshot(self, cluster: ClusterRef, bootstrap_servers: str) -> ClusterSnapshot: ...

    async def elect_preferred_leaders(self, cluster: ClusterRef, bootstrap_servers: str) -> int:
        """Run a preferred leader election for every partition; returns how many leaders moved."""
        ...


class StoreUnavailable(Exception):
    """The run store (Redis) cannot be reached: refuse new commands, hold running steps."""


class VersionConflict(Exception):
    """Someone else wrote the run since it was read: reload and decide again."""


class RunExists(Exception):
    pass


class RunRepository(Protocol):
    """Durable runs: versioned records written with compare-and-set, plus an audit stream each."""

    async def create(self, run: Run, audit: Sequence[AuditEntry]) -> int: ...

    async def load(self, run_id: str) -> tuple[Run, int] | None: ...

    async def save(self, run: Run, *, expected_version: int, audit: Sequence[AuditEntry]) -> int: ...

    async def append_audit(self, run_id: str, entries: Sequence[AuditEntry]) -> None: ...

    async def audit(self, run_id: str) -> list[AuditEntry]: ...

    async def active(self, cluster: str | None = None) -> list[str]: ...

    async def recent(self, cluster: str | None = None, limit: int = 20) -> list[str]: ...


class ClusterLocks(Protocol):
    """One mutating run per cluster; the token fences out a run that lost its lock."""

    async def acquire(self, cluster: str, run_id: str) -> int | None: ...

    async def holder(self, cluster: str) -> str | None: ...

    async def release(self, cluster: str, run_id: str) -> bool: ...

    async def check_token(self, cluster: str, token: int) -> bool: ...


class RunNotifier(Protocol):
    """Tells every front end that a run moved (cards, console lines), and wakes its driver."""

    async def run_changed(self, run: Run, notes: Sequence[Notify]) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class Ids(Protocol):
    def run_id(self) -> str: ...

    def nonce(self) -> str: ...
