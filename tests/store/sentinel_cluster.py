"""A real Redis Sentinel deployment on loopback: one master, one replica and three Sentinels.

Every process is ``redis-server`` (``--sentinel`` makes it a Sentinel: Debian's ``redis-sentinel``
is the same binary), on free ports, with ``appendfsync always`` on the data nodes. Failover
timeouts are small (down after 1 s, failover timeout 3 s) so a test sees a failover in a few seconds.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from tests.fixtures.redis_server import HOST, RedisServer
from tests.fixtures.waiting import wait_until

MASTER_NAME = "mymaster"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000
QUORUM = 2


@dataclass(frozen=True)
class TlsFiles:
    """A CA and a certificate for 127.0.0.1 it signed (openssl), for servers that speak only TLS."""

    ca: Path
    cert: Path
    key: Path

    @classmethod
    def make(cls, directory: Path) -> TlsFiles:
        directory.mkdir(parents=True, exist_ok=True)
        files = cls(directory / "ca.crt", directory / "server.crt", directory / "server.key")
        ca_key, csr, ext = directory / "ca.key", directory / "server.csr", directory / "san.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1\n")
        for command in (
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=kafka-chatops test CA",
             "-keyout", str(ca_key), "-out", str(files.ca)],
            ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(files.key),
             "-out", str(csr)],
            ["x509", "-req", "-in", str(csr), "-CA", str(files.ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-days", "1", "-extfile", str(ext), "-out", str(files.cert)],
        ):
            subprocess.run(["openssl", *command], check=True, capture_output=True, timeout=60)
        return files

    def server_options(self) -> list[str]:
        """``port 0``: nothing in clear; replication and Sentinel's own links in TLS too."""
        return ["port 0", f"tls-cert-file {self.cert}", f"tls-key-file {self.key}", f"tls-ca-cert-file {self.ca}",
                "tls-auth-clients no", "tls-replication yes"]

    def client_options(self) -> dict[str, Any]:
        return {"ssl": True, "ssl_ca_certs": str(self.ca)}


class DataNode(RedisServer):
    """A Redis data node; ``replica_of`` makes it start as a replica of that port."""

    def __init__(self, directory: Path, *, replica_of: int | None = None, password: str | None = None,
                 tls: TlsFiles | None = None) -> None:
        super().__init__(directory)
        self.replica_of = replica_of
        self.password = password
        self.tls = tls

    def _command(self) -> list[str]:
        command = super()._command()
        if self.tls:
            port = command.index("--port")
            command[port:port + 2] = ["--tls-port", str(self.port)]
            for option in self.tls.server_options():
                name, value = option.split(" ", 1)
                command += [f"--{name}", value]
        if self.password:
            # masterauth too: after a failover the old master replicates from the new one.
            command += ["--requirepass", self.password, "--masterauth", self.password]
        if self.replica_of is not None:
            command += ["--replicaof", HOST, str(self.replica_of)]
        return command

    def _ready(self, probe: redis.Redis) -> bool:
        with self.client(timeout=1.0) as own:
            return super()._ready(own)

    def client(self, timeout: float = 5) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, password=self.password, socket_timeout=timeout,
                           socket_connect_timeout=timeout, decode_responses=True,
                           **(self.tls.client_options() if self.tls else {}))


class SentinelNode(RedisServer):
    """A Sentinel watching ``master_port`` under :data:`MASTER_NAME` (it rewrites its own config file)."""

    def __init__(self, directory: Path, *, master_port: int, password: str | None = None,
                 tls: TlsFiles | None = None) -> None:
        super().__init__(directory)
        self.master_port = master_port
        self.password = password
        self.tls = tls

    def _command(self) -> list[str]:
        conf = self.directory / "sentinel.conf"
        if not conf.exists():  # a restarted Sentinel keeps what it learnt
            lines = [
                f"tls-port {self.port}" if self.tls else f"port {self.port}", f"bind {HOST}",
                *(self.tls.server_options() if self.tls else []), f"dir {self.directory}", f"logfile {self.log_path}",
                f"sentinel monitor {MASTER_NAME} {HOST} {self.master_port} {QUORUM}",
                f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
                f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}",
                f"sentinel parallel-syncs {MASTER_NAME} 1",
            ]
            if self.password:
                lines.append(f"sentinel auth-pass {MASTER_NAME} {self.password}")
            conf.write_text("\n".join(lines) + "\n")
        return [self._binary, str(conf), "--sentinel"]

    def _ready(self, probe: redis.Redis) -> bool:
        with self.client(timeout=1.0) as own:
            return super()._ready(own)

    def client(self, timeout: float = 5) -> redis.Redis:
        return redis.Redis(host=HOST, port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout,
                           decode_responses=True, **(self.tls.client_options() if self.tls else {}))


