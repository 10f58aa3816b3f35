"""Where a sandbox lives on disk, and how the CLI finds out whether its daemon runs.

One directory per sandbox, ``$KAFKA_CHATOPS_SANDBOX_HOME/<name>`` (default
``~/.cache/kafka-chatops/sandboxes/<name>``), holding:

- ``state.json``: what the daemon tells the world (phase, API URL, kubeconfig, bootstrap servers,
  pids, ports), rewritten atomically as things change;
- ``daemon.lock``: held (flock) by the daemon for its whole life. Liveness is "is the lock held",
  not "does a process with that pid exist": pids get reused, a lock dies with its holder;
- ``daemon.log``: the daemon's output; ``kubeconfig``; ``clusters/``: the brokers' data and logs.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.sandbox.errors import SandboxError

HOME_ENV = "KAFKA_CHATOPS_SANDBOX_HOME"
STATE_FILE = "state.json"
LOCK_FILE = "daemon.lock"
LOG_FILE = "daemon.log"
KUBECONFIG_FILE = "kubeconfig"
# The name becomes the Kafka cluster name, and pods are "<cluster>-<pool>-<id>" (a DNS label, 63 max).
_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,38}[a-z0-9])?$")

PHASE_STARTING = "starting"
PHASE_READY = "ready"
PHASE_FAILED = "failed"
PHASE_STOPPING = "stopping"
PHASE_STOPPED = "stopped"


def sandboxes_root() -> Path:
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "kafka-chatops" / "sandboxes"


def validate_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise SandboxError(
            f"sandbox name {name!r} is not valid: use 1-40 lowercase letters, digits and '-', starting with a "
            "letter (it becomes the Kafka cluster name and part of every pod name)")


def sandbox_dir(name: str) -> Path:
    validate_name(name)
    return sandboxes_root() / name


@dataclass
class SandboxState:
    name: str
    namespace: str
    cluster: str
    state_dir: str
    kafka_version: str
    brokers: int
    broker_only: int = 0  # replicas of the broker-only KafkaNodePool ``brokers`` (``up --broker-only``)
    racks: int = 0  # zones the brokers are spread over (``up --racks``); 0: no rack awareness
    cruise_control: bool = False  # the Kafka has spec.cruiseControl (``up --cruise-control``)
    # listener name -> its bootstrap servers, from the Kafka status (``up --listeners``)
    listeners: dict[str, str] = field(default_factory=dict)
    phase: str = PHASE_STARTING
    daemon_pid: int | None = None
    api_url: str | None = None
    kubeconfig: str | None = None
    bootstrap_servers: str | None = None
    error: str | None = None
    started_at: float | None = None
    ready_at: float | None = None
    broker_pids: dict[str, int] = field(default_factory=dict)  # node id (as a JSON key) -> pid
    ports: dict[str, Any] = field(default_factory=dict)
    faults: list[dict[str, str]] = field(default_factory=list)  # injected with `sandbox fault`

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SandboxState:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def directory(self) -> Path:
        return Path(self.state_dir)


def read_state(directory: Path) -> SandboxState | None:
    try:
        return SandboxState.from_json(json.loads((directory / STATE_FILE).read_text(encoding="utf-8")))
    except (FileNotFoundError, json.JSONDecodeError, TypeError):
        return None


def write_state(state: SandboxState) -> None:
    """Atomic (rename), so a reader never sees half a file."""
    directory = state.directory
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".state.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(state.to_json(), f, indent=2, sort_keys=True)
        os.replace(tmp, directory / STATE_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def daemon_alive(directory: Path) -> bool:
    """True while some process holds the sandbox's daemon lock."""
    path = directory / LOCK_FILE
    if not path.exists():
        return False
    with path.open("a+") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                return True
            raise
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return False


class DaemonLock:
    """The exclusive lock a daemon holds while it runs (released by the kernel if it dies)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._file = (directory / LOCK_FILE).open("a+")

    def acquire(self) -> bool:
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        return True

    def release(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()


def all_sandboxes() -> list[SandboxState]:
    root = sandboxes_root()
    if not root.is_dir():
        return []
    found = []
    for d in sorted(root.iterdir()):
        state = read_state(d) if d.is_dir() else None
        if state is not None:
            found.append(state)
    return found


def running_sandboxes() -> list[SandboxState]:
    return [s for s in all_sandboxes() if daemon_alive(s.directory)]


def describe_running() -> str:
    running = running_sandboxes()
    if not running:
        return "no sandbox is running (start one with: kafka-chatops sandbox up)"
    return "running sandboxes: " + ", ".join(s.name for s in running)
