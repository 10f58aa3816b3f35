"""One Kafka Connect distributed worker: the process behind a KafkaMirrorMaker2 (one JVM, REST on a free port).

Strimzi runs the Mirror connectors in a Kafka Connect cluster whose group and internal topics live
on the target cluster, and drives them through the Connect REST API; so does the twin, with one
worker (``org.apache.kafka.connect.cli.ConnectDistributed``) on the ``mirror-libs`` classpath (see
``jars.fetch_mirror``). Converters are byte arrays, as in Strimzi's MirrorMaker 2 Connect config, so
records are copied untouched. The worker also gets the ``file`` config provider: connector configs
may name values in a file that is read again at every task start (the sandbox's mirror fault).

Spawned from the event loop thread for the reason ``node.py`` gives (PR_SET_PDEATHSIG is per thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bot.sandbox import jars
from bot.sandbox.errors import SandboxError
from bot.sandbox.node import JVM_TEST_FLAGS, _pdeathsig_preexec
from bot.sandbox.node_files import atomic_write, read_from, render_properties
from bot.sandbox.node_spec import free_ports

BYTE_ARRAY_CONVERTER = "org.apache.kafka.connect.converters.ByteArrayConverter"
LOG_NAME = "connect.log"
# Log4j2 in its properties format: the brokers' log4j2.yaml needs jackson-dataformat-yaml, which the
# brokers get from kafka_2.13 but the Connect classpath lacks (Log4j2 then reads the YAML as XML and
# logs nothing). Same layout as the brokers': everything on stderr, which connect.log collects.
LOG4J2_PROPERTIES = """\
status = warn
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stderr.ref = STDERR
# Every client, worker and connector config dumped in full at INFO: hundreds of lines each.
logger.configs.name = org.apache.kafka.clients
logger.configs.level = WARN
logger.connectconfigs.name = org.apache.kafka.connect.runtime.ConnectorConfig
logger.connectconfigs.level = WARN
logger.taskconfigs.name = org.apache.kafka.connect.runtime.TaskConfig
logger.taskconfigs.level = WARN
logger.workerconfig.name = org.apache.kafka.connect.runtime.distributed.DistributedConfig
logger.workerconfig.level = WARN
"""
_REST_TIMEOUT_S = 15.0


class ConnectRestError(Exception):
    """The Connect REST API refused a request (its status and message) or did not answer (status 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Connect REST {status}: {message}" if status else message)
        self.status = status


@dataclass(frozen=True)
class WorkerSettings:
    """What makes a worker: a change to any of these needs a new worker process."""

    kafka_version: str
    bootstrap_servers: str
    group_id: str
    config_topic: str
    offset_topic: str
    status_topic: str
    config: tuple[tuple[str, str], ...] = ()  # spec.target.config (worker overrides)


class ConnectWorker:
    def __init__(self, settings: WorkerSettings, work_dir: Path, *, heap_mb: int = 256) -> None:
        self.settings = settings
        self.work_dir = work_dir
        self.heap_mb = heap_mb
        self.port = free_ports(1)[0]
        self._proc: subprocess.Popen[bytes] | None = None
        self._start_offset = 0
        self.started_at = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.work_dir / LOG_NAME

    @property
    def log_start_offset(self) -> int:
        return self._start_offset

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.is_alive() and self._proc else None

    def is_alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def worker_config(self) -> dict[str, str]:
        s = self.settings
        cfg = {
            "bootstrap.servers": s.bootstrap_servers,
            "group.id": s.group_id,
            "config.storage.topic": s.config_topic,
            "offset.storage.topic": s.offset_topic,
            "status.storage.topic": s.status_topic,
            # -1: the target brokers' default.replication.factor (a 1-node sandbox has 1).
            "config.storage.replication.factor": "-1",
            "offset.storage.replication.factor": "-1",
            "status.storage.replication.factor": "-1",
            "key.converter": BYTE_ARRAY_CONVERTER,
            "value.converter": BYTE_ARRAY_CONVERTER,
            "header.converter": BYTE_ARRAY_CONVERTER,
            "listeners": f"http://127.0.0.1:{self.port}",
            "rest.advertised.host.name": "127.0.0.1",
            "rest.advertised.port": str(self.port),
            "config.providers": "file",
            "config.providers.file.class": "org.apache.kafka.common.config.provider.FileConfigProvider",
            # Tests want source offsets committed and tasks stopped in seconds, not Connect's 10 s/5 s.
            "offset.flush.interval.ms": "2000",
            "task.shutdown.graceful.timeout.ms": "2000",
        }
        cfg.update(dict(s.config))
        return cfg

    def start(self) -> None:
        if self.is_alive():
            raise SandboxError(f"the Connect worker in {self.work_dir} is already running (pid {self.pid})")
        libs = jars.mirror_libs_dir(self.settings.kafka_version)
        if not jars.is_mirror_fetched(self.settings.kafka_version):
            raise SandboxError(f"the MirrorMaker 2 jars are not fetched; run `python -m bot sandbox fetch "
                               f"--mirror-maker --kafka-version {self.settings.kafka_version}`")
        for sub in ("tmp", "logs"):
            (self.work_dir / sub).mkdir(parents=True, exist_ok=True)
        config_path = self.work_dir / "connect-distributed.properties"
        atomic_write(config_path, "# written by kafka-chatops bot/sandbox/operator/connect_worker.py\n"
                     + render_properties(self.worker_config()))
        log4j = self.work_dir / "log4j2.properties"
        atomic_write(log4j, LOG4J2_PROPERTIES)
        cmd = [jars.require_java(), f"-Xms{self.heap_mb}m", f"-Xmx{self.heap_mb}m", *JVM_TEST_FLAGS,
               f"-Djava.io.tmpdir={self.work_dir / 'tmp'}", f"-Dkafka.logs.dir={self.work_dir / 'logs'}",
               f"-Dlog4j2.configurationFile={log4j}", "-Dkafka.chatops.log.level=INFO",
               "-cp", f"{libs}/*", "org.apache.kafka.connect.cli.ConnectDistributed", str(config_path)]
        with self.log_path.open("ab") as log:
            self._start_offset = log.tell()
            self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          cwd=self.work_dir, close_fds=True,
                                          preexec_fn=_pdeathsig_preexec(os.getpid()), process_group=0)
        self.started_at = time.time()

    async def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM (Connect stops its connectors and leaves the group), SIGKILL after ``grace_s``."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(proc.wait), timeout=grace_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.to_thread(proc.wait)

    def log_tail(self, lines: int = 20) -> str:
        text = read_from(self.log_path, self._start_offset, 200_000)
        return "\n".join(text.splitlines()[-lines:])

    # -- REST --------------------------------------------------------------------------------
    async def rest(self, method: str, path: str, body: Any = None) -> Any:
        """One Connect REST call; the parsed JSON answer (None when empty), or ConnectRestError."""
        timeout = aiohttp.ClientTimeout(total=_REST_TIMEOUT_S)
        try:
            # Jersey answers a PUT/POST without a JSON content type with 415, even when it takes no body.
            async with aiohttp.ClientSession(timeout=timeout) as session, session.request(
                    method, self.url + path, data=json.dumps(body) if body is not None else None,
                    headers={"Content-Type": "application/json", "Accept": "application/json"}) as response:
                text = await response.text()
                try:
                    data = json.loads(text) if text.strip() else None
                except ValueError:  # Jetty's own error pages (e.g. while the REST resources are deployed)
                    data = None
                if response.status >= 400:
                    message = data.get("message") if isinstance(data, dict) else text
                    raise ConnectRestError(response.status, str(message or response.reason))
                return data
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise ConnectRestError(0, f"Connect REST API at {self.url} does not answer: {e!r}") from e

    async def serving(self) -> bool:
        """The REST API answers ``GET /`` (the worker's herder may still be joining its group)."""
        try:
            await self.rest("GET", "/")
            return True
        except ConnectRestError:
            return False


def connector_path(name: str, *rest: str) -> str:
    """``/connectors/<name>/...`` with the name escaped (Mirror connector names contain ``->``)."""
    return "/".join(["/connectors", urllib.parse.quote(name, safe=""), *rest])