class SentinelCluster:
    """The five processes, started in order and torn down together."""

    def __init__(self, directory: Path, *, password: str | None = None, tls: bool = False) -> None:
        self.password = password
        self.tls = TlsFiles.make(directory / "tls") if tls else None
        self.master = DataNode(directory / "node-a", password=password, tls=self.tls)
        self.master.start()
        self.replica = DataNode(directory / "node-b", replica_of=self.master.port, password=password, tls=self.tls)
        self.replica.start()
        self.sentinels = [SentinelNode(directory / f"sentinel-{i}", master_port=self.master.port, password=password,
                                       tls=self.tls) for i in range(3)]
        for sentinel in self.sentinels:
            sentinel.start()
        self.nodes = [self.master, self.replica]
        self.wait_until_settled()

    def url(self, *, db: int = 0, password: bool = True) -> str:
        auth = f":{self.password}@" if self.password and password else ""
        hosts = ",".join(f"{HOST}:{s.port}" for s in self.sentinels)
        if self.tls:
            return f"rediss+sentinel://{auth}{hosts}/{MASTER_NAME}/{db}?ssl_ca_certs={self.tls.ca}"
        return f"redis+sentinel://{auth}{hosts}/{MASTER_NAME}/{db}"

    def master_port(self) -> int:
        """The master's port as the first answering Sentinel tells it."""
        for sentinel in self.sentinels:
            if not sentinel.running:
                continue
            with sentinel.client() as client:
                address = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
            return int(address[1])
        raise AssertionError("no Sentinel is running")

    def node_on(self, port: int) -> DataNode:
        return next(node for node in self.nodes if node.port == port)

    def wait_until_settled(self, timeout: float = 30.0) -> None:
        """Every Sentinel knows the others and a replica of the master in sync: a failover can happen."""
        def settled() -> bool:
            master = self.master_port()
            for sentinel in self.sentinels:
                with sentinel.client() as client:
                    others = client.execute_command("SENTINEL", "SENTINELS", MASTER_NAME)
                    replicas = client.execute_command("SENTINEL", "REPLICAS", MASTER_NAME)
                    address = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
                if int(address[1]) != master or len(others) < len(self.sentinels) - 1:
                    return False
                if not any(_up_replica(r) for r in replicas):
                    return False
            with self.node_on(master).client() as client:
                info = client.info("replication")
            return int(info.get("connected_slaves", 0)) >= 1
        wait_until(settled, timeout=timeout, interval=0.2, message="the Sentinels to agree on a master with a replica")

    def failover(self) -> int:
        """``SENTINEL FAILOVER``: a coordinated switch; returns the old master's port."""
        old = self.master_port()
        with self.sentinels[0].client() as client:
            client.execute_command("SENTINEL", "FAILOVER", MASTER_NAME)
        self.wait_for_new_master(old)
        return old

    def wait_for_new_master(self, old: int, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        wait_until(lambda: self.master_port() != old, timeout=timeout, interval=0.1,
                   message=f"a Sentinel to promote a replica in place of port {old}")
        new = self.master_port()

        def promoted() -> bool:
            with self.node_on(new).client() as client:
                return client.info("replication").get("role") == "master"
        wait_until(promoted, timeout=max(1.0, deadline - time.monotonic()), interval=0.1,
                   message=f"port {new} to take the master role")
        return new

    def cleanup(self) -> None:
        for process in [*self.sentinels, *self.nodes]:
            process.cleanup()


def _up_replica(fields: object) -> bool:
    """One entry of ``SENTINEL REPLICAS`` (a flat list or a mapping, by client version) that is up."""
    if isinstance(fields, dict):
        state = fields
    else:
        items = list(fields)  # type: ignore[call-overload]
        state = dict(zip(items[::2], items[1::2], strict=False))
    flags = str(state.get("flags", ""))
    return "s_down" not in flags and "disconnected" not in flags and state.get("master-link-status") == "ok"
