"""One Kafka node of the twin: one JVM, KRaft, combined broker+controller, static quorum.

Strimzi runs KRaft with a static voter set (``controller.quorum.voters``, kraft.version 0), so the
twin does too. A node owns a data dir (``log.dirs``, the "PVC") and a work dir (config, log4j2
config, the JVM's stdout+stderr log, ``kafka.logs.dir``, ``java.io.tmpdir``), both under paths the
caller chooses.

Startup of a combined node blocks until its broker is unfenced, which needs a quorum: start the
nodes of a new cluster together, then ``await wait_running`` on each.

Threading rule: spawn nodes (``start``) from the event loop thread, never from a thread pool. The
child gets PR_SET_PDEATHSIG, which Linux ties to the *thread* that forked it, not the process: a
node spawned from a pool thread would be SIGKILLed when that idle thread is retired.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path

from bot.sandbox import jars
from bot.sandbox.errors import SandboxError
from bot.sandbox.node_files import atomic_write, read_from, render_properties
from bot.sandbox.node_spec import NodeSpec

STARTED_MARKER = b"Kafka Server started"  # KafkaBroker.STARTED_MESSAGE, logged once unfenced
LOG_NAME = "kafka.log"
CONFIG_NAME = "server.properties"
# Measured on the 2-core box, CPU seconds summed over 3 JVMs until all RUNNING (3 runs each; wall
# time was too noisy with other sessions' brokers around): no flags ~16.5 s, SerialGC ~14.3 s,
# TieredStopAtLevel=1 ~9.2 s, both ~9.2 s, both + the AppCDS archive below ~5.5 s. C1 only: the C2
# compiler threads fight the brokers for 2 cores during startup; peak throughput is irrelevant for
# a twin that moves kilobytes. SerialGC: fewer GC threads, same RSS (~310-380 MB at 384m heap).
JVM_TEST_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:+ExitOnOutOfMemoryError",
                  "-Djava.awt.headless=true")
# Opt-in, for callers that roll nodes a lot (Strimzi accepts both keys in spec.kafka.config). With
# Kafka's defaults (9 s session, 2 s heartbeat) a node restarted right after a clean stop is often
# refused (DUPLICATE_BROKER_REGISTRATION) until its old session expires: restart-to-RUNNING measured
# 9.2-9.4 s in half the runs, ~2.5 s otherwise; with these 2.6-3.0 s, and SIGTERM-to-exit 1.2 s instead
# of 2.5 s. Not the default: crash fencing takes 9 s in real clusters (tests rely on it), and a 3 s
# session on a starved 2-core box risks spurious fencing.
FAST_RESTART_OVERRIDES = {"broker.session.timeout.ms": "3000", "broker.heartbeat.interval.ms": "500"}
_PR_SET_PDEATHSIG = 1


def _pdeathsig_preexec(parent_pid: int) -> Callable[[], None]:
    # Resolve libc/prctl in the parent: the child between fork and exec should do as little as
    # possible (no imports, no dlopen), since preexec_fn runs in a copy of a possibly threaded process.
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        # The parent may have died between fork and prctl; then no signal will ever come.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


class KafkaNode:
    def __init__(self, spec: NodeSpec) -> None:
        self.spec = spec
        self._proc: subprocess.Popen[bytes] | None = None
        self._version: str | None = None
        self._start_offset = 0
        self._scan_offset = 0
        self._started_seen = False
        self._overrides: dict[str, str] = {}
        self._cds_dump: jars.CdsDump | None = None  # this node's JVM writes the version's CDS archive

    # -- paths -------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.spec.work_dir / CONFIG_NAME

    @property
    def log_path(self) -> Path:
        return self.spec.work_dir / LOG_NAME

    @property
    def _log4j_path(self) -> Path:
        return self.spec.work_dir / "log4j2.yaml"

    # -- config and format -------------------------------------------------------------------
    def base_config(self) -> dict[str, str]:
        s = self.spec
        n = max(1, len([v for v in s.voters.split(",") if v.strip()]))  # every node is a broker too
        rf, isr = str(min(3, n)), str(min(2, n))
        return {
            "process.roles": "broker,controller",
            "node.id": str(s.node_id),
            "controller.quorum.voters": s.voters,
            "listeners": f"PLAINTEXT://{s.host}:{s.client_port},CONTROLLER://{s.host}:{s.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{s.host}:{s.client_port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(s.data_dir.resolve()),
            "num.partitions": "1",
            "default.replication.factor": rf,
            "min.insync.replicas": isr,
            "offsets.topic.replication.factor": rf,
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": isr,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": isr,
            "group.initial.rebalance.delay.ms": "0",
            # Default 50. Measured: the first consumer group of a cluster waits 0.6-1.3 s instead of
            # 1.8-3.1 s (creating 150 replicas), and a controlled shutdown has fewer leaders to move.
            # Nothing in the bot depends on the count; spec.kafka.config can still set it.
            "offsets.topic.num.partitions": "5",
            "auto.create.topics.enable": "false",
        }

    def rendered_config(self, overrides: Mapping[str, str] | None = None) -> dict[str, str]:
        """The properties this node runs with: the base config, then the caller's ``overrides``."""
        cfg = self.base_config()
        source = self._overrides if overrides is None else overrides
        cfg.update({str(k): str(v) for k, v in source.items()})  # the caller (spec.kafka.config) wins
        return cfg

    def write_config(self, overrides: Mapping[str, str] | None = None, *,
                     this_start_only: Mapping[str, str] | None = None) -> Path:
        """Write server.properties (+ the log4j2 config); ``None`` keeps the previous overrides.

        ``this_start_only`` is written too but not remembered (a fault injected into one start).
        """
        if overrides is not None:
            self._overrides = {str(k): str(v) for k, v in overrides.items()}
        cfg = self.rendered_config()
        cfg.update(this_start_only or {})
        self.spec.work_dir.mkdir(parents=True, exist_ok=True)
        self.spec.data_dir.mkdir(parents=True, exist_ok=True)
        header = "# written by kafka-chatops bot/sandbox/node.py; regenerated on every start\n"
        atomic_write(self.config_path, header + render_properties(cfg))
        log4j = resources.files("bot.sandbox").joinpath("log4j2.yaml").read_text(encoding="utf-8")
        atomic_write(self._log4j_path, log4j)
        return self.config_path

    def is_formatted(self) -> bool:
        return (self.spec.data_dir / "meta.properties").is_file()

    def _format_cmd(self, version: str, release_version: str | None) -> list[str] | None:
        if self.is_formatted():
            return None
        if not self.config_path.is_file():
            self.write_config()
        cmd = self._java_cmd(version, heap_mb=256, level="WARN")
        cmd += ["kafka.tools.StorageTool", "format", "-t", self.spec.cluster_id, "-c", str(self.config_path)]
        if release_version:
            cmd += ["--release-version", release_version]
        return cmd

    def format(self, version: str, *, release_version: str | None = None) -> None:
        """Run StorageTool format unless the data dir already has meta.properties (blocks ~2-4 s)."""
        cmd = self._format_cmd(version, release_version)
        if cmd is None:
            return
        proc = subprocess.run(cmd, capture_output=True, timeout=180, check=False)
        self._check_format(proc.returncode, proc.stdout + proc.stderr)

    async def format_async(self, version: str, *, release_version: str | None = None) -> None:
        """``format`` without blocking the loop: gather() it over the nodes of a new cluster."""
        cmd = self._format_cmd(version, release_version)
        if cmd is None:
            return
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise SandboxError(f"node {self.spec.node_id}: StorageTool format hung for 180 s") from None
        self._check_format(proc.returncode, out)

    def _check_format(self, rc: int | None, output: bytes) -> None:
        if rc != 0 or not self.is_formatted():
            text = output.decode("utf-8", "replace").strip()
            raise SandboxError(f"node {self.spec.node_id}: StorageTool format failed (exit {rc}):\n{text[-2000:]}")

    # -- process lifecycle -------------------------------------------------------------------
    def _java_cmd(self, version: str, *, heap_mb: int, level: str, may_dump_cds: bool = False) -> list[str]:
        if not jars.is_fetched(version):
            raise SandboxError(f"Kafka {version} jars are not fetched; run `make fetch` or "
                               f"`python -m bot sandbox fetch --kafka-version {version}` first.")
        tmp = self.spec.work_dir / "tmp"
        logs = self.spec.work_dir / "logs"
        tmp.mkdir(parents=True, exist_ok=True)  # zstd/snappy unpack native libs here: must be exec-able
        logs.mkdir(parents=True, exist_ok=True)
        return [
            jars.require_java(), f"-Xms{heap_mb}m", f"-Xmx{heap_mb}m", *JVM_TEST_FLAGS,
            f"-Djava.io.tmpdir={tmp}", f"-Dkafka.logs.dir={logs}",
            f"-Dlog4j2.configurationFile={self._log4j_path}", f"-Dkafka.chatops.log.level={level}",
            # The node id in the command line lets a human (or `pgrep -f`) tell the JVMs apart.
            f"-Dkafka.chatops.node={self.spec.node_id}",
            *self._cds_flags(version, may_dump=may_dump_cds),
            "-cp", f"{jars.libs_dir(version)}/*",
        ]

    def _cds_flags(self, version: str, *, may_dump: bool) -> list[str]:
        tag = f"{os.getpid()}-{self.spec.node_id}" if may_dump and self._cds_dump is None else None
        flags, dump = jars.cds_flags(version, dump_tag=tag)
        if dump is not None:
            self._cds_dump = dump
        return flags

    def _finish_cds_dump(self, returncode: int) -> None:
        dump, self._cds_dump = self._cds_dump, None
        if dump is not None:
            dump.finish(returncode)

    def _poll(self) -> int | None:
        """Exit code if the JVM has exited (reaping it and finishing a CDS dump), else None."""
        if self._proc is None:
            return None
        rc = self._proc.poll()
        if rc is not None:
            self._finish_cds_dump(rc)
        return rc

    def start(self, version: str, overrides: Mapping[str, str] | None = None, *,
              this_start_only: Mapping[str, str] | None = None) -> None:
        """Spawn the JVM and return at once; ``await wait_running()`` to know it serves clients."""
        if self.is_alive():
            raise SandboxError(f"node {self.spec.node_id} is already running (pid {self.pid})")
        if not self.is_formatted():
            raise SandboxError(f"node {self.spec.node_id}: {self.spec.data_dir} is not formatted; call format() first")
        self.write_config(overrides, this_start_only=this_start_only)
        cmd = self._java_cmd(version, heap_mb=self.spec.heap_mb, level="INFO", may_dump_cds=True)
        cmd += ["kafka.Kafka", str(self.config_path)]
        with self.log_path.open("ab") as log:
            self._start_offset = log.tell()
            log.write(f"\n===== kafka-chatops: starting node {self.spec.node_id} on Kafka {version} at "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')} =====\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    cwd=self.spec.work_dir, close_fds=True,
                    preexec_fn=_pdeathsig_preexec(os.getpid()),
                    # Own process group: a Ctrl-C on the terminal (SIGINT to the foreground group)
                    # must not hit the brokers behind the test's back; they die with us via PDEATHSIG.
                    process_group=0,
                )
            except BaseException:
                self._finish_cds_dump(-1)  # release the dump claim taken by _java_cmd
                raise
        self._version = version
        self._scan_offset = self._start_offset
        self._started_seen = False

    @property
    def pid(self) -> int | None:
        """PID of the JVM while it is alive, else None."""
        return self._proc.pid if self.is_alive() and self._proc else None

    @property
    def exit_code(self) -> int | None:
        """How the latest JVM ended, as Kubernetes shows it (128 + signal when killed), None while alive."""
        if self._proc is None or self.is_alive():
            return None
        rc = self._proc.returncode
        return 128 - rc if rc < 0 else rc

    @property
    def running_version(self) -> str | None:
        """Kafka version of the live JVM (the one given to the latest start), else None."""
        return self._version if self.is_alive() else None

    def is_alive(self) -> bool:
        return self._proc is not None and self._poll() is None

    def is_running(self) -> bool:
        """Alive and "Kafka Server started" logged since the latest start."""
        if not self.is_alive():
            return False
        if not self._started_seen:
            self._started_seen = self._scan_for_marker()
        return self._started_seen

    def _scan_for_marker(self) -> bool:
        # Incremental: read only what was appended since the last poll. Keep the last len(marker)
        # bytes in view, so a marker split across two reads is still found.
        try:
            with self.log_path.open("rb") as f:
                f.seek(max(self._start_offset, self._scan_offset - len(STARTED_MARKER)))
                chunk = f.read()
        except FileNotFoundError:
            return False
        self._scan_offset = max(self._start_offset, self._scan_offset - len(STARTED_MARKER)) + len(chunk)
        return STARTED_MARKER in chunk

    # ASYNC109: the deadline is part of the interface because the error on expiry carries the log tail.
    async def wait_running(self, timeout: float) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while not self.is_running():
            if not self.is_alive():
                rc = self._proc.returncode if self._proc else None
                raise SandboxError(f"node {self.spec.node_id} exited (code {rc}) before it was running; "
                                   f"log tail:\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise SandboxError(f"node {self.spec.node_id} not running after {timeout:.0f} s "
                                   f"(a lone node waits for its quorum); log tail:\n{self.log_tail()}")
            await asyncio.sleep(0.2)

    def _signal(self, sig: signal.Signals) -> None:
        if self._proc is not None and self._poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(sig)

    def terminate(self) -> None:
        """SIGTERM: Kafka's shutdown hook does a controlled shutdown (leaders move away first)."""
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: a crash. Non-blocking; ``await wait_exit()`` to see it gone."""
        self._signal(signal.SIGKILL)

    async def wait_exit(self, timeout: float) -> int | None:  # noqa: ASYNC109
        """Exit code once the JVM has exited (None if it is still alive after ``timeout``)."""
        if self._proc is None:
            return None
        deadline = time.monotonic() + timeout
        while self._poll() is None:
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.1)
        return self._proc.returncode

    async def stop(self, timeout: float = 60.0) -> int | None:  # noqa: ASYNC109
        """SIGTERM, wait up to ``timeout``, then SIGKILL. Exit code (143 = clean SIGTERM exit)."""
        if self._proc is None:
            return None
        self.terminate()
        rc = await self.wait_exit(timeout)
        if rc is None:
            self.kill()
            rc = await self.wait_exit(30)
        return rc

    def wipe_data(self) -> None:
        """Empty the data dir, as if its PVC were deleted. The node must be stopped."""
        if self.is_alive():
            raise SandboxError(f"node {self.spec.node_id} is running (pid {self.pid}); stop it before wiping data")
        shutil.rmtree(self.spec.data_dir, ignore_errors=True)
        self.spec.data_dir.mkdir(parents=True)

    @property
    def log_start_offset(self) -> int:
        """Where the output of the latest start begins in ``log_path`` (what ``kubectl logs`` shows)."""
        return self._start_offset

    def log_since_start(self, max_bytes: int = 4_000_000) -> str:
        """What the JVM of the latest start has logged so far (at most its last ``max_bytes``)."""
        return self._read_log(self._start_offset, max_bytes)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self._read_log(0, 512 * max(lines, 1)).splitlines()[-lines:])

    def _read_log(self, start: int, max_bytes: int) -> str:
        return read_from(self.log_path, start, max_bytes)


async def stop_all(nodes: Sequence[KafkaNode], grace: float = 15.0) -> list[int | None]:
    """Stop a whole cluster quickly; exit codes in ``nodes`` order.

    SIGTERM to every node at once, SIGKILL whoever is left after ``grace``. A plain "stop each"
    would stall: a node's controlled shutdown needs a controller quorum, so the last node(s) to
    leave can wait out Kafka's 5-minute shutdown deadline (Strimzi's 30 s pod grace period ends
    it the same way). A node that is dumping the CDS archive goes first and alone, since the
    archive is only written by a clean exit.
    """
    first = [n for n in nodes if n._cds_dump is not None and n.is_alive()]
    for n in first:
        await n.stop(timeout=grace)
    for n in nodes:
        n.terminate()
    codes = await asyncio.gather(*(n.wait_exit(grace) for n in nodes))
    for n, rc in zip(nodes, codes, strict=True):
        if rc is None and n.is_alive():
            n.kill()
    return list(await asyncio.gather(*(n.wait_exit(30) for n in nodes)))
