"""The ports through which use cases reach the world. ``bot/`` implements them.

Each port is a small Protocol; the values crossing it are frozen pydantic models, so the use
cases never see a kubernetes or Kafka client object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from handlers.replica_moves import ReplicaMoves
from runbooks.engine.events import Notify
from runbooks.engine.models import AuditEntry, Run
from runbooks.rules.config_keys import ConfigEntryInfo
from runbooks.rules.harm import STUCK_REASONS
from runbooks.rules.health import ClusterSnapshot
from runbooks.rules.node_pools import NodePool


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ClusterRef(_Frozen):
    """A managed cluster: the name users type, and where its Kafka resource lives."""

    name: str
    namespace: str
    kafka: str  # the Kafka custom resource's name
    bootstrap_servers: str | None = None  # override; else read from the Kafka status
    listener: str | None = None  # the listener (spec name) whose status address to use; None: the first


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
    bootstrap_problem: str = ""  # why there is no bootstrap address (the named listener is missing)
    paused: bool = False
    cruise_control: bool = False  # the Kafka resource has spec.cruiseControl (Strimzi deploys Cruise Control)
    # spec.entityOperator.topicOperator: Strimzi's Topic Operator runs and owns the configs of the
    # topics that have a KafkaTopic (without Cruise Control it deletes throttled-replica lists, strimzi#9972)
    topic_operator: bool = False
    spec: dict[str, Any] = Field(default_factory=dict)  # spec.kafka as written (version, config, ...)

    @property
    def spec_config(self) -> dict[str, Any]:
        config = self.spec.get("config")
        return dict(config) if isinstance(config, dict) else {}

    def spec_value(self, path: Sequence[str]) -> Any:
        """The value at ``path`` under spec.kafka (e.g. ("config", "log.retention.ms")), None if absent."""
        node: Any = self.spec
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

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
    terminating: bool = False  # being deleted (the operator restarts it): not a crash
    waiting_reason: str = ""  # e.g. CrashLoopBackOff
    last_exit: str = ""  # how its container last ended, e.g. "Error, exit code 1" (lastState.terminated)
    created_at: datetime | None = None  # metadata.creationTimestamp: a new pod is a restart by the operator
    started_at: datetime | None = None  # the container's current start (state.running.startedAt)
    ready_since: datetime | None = None  # the Ready condition's lastTransitionTime, while Ready

    @property
    def crashed(self) -> bool:
        """Down because its process died, not because the operator is replacing it."""
        if self.ready or self.terminating:
            return False
        return self.waiting_reason == "CrashLoopBackOff" or self.restart_count > 0

    @property
    def stuck(self) -> bool:
        """Crashed, or a container Kubernetes cannot run at all (an image it cannot pull, ...):
        what Strimzi's KafkaRoller calls a stuck pod. Waiting will not bring it back."""
        return self.crashed or (not self.ready and not self.terminating and self.waiting_reason in STUCK_REASONS)

    @property
    def startup_s(self) -> float | None:
        """Seconds from its container's start (else the pod's creation) to Ready, as Kubernetes
        reports them; None unless Ready with both times known."""
        start = self.started_at or self.created_at
        if not self.ready or start is None or self.ready_since is None or self.ready_since < start:
            return None
        return (self.ready_since - start).total_seconds()


class KafkaSpecEdit(_Frozen):
    """One change under ``spec.kafka``: ``path`` like ("version",) or ("config", "log.retention.ms")."""

    path: tuple[str, ...]
    value: Any = None  # None removes the key


class PatchRejected(Exception):
    """A precondition of a patch did not hold: someone changed the resource since the plan."""


class BrokerFeatures(_Frozen):
    """What one broker process advertises in ApiVersions: the highest metadata.version its own
    binaries support (the release line it really runs), and the finalized cluster level it sees."""

    broker: int
    metadata_max_level: int | None = None
    finalized_metadata_level: int | None = None


