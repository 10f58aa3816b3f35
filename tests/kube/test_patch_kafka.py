"""KubeClusterGateway.patch_kafka_spec and the pod states the roll follower reads, against the
sandbox's Kubernetes API emulator over real HTTP (each test writes exactly what it asserts on)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.kube.parse import broker_pod_from
from bot.sandbox.kube import ObjectStore
from handlers.ports import KafkaSpecEdit, PatchRejected
from tests.kube.test_gateway import CLUSTER, NS, STRIMZI, Kube, _serve, create_kafka


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[Kube]:
    async for k in _serve(tmp_path, ObjectStore()):
        yield k


def spec_kafka(kube: Kube) -> dict:  # type: ignore[type-arg]
    return dict(kube.store.get(STRIMZI, "kafkas", NS, "prod")["spec"]["kafka"])


def generation(kube: Kube) -> int:
    return int(kube.store.get(STRIMZI, "kafkas", NS, "prod")["metadata"]["generation"])


async def test_patch_sets_values_creates_the_config_map_and_bumps_the_generation(kube: Kube) -> None:
    """Edits land in spec.kafka in one write (config map created when missing); the new generation is returned."""
    create_kafka(kube.store)
    before = generation(kube)
    new = await kube.gateway.patch_kafka_spec(CLUSTER, [
        KafkaSpecEdit(path=("version",), value="4.3.1"),
        KafkaSpecEdit(path=("config", "log.retention.ms"), value=86400000),
        KafkaSpecEdit(path=("config", "weird/key~name"), value="x"),
    ])
    assert new == generation(kube) == before + 1
    assert spec_kafka(kube)["config"] == {"log.retention.ms": 86400000, "weird/key~name": "x"}
    status = await kube.gateway.kafka_status(CLUSTER)
    assert status.spec_value(("config", "log.retention.ms")) == 86400000 and status.spec_config["weird/key~name"] == "x"


async def test_patch_removes_keys_and_is_a_no_op_when_already_applied(kube: Kube) -> None:
    """A None value removes the key; a patch whose edits are all there writes nothing (same generation)."""
    create_kafka(kube.store)
    await kube.gateway.patch_kafka_spec(CLUSTER, [KafkaSpecEdit(path=("config", "a"), value=1),
                                                  KafkaSpecEdit(path=("config", "b"), value=2)])
    removed = await kube.gateway.patch_kafka_spec(CLUSTER, [KafkaSpecEdit(path=("config", "a"), value=None)])
    assert spec_kafka(kube)["config"] == {"b": 2}
    again = await kube.gateway.patch_kafka_spec(CLUSTER, [KafkaSpecEdit(path=("config", "a"), value=None),
                                                          KafkaSpecEdit(path=("config", "b"), value=2)])
    assert again == removed == generation(kube)


async def test_patch_refuses_when_the_plan_no_longer_matches(kube: Kube) -> None:
    """Expected values (compared as text) and the expected generation must hold, else nothing is written."""
    create_kafka(kube.store)
    gen = generation(kube)
    with pytest.raises(PatchRejected, match=re.escape("spec.kafka.version is 4.3.1, the plan expected 4.2.2")):
        await kube.gateway.patch_kafka_spec(CLUSTER, [KafkaSpecEdit(path=("version",), value="4.3.2")],
                                            expect=[KafkaSpecEdit(path=("version",), value="4.2.2")])
    with pytest.raises(PatchRejected, match=f"at generation {gen}, the plan was made at {gen - 1}"):
        await kube.gateway.patch_kafka_spec(CLUSTER, [KafkaSpecEdit(path=("version",), value="4.3.2")],
                                            expected_generation=gen - 1)
    assert spec_kafka(kube)["version"] == "4.3.1" and generation(kube) == gen
    ok = await kube.gateway.patch_kafka_spec(
        CLUSTER, [KafkaSpecEdit(path=("metadataVersion",), value="4.3-IV0")],
        expect=[KafkaSpecEdit(path=("version",), value="4.3.1")], expected_generation=gen)
    assert ok == gen  # already 4.3-IV0: the preconditions held and there was nothing to write


def test_pod_states_tell_a_crash_from_an_operator_restart() -> None:
    """A crash-looping container is a crash; a terminated container or a deletionTimestamp is a restart in hand."""
    def pod(state: dict, restarts: int = 0, deleting: bool = False) -> dict:  # type: ignore[type-arg]
        meta = {"name": "prod-pool-1", "uid": "u1", "annotations": {"strimzi.io/kafka-version": "4.3.1"}}
        if deleting:
            meta["deletionTimestamp"] = "2026-11-25T00:00:00Z"
        return {"metadata": meta, "status": {"conditions": [{"type": "Ready", "status": "False"}],
                                             "containerStatuses": [{"restartCount": restarts, "state": state}]}}

    crash = broker_pod_from(pod({"waiting": {"reason": "CrashLoopBackOff"}}, restarts=1))
    stopping = broker_pod_from(pod({"terminated": {"exitCode": 143}}))
    deleting = broker_pod_from(pod({"running": {}}, deleting=True))
    fresh = broker_pod_from(pod({"running": {}}))
    assert crash is not None and crash.crashed and crash.waiting_reason == "CrashLoopBackOff"
    assert stopping is not None and stopping.terminating and not stopping.crashed
    assert deleting is not None and deleting.terminating and not deleting.crashed
    assert fresh is not None and not fresh.crashed and not fresh.terminating


def test_pod_times_and_last_exit_come_from_kubernetes_own_fields() -> None:
    """The creation, the container's current start and the Ready transition, as the harm rules read
    them (start to Ready = the broker's start-up time); how the container last ended; a pod not Ready
    has no start-up time, and an unreadable time is simply unknown."""
    ready_pod = {
        "metadata": {"name": "prod-pool-1", "uid": "u1", "creationTimestamp": "2026-01-01T12:00:00Z"},
        "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T12:00:41Z"}],
                   "containerStatuses": [{"restartCount": 2,
                                          "state": {"running": {"startedAt": "2026-01-01T12:00:30Z"}},
                                          "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]},
    }
    pod = broker_pod_from(ready_pod)
    assert pod is not None
    assert (pod.created_at, pod.started_at, pod.ready_since) == (
        datetime(2026, 1, 1, 12, 0, tzinfo=UTC), datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC),
        datetime(2026, 1, 1, 12, 0, 41, tzinfo=UTC))
    assert pod.startup_s == 11.0 and pod.last_exit == "Error, exit code 1"
    ready_pod["status"]["conditions"][0]["status"] = "False"  # type: ignore[index]
    ready_pod["metadata"]["creationTimestamp"] = "yesterday"  # type: ignore[index]
    down = broker_pod_from(ready_pod)
    assert down is not None and down.ready_since is None and down.startup_s is None and down.created_at is None
