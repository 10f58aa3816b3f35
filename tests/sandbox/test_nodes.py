"""Kafka jars from Maven Central and Kafka nodes as JVM processes (bot/sandbox/jars.py, node.py).

One module-scoped 3-node cluster (4.2.2) serves the cluster tests, which run in file order:
serve a topic -> roll one node onto 4.3.1 -> crash one node -> stop all (proves nothing is left).
The first run fetches 4.2.2 and 4.3.1 (~10 s each, cached under ~/.cache/kafka-chatops/kafka).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from bot.sandbox import jars
from bot.sandbox.errors import SandboxError
from bot.sandbox.node import KafkaNode, stop_all
from bot.sandbox.node_spec import NodeSpec, free_ports, new_cluster_id, voters_string

pytestmark = pytest.mark.sandbox
module_loop = pytest.mark.asyncio(loop_scope="module")  # the cluster lives on the module's event loop

OLD, NEW = "4.2.2", "4.3.1"
START_TIMEOUT = 180.0  # 2 cores shared with other test sessions: generous, wait_running polls anyway
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def kafka_libs() -> dict[str, Path]:
    return {v: jars.fetch(v) for v in (OLD, NEW)}


@pytest.fixture(scope="module")
def nodes_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("kco-nodes")
    yield root
    # Safety net for a failed test: every JVM of this module has `root` in its command line
    # (-Djava.io.tmpdir, -Dkafka.logs.dir), and no other process on the machine does.
    subprocess.run(["pkill", "-KILL", "-f", str(root)], check=False)


def _jvms_under(root: Path) -> list[int]:
    """PIDs of live (non-zombie) processes whose command line mentions ``root``."""
    out = subprocess.run(["pgrep", "-f", str(root)], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split() if _alive(int(p))]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"  # a zombie waits for a reaper (PID 1 in a container may never reap it)


def _cmdline(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


def _make_specs(root: Path, n: int) -> list[NodeSpec]:
    ports = free_ports(2 * n)
    cid = new_cluster_id()
    specs = [NodeSpec(node_id=i, cluster_id=cid, client_port=ports[2 * i], controller_port=ports[2 * i + 1],
                      voters="", data_dir=root / f"n{i}" / "data", work_dir=root / f"n{i}" / "work")
             for i in range(n)]
    voters = voters_string(specs)
    for s in specs:
        s.voters = voters
    return specs


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(kafka_libs: dict[str, Path], nodes_root: Path) -> AsyncIterator[list[KafkaNode]]:
    nodes = [KafkaNode(s) for s in _make_specs(nodes_root / "cluster", 3)]
    try:
        await asyncio.gather(*(n.format_async(OLD) for n in nodes))
        t0 = time.monotonic()
        for n in nodes:  # together: a lone node never finishes startup (it waits for a quorum)
            n.start(OLD)
        await asyncio.gather(*(n.wait_running(START_TIMEOUT) for n in nodes))
        print(f"cold start of 3 nodes to RUNNING: {time.monotonic() - t0:.1f} s")
        yield nodes
    finally:
        await stop_all(nodes, grace=10)


def _bootstrap(nodes: list[KafkaNode]) -> str:
    return ",".join(f"{n.spec.host}:{n.spec.client_port}" for n in nodes if n.is_running())


def _produce_consume(bootstrap: str, topic: str, count: int, group: str) -> list[bytes]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=5)
    try:
        for i in range(count):
            producer.send(topic, f"{group}-{i}".encode())
        producer.flush(timeout=60)
    finally:
        producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group,
                             auto_offset_reset="earliest", consumer_timeout_ms=20000)
    try:
        values = []
        for record in consumer:
            values.append(record.value)
            if len(values) == count:
                break
        consumer.commit()
        return values
    finally:
        consumer.close()


# -- jars ------------------------------------------------------------------------------------
def test_version_strings_are_validated() -> None:
    """Junk versions are refused before Maven with a message naming known-good versions."""
    for junk in ("latest", "4.x", "4.3", "4.3.1-SNAPSHOT", "../4.3.1", "", " 4.3.1"):
        with pytest.raises(SandboxError, match=r"4\.3\.1"):
            jars.validate_version_string(junk)
    jars.validate_version_string("4.3.1")


def test_fetch_rejects_junk_without_running_maven(monkeypatch: pytest.MonkeyPatch) -> None:
    """fetch('latest') fails on the version string alone: no subprocess is started."""
    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"subprocess started: {args}")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    with pytest.raises(SandboxError, match="not a release number"):
        jars.fetch("latest")


def test_fetch_unresolvable_version_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A well-formed but unreleased version (0.0.1) gives a clear error with Maven's output, and leaves nothing."""
    monkeypatch.setenv(jars.CACHE_ENV, str(tmp_path))
    with pytest.raises(SandboxError) as err:
        jars.fetch("0.0.1")
    msg = str(err.value)
    assert "Kafka 0.0.1" in msg and "4.2.2" in msg and "4.3.1" in msg
    assert "kafka_2.13:jar:0.0.1" in msg.split("Maven's output ends with:")[1]  # Maven's own words
    assert "\x1b[" not in msg and "-X switch" not in msg  # no colour codes, no generic advice
    assert not jars.is_fetched("0.0.1")
    assert not (tmp_path / "0.0.1").exists() and list((tmp_path / ".tmp").iterdir()) == []


