"""One in-memory fake per port, in one place, used by every fast test.

Each is checked against the real adapter by the contract tests in tests/contracts (Redis for the
run store, the sandbox's brokers and Kubernetes emulator for the cluster ports). The assignments
below make mypy check that each fake satisfies its Protocol as declared in ``handlers.ports``
(and ``handlers.alerting.alert_ports``), without a ``type: ignore``.
"""

from __future__ import annotations

from handlers.alerting.alert_ports import AlertChannel, AlertStore, LagReports
from handlers.mirror_ports import CanaryStates, MirrorCanary, MirrorMakers
from handlers.operator_deployment import OperatorDeployments
from handlers.ports import Clock, ClusterGateway, ClusterLocks, Ids, KafkaAdmin, LagReader, RunLease, RunRepository
from tests.fakes.alerts import FakeLagReader, MemoryAlertStore, MemoryLagReports, RecordingChannel
from tests.fakes.cluster import FakeCluster
from tests.fakes.mirror_canary import FakeMirrorCanary, MemoryCanaryStates
from tests.fakes.mirror_makers import FakeMirrorMakers
from tests.fakes.operator import FakeOperatorDeployments
from tests.fakes.store import MemoryClusterLocks, MemoryRunLease, MemoryRunRepository, MemoryRunStore
from tests.fakes.strimzi import FakeStrimzi
from tests.fakes.time import FakeClock, SequentialIds

__all__ = [
    "FakeClock",
    "FakeCluster",
    "FakeLagReader",
    "FakeMirrorCanary",
    "FakeMirrorMakers",
    "FakeOperatorDeployments",
    "FakeStrimzi",
    "MemoryAlertStore",
    "MemoryCanaryStates",
    "MemoryClusterLocks",
    "MemoryLagReports",
    "MemoryRunLease",
    "MemoryRunRepository",
    "MemoryRunStore",
    "RecordingChannel",
    "SequentialIds",
]


def _conforms() -> None:
    """Never called: mypy checks each fake against its port here."""
    state = MemoryRunStore()
    _gateways: list[ClusterGateway] = [FakeStrimzi(), FakeCluster()]
    _admins: list[KafkaAdmin] = [FakeStrimzi(), FakeCluster()]
    _runs: RunRepository = MemoryRunRepository(state)
    _locks: ClusterLocks = MemoryClusterLocks(state)
    _lease: RunLease = MemoryRunLease(state)
    _clock: Clock = FakeClock()
    _ids: Ids = SequentialIds()
    _alerts: AlertStore = MemoryAlertStore()
    _channel: AlertChannel = RecordingChannel()
    _reports: LagReports = MemoryLagReports()
    _lag: LagReader = FakeLagReader()
    _operator: OperatorDeployments = FakeOperatorDeployments()
    _mirror_makers: MirrorMakers = FakeMirrorMakers()
    _canary: MirrorCanary = FakeMirrorCanary()
    _canary_states: CanaryStates = MemoryCanaryStates()