class SecretLookup(_Frozen):
    """A Secret looked up by name: whether it is there and the names of its keys, never a value."""

    name: str
    found: bool
    keys: tuple[str, ...] = ()
    forbidden: str = ""  # the API refused the read (RBAC allows get on named Secrets only): its words


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

    async def patch_kafka_spec(
        self, cluster: ClusterRef, edits: Sequence[KafkaSpecEdit], *, expect: Sequence[KafkaSpecEdit] = (),
        expected_generation: int | None = None,
    ) -> int:
        """Apply ``edits`` to spec.kafka in one atomic write, only if every ``expect`` value is still
        there and the generation is still ``expected_generation`` (when given); otherwise raise
        PatchRejected and change nothing. Returns the resource's new generation."""
        ...

    async def request_pod_and_pvc_replacement(self, cluster: ClusterRef, pod_name: str, expected_uid: str) -> bool:
        """``strimzi.io/delete-pod-and-pvc=true`` on the pod if it still has ``expected_uid``, else False."""
        ...

    async def node_pools(self, cluster: ClusterRef) -> list[NodePool]: ...

    async def patch_node_pool(self, cluster: ClusterRef, pool: str, *, replicas: int, expected_replicas: int,
                              annotations: Mapping[str, str | None] | None = None) -> None:
        """spec.replicas (and annotations, None removes) while it is ``expected_replicas``, else PatchRejected."""
        ...

    async def secret_keys(self, cluster: ClusterRef, name: str) -> SecretLookup:
        """The Secret ``name`` in the cluster's namespace: found or not, its keys' names (the values are
        dropped in the adapter); a 403 answers ``forbidden``, other failures raise."""
        ...


class KafkaAdmin(ReplicaMoves, Protocol):
    """The Kafka side: metadata, ISR, quorum, leadership."""

    async def snapshot(self, cluster: ClusterRef, bootstrap_servers: str) -> ClusterSnapshot: ...

    async def elect_preferred_leaders(self, cluster: ClusterRef, bootstrap_servers: str) -> int:
        """Run a preferred leader election for every partition; returns how many leaders moved."""
        ...

    async def describe_broker_configs(
        self, cluster: ClusterRef, bootstrap_servers: str, brokers: Sequence[int], keys: Sequence[str] | None = None,
    ) -> dict[int, dict[str, ConfigEntryInfo]]:
        """Each broker's configs as that broker reports them (DescribeConfigs on BROKER "<id>", sent to
        that broker); ``keys`` None means every key."""
        ...

    async def broker_features(
        self, cluster: ClusterRef, bootstrap_servers: str, brokers: Sequence[int],
    ) -> dict[int, BrokerFeatures]:
        """ApiVersions of each broker (sent to that broker), for the version it really runs."""
        ...

    async def validate_broker_configs(
        self, cluster: ClusterRef, bootstrap_servers: str, brokers: Sequence[int], values: Mapping[str, str],
    ) -> dict[int, str | None]:
        """Ask each broker whether it would take ``values``: IncrementalAlterConfigs (SET of each key)
        with validate_only on BROKER "<id>", sent to that broker, which runs the checks of a live
        update (types, validators, and its reconfigurable components' own limits). Per broker: None
        if it would take them, else its own error message. Changes nothing."""
        ...


class StoreUnavailable(Exception):
    """The run store (Redis) cannot be reached: refuse new commands, hold running steps."""


class VersionConflict(Exception):
    """Someone else wrote the run since it was read: reload and decide again."""


class RunExists(Exception):
    pass


class ClusterHeld(Exception):
    """Another run holds the cluster's lock: ``holder`` is its id."""

    def __init__(self, holder: str) -> None:
        super().__init__(f"the cluster is held by run {holder}")
        self.holder = holder


class RunRepository(Protocol):
    """Durable runs: versioned records written with compare-and-set, plus an audit stream each.

    Every write (``create``, ``save``) also tells every front end and worker that the run moved
    (cards, console lines, the driver's wake-up), with ``notes`` saying what happened, in the
    same atomic step: a write and its announcement happen together or not at all."""

    async def create(self, run: Run, audit: Sequence[AuditEntry], *, notes: Sequence[Notify] = ()) -> int:
        """Write a new run and take its cluster's lock, in one atomic step: the lock's fencing token,
        which the stored run carries (``run.fencing_token`` is ignored). :class:`ClusterHeld` if
        another run holds the cluster, :class:`RunExists` if the id is taken: nothing written."""
        ...

    async def supersede(self, run: Run, audit: Sequence[AuditEntry], *, notes: Sequence[Notify] = (),
                        old: Run, old_version: int, old_audit: Sequence[AuditEntry],
                        old_notes: Sequence[Notify] = ()) -> int:
        """Write the new ``run`` and ``old`` (finished, at ``old_version`` + 1) in one atomic step,
        passing the cluster's lock from ``old`` to ``run`` with a new fencing token (returned): no
        other run can take the cluster in between. :class:`ClusterHeld` if ``old`` does not hold
        the lock, :class:`VersionConflict` if it moved since ``old_version``, :class:`RunExists` if
        the new id is taken: then nothing is written."""
        ...

    async def load(self, run_id: str) -> tuple[Run, int] | None: ...

    async def save(self, run: Run, *, expected_version: int, audit: Sequence[AuditEntry],
                   notes: Sequence[Notify] = ()) -> int: ...

    async def append_audit(self, run_id: str, entries: Sequence[AuditEntry]) -> None: ...

    async def audit(self, run_id: str) -> list[AuditEntry]: ...

    async def active(self, cluster: str | None = None) -> list[str]: ...

    async def recent(self, cluster: str | None = None, limit: int = 20) -> list[str]: ...