def test_fetch_is_idempotent(kafka_libs: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Once fetched (and self-checked), fetch returns the cached libs dir without calling Maven."""
    for version, libs in kafka_libs.items():
        names = {p.name for p in libs.iterdir()}
        assert f"kafka_2.13-{version}.jar" in names and "slf4j-api-1.7.36.jar" in names
        assert any(n.startswith("log4j-slf4j-impl-") for n in names)
        assert not any(n.startswith("slf4j-api-2") for n in names)

    def no_maven(cmd: list[str], *args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        assert "mvn" not in Path(cmd[0]).name, "fetch ran Maven for an already fetched version"
        return subprocess.CompletedProcess(cmd, 0, "", 'openjdk version "17.0.1"')

    monkeypatch.setattr(subprocess, "run", no_maven)
    for version, libs in kafka_libs.items():
        assert jars.is_fetched(version)
        assert jars.fetch(version) == libs


# -- nodes -----------------------------------------------------------------------------------
def test_cluster_ids_follow_kafka_rules() -> None:
    """new_cluster_id gives 22-char base64url Uuids that never start with '-'."""
    ids = {new_cluster_id() for _ in range(2000)}
    assert len(ids) == 2000
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert all(len(i) == 22 and not i.startswith("-") and set(i) <= alphabet for i in ids)


@module_loop
async def test_cluster_serves_an_rf3_topic(cluster: list[KafkaNode]) -> None:
    """A 3-node 4.2.2 cluster accepts an RF-3 topic that takes acks=all writes and serves them to a group."""
    bootstrap = _bootstrap(cluster)

    def create_and_describe() -> list[dict[str, Any]]:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.create_topics([NewTopic("orders", num_partitions=3, replication_factor=3)])
            deadline = time.monotonic() + 30
            while True:
                desc: dict[str, Any] = admin.describe_topics(["orders"])[0]
                parts: list[dict[str, Any]] = desc.get("partitions") or []
                if len(parts) == 3 and all(len(p["isr_nodes"]) == 3 for p in parts):
                    return parts
                assert time.monotonic() < deadline, f"ISR never full: {desc}"
                time.sleep(0.2)
        finally:
            admin.close()

    partitions = await asyncio.to_thread(create_and_describe)
    assert all(sorted(p["replica_nodes"]) == [0, 1, 2] for p in partitions)
    values = await asyncio.to_thread(_produce_consume, bootstrap, "orders", 30, "g1")
    assert sorted(values) == sorted(f"g1-{i}".encode() for i in range(30))


@module_loop
async def test_node_restarts_on_newer_jars(cluster: list[KafkaNode], kafka_libs: dict[str, Path]) -> None:
    """SIGTERM stops a node cleanly; restarted on the same data dir with 4.3.1 jars it runs 4.3.1 code."""
    node = cluster[1]
    meta_before = (node.spec.data_dir / "meta.properties").read_text()
    t0 = time.monotonic()
    rc = await node.stop(timeout=60)
    print(f"SIGTERM to exit: {time.monotonic() - t0:.1f} s")
    assert rc == 128 + signal.SIGTERM  # the JVM's exit code after its shutdown hooks ran
    assert not node.is_alive() and node.pid is None and node.running_version is None

    t0 = time.monotonic()
    node.start(NEW)
    await node.wait_running(START_TIMEOUT)
    print(f"restart to RUNNING: {time.monotonic() - t0:.1f} s")
    assert node.running_version == NEW and node.pid is not None
    argv = _cmdline(node.pid)
    assert f"{kafka_libs[NEW]}/*".encode() in argv and b"kafka.Kafka" in argv
    assert not any(str(kafka_libs[OLD]).encode() in a for a in argv)
    assert f"Kafka version: {NEW}" in node.log_since_start()  # AppInfoParser reads it from the jar
    assert (node.spec.data_dir / "meta.properties").read_text() == meta_before  # not re-formatted
    values = await asyncio.to_thread(_produce_consume, _bootstrap(cluster), "orders", 10, "g2")
    assert len(values) == 10


@module_loop
async def test_sigkill_is_detected_and_a_bad_start_fails_fast(cluster: list[KafkaNode]) -> None:
    """kill() crashes a node (seen as not alive); a start whose JVM exits makes wait_running raise with the log."""
    node = cluster[2]
    pid = node.pid
    assert pid is not None
    node.kill()
    assert await node.wait_exit(10) == -signal.SIGKILL
    assert not node.is_alive() and not node.is_running() and node.pid is None
    assert not _alive(pid)

    node.start(OLD, {"process.roles": "bogus"})
    with pytest.raises(SandboxError, match=r"exited \(code 1\) before it was running") as err:
        await node.wait_running(START_TIMEOUT)
    assert "process.roles" in str(err.value)  # the log tail says why


@module_loop
async def test_stop_all_leaves_no_jvm(cluster: list[KafkaNode], nodes_root: Path) -> None:
    """stop_all ends every node of the cluster and no JVM of this module remains."""
    assert _jvms_under(nodes_root / "cluster")
    t0 = time.monotonic()
    codes = await stop_all(cluster, grace=5)  # node 2 is dead: node 0 has no quorum to leave with
    print(f"stop_all: {time.monotonic() - t0:.1f} s, exit codes {codes}")
    assert all(c is not None for c in codes)
    assert not any(n.is_alive() for n in cluster)
    assert _jvms_under(nodes_root) == []


_ORPHAN_SCRIPT = """
import asyncio, sys
from pathlib import Path
from typing import Any
from bot.sandbox.node import KafkaNode
from bot.sandbox.node_spec import NodeSpec, free_ports, new_cluster_id
root, version = Path(sys.argv[1]), sys.argv[2]
client, controller = free_ports(2)
node = KafkaNode(NodeSpec(0, new_cluster_id(), client, controller, f"0@127.0.0.1:{controller}",
                          root / "data", root / "work"))
node.format(version)
node.start(version)
print(node.pid, flush=True)
asyncio.run(asyncio.sleep(600))
"""


def test_jvm_dies_with_its_parent(kafka_libs: dict[str, Path], nodes_root: Path) -> None:
    """A node's JVM is SIGKILLed by the kernel when the process that started it dies (PR_SET_PDEATHSIG)."""
    root = nodes_root / "orphan"
    parent = subprocess.Popen([sys.executable, "-c", _ORPHAN_SCRIPT, str(root), OLD], cwd=REPO,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert parent.stdout is not None
        jvm = int(parent.stdout.readline())
        assert _alive(jvm)
    finally:
        parent.kill()  # SIGKILL: no atexit, no finally in the parent, only the kernel can help
        parent.wait()
    deadline = time.monotonic() + 10
    while _alive(jvm) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(jvm)
    assert _jvms_under(root) == []
