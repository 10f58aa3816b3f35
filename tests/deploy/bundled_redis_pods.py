"""The bundled Redis's start scripts (deploy/helm/kafka-chatops/files/redis/) run as local "pods".

A pod is its two containers' scripts, run with ``sh`` as subprocesses, with the environment the
StatefulSet gives them except that every pod's host name is ``localhost`` and each has its own free
ports (in Kubernetes: its FQDN, and ports 6379 and 26379). A name, not an address, as in Kubernetes:
the Sentinels resolve and announce host names (``resolve-hostnames``, ``announce-hostnames``).
Each script execs ``redis-server``, so the subprocess is the server itself: killing it is killing
the container's process.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from redis import Redis

from tests.deploy.helm_chart import CHART
from tests.fixtures.redis_server import HOST, free_port

SCRIPTS = CHART / "files" / "redis"
MASTER_NAME = "mymaster"
PASSWORD = "bundled-test-password"
# Short, for a failover within seconds; not so short that a loaded machine's slow reply looks like a death.
DOWN_AFTER_MS = 2000
FAILOVER_TIMEOUT_MS = 5000
POD_HOST = "localhost"


class Pod:
    """One pod: a Redis script and a Sentinel script, with their own data and config directories."""

    def __init__(self, directory: Path, ordinal: int) -> None:
        self.directory = directory
        self.ordinal = ordinal
        self.redis_port = free_port()
        self.sentinel_port = free_port()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def env(self, pods: list[Pod], container: str) -> dict[str, str]:
        conf = self.directory / f"conf-{container}"
        data = self.directory / "data"
        for path in (conf, data):
            path.mkdir(parents=True, exist_ok=True)
        password_file = self.directory / "password"
        password_file.write_text(PASSWORD + "\n")  # as a Secret mounts it, with a newline
        return {
            "PATH": os.environ["PATH"], "POD_HOST": POD_HOST, "BIND": HOST,
            "REDIS_PORT": str(self.redis_port), "SENTINEL_PORT": str(self.sentinel_port),
            "SENTINEL_ADDRESSES": " ".join(f"{POD_HOST}:{p.sentinel_port}" for p in pods),
            "FIRST_POD_ADDRESS": f"{POD_HOST}:{pods[0].redis_port}", "MASTER_NAME": MASTER_NAME,
            "REDIS_PASSWORD_FILE": str(password_file), "CONF_DIR": str(conf), "DATA_DIR": str(data),
            "QUORUM": "2", "DOWN_AFTER_MILLISECONDS": str(DOWN_AFTER_MS), "FAILOVER_TIMEOUT": str(FAILOVER_TIMEOUT_MS),
        }

    def start(self, container: str, pods: list[Pod]) -> None:
        """Run ``redis.sh`` or ``sentinel.sh`` as the container would (a restart runs it again)."""
        env = self.env(pods, container)
        log = (self.directory / f"{container}.log").open("ab")
        self.processes[container] = subprocess.Popen(
            ["sh", str(SCRIPTS / f"{container}.sh")], env=env, stdout=log, stderr=log,
            cwd=self.directory)

    def kill(self, container: str) -> None:
        process = self.processes.pop(container)
        process.kill()
        process.wait(timeout=10)

    def redis(self) -> Redis:
        return Redis(host=HOST, port=self.redis_port, password=PASSWORD, socket_timeout=2,
                           socket_connect_timeout=2, decode_responses=True)

    def sentinel(self) -> Redis:
        return Redis(host=HOST, port=self.sentinel_port, password=PASSWORD, socket_timeout=2,
                           socket_connect_timeout=2, decode_responses=True)

    def logs(self) -> str:
        return "\n".join(f"--- pod {self.ordinal} {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.directory.glob("*.log")))

    def cleanup(self) -> None:
        for container in list(self.processes):
            self.kill(container)
