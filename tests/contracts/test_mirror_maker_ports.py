"""One contract for the ``MirrorMakers`` port, held by the in-memory fake (``tests.fakes.mirror_makers``)
and by the real adapter (``bot.kube.mirror_makers`` in ``KubeClusterGateway``) against the sandbox's
Kubernetes API emulator alone (no broker, no Connect worker): each case plays the operator's part
itself (status written through ``/status``). Create (again: the same answer; another spec: refused),
the status read as Connect reports it (Ready next to a FAILED task), the generation-checked spec
patch, annotations set and removed, delete."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from kubernetes import client

from handlers.mirror_ports import ConnectorStatus, MirrorMakerGone, MirrorMakers, TaskStatus
from handlers.ports import ClusterRef, PatchRejected
from tests.fakes.mirror_makers import FakeMirrorMakers
from tests.sandbox.conftest import RunningEmulator

pytestmark = pytest.mark.timeout(60)
GROUP, VERSION, PLURAL = "kafka.strimzi.io", "v1", "kafkamirrormaker2s"
SOURCE = "east->west.MirrorSourceConnector"
TRACE = "org.apache.kafka.common.KafkaException: Failed to construct kafka consumer\n\tat ..."
SPEC: dict[str, Any] = {
    "version": "4.3.1", "replicas": 1,
    "target": {"alias": "west", "bootstrapServers": "west:9092"},
    "mirrors": [{"source": {"alias": "east", "bootstrapServers": "east:9092"}, "topicsPattern": "orders.*",
                 "sourceConnector": {"tasksMax": 2, "autoRestart": {"enabled": True}}}],
}
RAW_CONNECTORS = [{"name": SOURCE, "type": "source", "connector": {"state": "RUNNING", "worker_id": "w:8083"},
                   "tasks": [{"id": 1, "state": "FAILED", "worker_id": "w:8083", "trace": TRACE},
                             {"id": 0, "state": "RUNNING", "worker_id": "w:8083"}]}]
CONNECTORS = (ConnectorStatus(name=SOURCE, state="RUNNING", worker_id="w:8083", type="source", tasks=(
    TaskStatus(id=0, state="RUNNING", worker_id="w:8083"),
    TaskStatus(id=1, state="FAILED", worker_id="w:8083", trace=TRACE))),)


class World(Protocol):
    port: MirrorMakers
    ns: str

    def operator_reports_failed_task(self, name: str) -> None: ...


class FakeWorld:
    def __init__(self, namespace: str) -> None:
        self.ns = namespace
        self.fake = FakeMirrorMakers()
        self.port: MirrorMakers = self.fake

    def operator_reports_failed_task(self, name: str) -> None:
        self.fake.operator_reports(self.ns, name, ready=True, connectors=CONNECTORS, url="http://w:8083")


class RealWorld:
    def __init__(self, namespace: str, api: client.ApiClient) -> None:
        from bot.kube.gateway import KubeClusterGateway

        self.ns = namespace
        self.custom = client.CustomObjectsApi(api)
        self.adapter = KubeClusterGateway(api)
        self.port: MirrorMakers = self.adapter

    def operator_reports_failed_task(self, name: str) -> None:
        found = self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name)
        status = {"conditions": [{"type": "Ready", "status": "True"}], "url": "http://w:8083",
                  "observedGeneration": found["metadata"]["generation"], "connectors": RAW_CONNECTORS}
        self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, self.ns, PLURAL, name, {"status": status})


@pytest.fixture(scope="module")
def emulator_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[client.ApiClient]:
    emulator = RunningEmulator().start()
    api = emulator.api_client(Path(tmp_path_factory.mktemp("kube")))
    try:
        yield api
    finally:
        api.close()
        emulator.stop()


@pytest.fixture(params=["fake", "real"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    namespace = f"test-{uuid.uuid4().hex[:8]}"
    if request.param == "fake":
        yield FakeWorld(namespace)
        return
    real = RealWorld(namespace, request.getfixturevalue("emulator_api"))
    try:
        yield real
    finally:
        real.adapter.close()


def ref(world: World) -> ClusterRef:
    return ClusterRef(name="west", namespace=world.ns, kafka="west")


async def test_create_then_read_the_status_as_connect_reports_it(world: World) -> None:
    """Created with its spec and labels; the status keeps Ready=True next to a FAILED task (Strimzi #5715),
    the task's trace, tasks in id order; list and get agree; asked again with the same spec: the same one."""
    made = await world.port.create_mirror_maker(ref(world), "dr", SPEC, labels={"kafka-chatops.io/run": "r1"})
    assert (made.name, made.namespace, made.spec, made.labels) == ("dr", world.ns, SPEC, {"kafka-chatops.io/run": "r1"})
    assert not made.ready and made.connectors == ()
    world.operator_reports_failed_task("dr")
    read = await world.port.get_mirror_maker(ref(world), "dr")
    assert read is not None and read.ready and read.settled and read.url == "http://w:8083"
    assert read.connectors == CONNECTORS
    source = read.connector(SOURCE)
    assert source is not None and not source.running and [t.id for t in source.failed_tasks] == [1]
    assert await world.port.list_mirror_makers(ref(world)) == [read]
    again = await world.port.create_mirror_maker(ref(world), "dr", SPEC, labels={"kafka-chatops.io/run": "r1"})
    assert again.uid == read.uid
    other = {**SPEC, "replicas": 2}
    with pytest.raises(PatchRejected, match="exists already with another spec"):
        await world.port.create_mirror_maker(ref(world), "dr", other)
    assert await world.port.get_mirror_maker(ref(world), "missing") is None


async def test_the_spec_patch_is_checked_against_the_generation(world: World) -> None:
    made = await world.port.create_mirror_maker(ref(world), "dr", SPEC)
    paused = {**SPEC, "mirrors": [{**SPEC["mirrors"][0], "sourceConnector": {"tasksMax": 2, "state": "paused"}}]}
    with pytest.raises(PatchRejected, match="generation"):
        await world.port.patch_mirror_maker_spec(ref(world), "dr", paused, expected_generation=made.generation + 5)
    written = await world.port.patch_mirror_maker_spec(ref(world), "dr", paused, expected_generation=made.generation)
    assert written.spec == paused and written.generation == made.generation + 1
    same = await world.port.patch_mirror_maker_spec(ref(world), "dr", paused)
    assert same.generation == written.generation  # nothing to change: no new generation
    with pytest.raises(MirrorMakerGone):
        await world.port.patch_mirror_maker_spec(ref(world), "missing", paused)


async def test_annotations_are_set_and_removed_and_delete_says_if_it_was_there(world: World) -> None:
    await world.port.create_mirror_maker(ref(world), "dr", SPEC)
    key = "strimzi.io/restart-connector"
    written = await world.port.annotate_mirror_maker(ref(world), "dr", {key: f"{SOURCE}:includeTasks,onlyFailed"})
    assert written.annotations == {key: f"{SOURCE}:includeTasks,onlyFailed"}
    removed = await world.port.annotate_mirror_maker(ref(world), "dr", {key: None})
    assert removed.annotations.get(key) is None
    with pytest.raises(MirrorMakerGone):
        await world.port.annotate_mirror_maker(ref(world), "missing", {key: "x"})
    assert await world.port.delete_mirror_maker(ref(world), "dr") is True
    assert await world.port.delete_mirror_maker(ref(world), "dr") is False
    assert await world.port.get_mirror_maker(ref(world), "dr") is None