class ClusterLocks(Protocol):
    """One mutating run per cluster; the token fences out a run that lost its lock. A run takes
    its cluster's lock when it is created (:meth:`RunRepository.create`)."""

    async def holder(self, cluster: str) -> str | None: ...

    async def release(self, cluster: str, run_id: str) -> bool: ...

    async def check_token(self, cluster: str, token: int) -> bool: ...


class RunLease(Protocol):
    """Which replica drives a run: a lease that expires unless renewed, so a dead replica's runs are
    adopted by another. Not the cluster lock: that one never expires and fences actions
    (:meth:`ClusterLocks.check_token`); this one only keeps two replicas from driving one run."""

    async def try_acquire(self, run_id: str, owner: str, ttl_s: float) -> bool:
        """Take the lease if it is free (or already ``owner``'s, which extends it)."""
        ...

    async def renew(self, run_id: str, owner: str, ttl_s: float) -> bool:
        """Extend ``owner``'s lease; False when it lapsed or another owner has it: stop driving."""
        ...

    async def release(self, run_id: str, owner: str) -> None:
        """Drop ``owner``'s lease (nothing happens if it is not theirs)."""
        ...


class Clock(Protocol):
    def now(self) -> datetime: ...


class Ids(Protocol):
    def run_id(self) -> str: ...

    def nonce(self) -> str: ...


# -- consumer lag reads (the lag monitor) ---------------------------------------------------------


class GroupMember(_Frozen):
    member_id: str
    client_id: str = ""
    host: str = ""
    partitions: tuple[tuple[str, int], ...] = ()  # its assignment: (topic, partition)


class ConsumerGroup(_Frozen):
    group: str
    state: str = ""  # Stable, Empty, PreparingRebalance, Dead, ... as the coordinator says
    protocol_type: str = "consumer"  # "" for a group that only commits (no group membership)
    members: tuple[GroupMember, ...] = ()


class GroupCommits(_Frozen):
    """One group's committed offsets (topic -> partition -> offset), or why they could not be read."""

    group: str
    offsets: dict[str, dict[int, int]] = Field(default_factory=dict)
    error: str | None = None


class LagReader(Protocol):
    """What the lag monitor reads from Kafka. The use case calls ``committed_offsets`` before
    ``log_offsets``: a commit landing between the two reads then shows as lag, never as a negative."""

    async def consumer_groups(self, cluster: ClusterRef, bootstrap_servers: str) -> list[ConsumerGroup]:
        """Every consumer group with its state and members (ListGroups + DescribeGroups)."""
        ...

    async def committed_offsets(
        self, cluster: ClusterRef, bootstrap_servers: str, groups: Sequence[str],
    ) -> list[GroupCommits]:
        """OffsetFetch for each group; a group that fails carries its error, the others stand."""
        ...

    async def log_offsets(
        self, cluster: ClusterRef, bootstrap_servers: str, partitions: Sequence[tuple[str, int]],
    ) -> dict[tuple[str, int], tuple[int, int]]:
        """(earliest, latest) offsets per partition (ListOffsets); partitions that fail are left out."""
        ...

    async def record_timestamps(
        self, cluster: ClusterRef, bootstrap_servers: str, positions: Sequence[tuple[str, int, int]],
    ) -> dict[tuple[str, int, int], int]:
        """The timestamp (ms) of the first record at or after each (topic, partition, offset); a
        position with no record (yet) or that cannot be read is left out."""
        ...
