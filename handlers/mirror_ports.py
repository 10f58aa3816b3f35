"""The ports of KafkaMirrorMaker2 resources and of the mirror canary (the mirror runbook, the mirror
alerts). ``bot/kube/mirror_makers.py`` and ``bot/kafka/mirror_canary.py`` implement them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from handlers.ports import ClusterRef
from runbooks.alerting.mirror import CanaryArrival, CanaryState


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class TaskStatus(_Frozen):
    """One Connect task as ``status.connectors[].tasks[]`` reports it (the raw Connect REST status)."""

    id: int
    state: str  # RUNNING, FAILED, PAUSED, UNASSIGNED, RESTARTING, STOPPED
    worker_id: str = ""
    trace: str = ""  # a FAILED task's Java stack trace, as Connect gives it


class ConnectorStatus(_Frozen):
    """One connector of a KafkaMirrorMaker2 (``east->west.MirrorSourceConnector``) and its tasks."""

    name: str
    state: str  # the connector's own state
    worker_id: str = ""
    trace: str = ""
    type: str = ""  # "source" for the Mirror connectors
    tasks: tuple[TaskStatus, ...] = ()

    @property
    def running(self) -> bool:
        """The connector and every task RUNNING (a connector with no task yet is not running)."""
        return self.state == "RUNNING" and bool(self.tasks) and all(t.state == "RUNNING" for t in self.tasks)

    @property
    def failed_tasks(self) -> tuple[TaskStatus, ...]:
        return tuple(t for t in self.tasks if t.state == "FAILED")


class AutoRestartStatus(_Frozen):
    """``status.autoRestartStatuses[]``: how often the operator restarted a connector on its own."""

    connector: str
    count: int = 0
    last_restart: str = ""  # lastRestartTimestamp as the operator wrote it


class MirrorMakerStatus(_Frozen):
    """A KafkaMirrorMaker2 resource: its spec as written and its status. ``ready`` is Strimzi's Ready
    condition, which stays True next to a FAILED connector (Strimzi issue #5715): read ``connectors``."""

    name: str
    namespace: str
    uid: str = ""
    ready: bool = False
    reason: str = ""  # the NotReady condition's reason (InvalidResourceException, ...)
    message: str = ""
    generation: int = 0
    observed_generation: int = 0
    url: str = ""  # the Connect REST API
    spec: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    connectors: tuple[ConnectorStatus, ...] = ()
    auto_restarts: tuple[AutoRestartStatus, ...] = ()

    @property
    def settled(self) -> bool:
        """The operator saw the latest spec and the resource is Ready (the connectors aside)."""
        return self.ready and self.observed_generation >= self.generation

    def connector(self, name: str) -> ConnectorStatus | None:
        return next((c for c in self.connectors if c.name == name), None)


class MirrorMakers(Protocol):
    """The KafkaMirrorMaker2 resources in a managed cluster's namespace (``cluster.namespace``): a
    mirror lives in its target cluster's Kubernetes API, next to that cluster's Kafka resource."""

    async def list_mirror_makers(self, cluster: ClusterRef) -> list[MirrorMakerStatus]: ...

    async def get_mirror_maker(self, cluster: ClusterRef, name: str) -> MirrorMakerStatus | None: ...

    async def create_mirror_maker(
        self, cluster: ClusterRef, name: str, spec: Mapping[str, Any], *, labels: Mapping[str, str] | None = None,
    ) -> MirrorMakerStatus:
        """Create ``name`` with ``spec`` (and ``labels``). One that exists already with the same spec
        is returned as it is (the step is asked again after a crash); one with another spec raises
        ``PatchRejected``, having written nothing."""
        ...

    async def patch_mirror_maker_spec(
        self, cluster: ClusterRef, name: str, spec: Mapping[str, Any], *, expected_generation: int | None = None,
    ) -> MirrorMakerStatus:
        """Replace the whole spec with ``spec`` while the generation is still ``expected_generation``
        (when given), in one checked write; else ``PatchRejected``. ``MirrorMakerGone`` if it is gone."""
        ...

    async def delete_mirror_maker(self, cluster: ClusterRef, name: str) -> bool:
        """Delete it; False when it was already gone."""
        ...

    async def annotate_mirror_maker(
        self, cluster: ClusterRef, name: str, annotations: Mapping[str, str | None],
    ) -> MirrorMakerStatus:
        """Set (None: remove) annotations, e.g. ``strimzi.io/restart-connector``; ``MirrorMakerGone``
        if it is gone."""
        ...


class MirrorMakerGone(Exception):
    """The KafkaMirrorMaker2 does not exist (any more)."""


class CanaryFigures(_Frozen):
    """One canary round: records produced on the source, read back on the target."""

    sent: int
    received: int  # distinct canary records of this round seen on the target
    duplicates: int = 0  # records of this round seen more than once
    p50_ms: float | None = None  # produce -> seen on the target
    p99_ms: float | None = None
    max_ms: float | None = None
    first_ms: float | None = None  # when the first record arrived, from the start of the round

    @property
    def missing(self) -> int:
        return self.sent - self.received


class Checkpoint(_Frozen):
    """One record of ``<source alias>.checkpoints.internal`` as MirrorClient decodes it."""

    group: str
    topic: str  # the remote topic's name on the target
    partition: int
    upstream: int  # the group's committed offset on the source
    downstream: int  # that offset translated to the target


MONITOR_MARKER = "monitor:"  # the marker of the monitor's canary records starts so; the runbook's do not


class CanaryProbe(_Frozen):
    """One probe of the monitor: the monitor's canary records seen on the target, where reading stopped."""

    arrivals: tuple[CanaryArrival, ...] = ()
    positions: dict[int, int] = Field(default_factory=dict)


class CanaryStates(Protocol):
    """The monitor's canary state per mirror, shared by every replica (Redis): the monitor writes it,
    ``/kafka mirror status`` reads it."""

    async def load(self, cluster: str, mirror: str) -> CanaryState | None: ...

    async def save(self, state: CanaryState) -> None: ...


class MirrorCanary(Protocol):
    """The Kafka side of proving a mirror: aiokafka clients with each cluster's own security."""

    async def create_topic(self, cluster: ClusterRef, bootstrap_servers: str, topic: str, *,
                           partitions: int = 1) -> bool:
        """Create ``topic`` (3 replicas, fewer on a smaller cluster); False when it exists already."""
        ...

    async def round_trip(
        self, source: ClusterRef, source_bootstrap: str, source_topic: str,
        target: ClusterRef, target_bootstrap: str, target_topic: str, *, marker: str, count: int, timeout_s: float,
    ) -> CanaryFigures:
        """Produce ``count`` timestamped records tagged ``marker`` to ``source_topic`` while reading
        ``target_topic`` (from its start, once it exists) until every one arrived or ``timeout_s``."""
        ...

    async def probe(
        self, source: ClusterRef, source_bootstrap: str, source_topic: str,
        target: ClusterRef, target_bootstrap: str, target_topic: str, *, marker: str, positions: Mapping[int, int],
        wait_s: float,
    ) -> CanaryProbe:
        """Produce one timestamped record tagged ``marker`` (which starts with ``MONITOR_MARKER``) to
        ``source_topic``, and read ``target_topic`` from ``positions`` (a partition not in them: from
        its end before the send) until that record arrived or ``wait_s``: every monitor canary record
        read is an arrival (an earlier probe's that came late too). No consumer group: the positions
        are the caller's to keep."""
        ...

    async def end_offsets(self, cluster: ClusterRef, bootstrap_servers: str, topic: str) -> dict[int, int]:
        """The log end offset of each partition of ``topic`` ({} when it does not exist)."""
        ...

    async def record_time(self, cluster: ClusterRef, bootstrap_servers: str, topic: str, partition: int,
                          offset: int) -> datetime | None:
        """The timestamp of the record at ``offset`` (or the first one after it); None when there is none."""
        ...

    async def commit_offsets(self, cluster: ClusterRef, bootstrap_servers: str, group: str,
                             offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit ``offsets`` ((topic, partition) -> offset) for ``group``, which has no members."""
        ...

    async def checkpoints(self, cluster: ClusterRef, bootstrap_servers: str, source_alias: str,
                          group: str) -> list[Checkpoint]:
        """The latest checkpoint of each (topic, partition) of ``group`` in
        ``<source_alias>.checkpoints.internal`` ([] when the topic does not exist yet)."""
        ...
