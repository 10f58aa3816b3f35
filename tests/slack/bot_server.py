"""``python -m bot run`` as a real subprocess (HTTP or Socket Mode), pointed at the stubs.

The environment is built from scratch for each start (no SLACK_* leaking in from the developer's
shell), and the process's output goes to a log file the failure message points at.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.fixtures.redis_server import free_port
from tests.fixtures.waiting import wait_until

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# A kubeconfig that loads but points at nothing: for tests whose commands never reach Kubernetes.
UNREACHABLE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: none, user: {token: not-a-real-token}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


def run_command() -> list[str]:
    """``python -m bot run``; ``python -m bot.slack run`` (the same code) until bot/cli.py registers ``run``."""
    from bot.cli import build_parser

    subcommands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return [sys.executable, "-m", "bot" if "run" in subcommands.choices else "bot.slack", "run"]


def clusters_yaml(name: str, *, namespace: str = "kafka", approvers: list[str], approver_groups: list[str] = (),
                  four_eyes: bool = True) -> str:
    return (f"clusters:\n  {name}:\n    namespace: {namespace}\n    kafka: {name}\n"
            f"    approvers: {approvers!r}\n    approver_groups: {list(approver_groups)!r}\n"
            f"    four_eyes: {str(four_eyes).lower()}\n    approval_timeout: 30m\n")


def bot_env(**settings: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "REDIS_", "KAFKA_CHATOPS_CONFIG", "KUBECONFIG"))}
    return {**keep, "PYTHONUNBUFFERED": "1", **settings}


def readyz(port: int) -> tuple[int, str]:
    """``/readyz`` of a bot whose KAFKA_CHATOPS_HTTP_PORT is ``port``: (status, body); (0, why) while
    nothing listens there."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


class SlackBotProcess:
    def __init__(self, env: dict[str, str], log_path: Path, *, http: bool, port: int | None = None) -> None:
        self.env = env
        self.log_path = log_path
        self.http = http
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def events_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def start(self, *, wait: bool = True) -> SlackBotProcess:
        """Start the process; with ``wait``, return once it serves Slack (else at once: a test of the start)."""
        args = run_command()
        if self.http:
            args += ["--http", "--port", str(self.port), "--host", "127.0.0.1"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(args, env=self.env, cwd=PROJECT_ROOT, stdout=log, stderr=log,
                                            stdin=subprocess.DEVNULL)
        if not wait:
            return self
        # The bot says so once it listens (or is connected).
        ready = "serving Slack over HTTP on" if self.http else "connected to Slack in Socket Mode"
        wait_until(lambda: self._running() and ready in self.log(), timeout=60, interval=0.1,
                   message=f"the bot to serve Slack (log: {self.log_path})")
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _running(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the bot exited with {self.process.returncode}:\n{self.log()[-3000:]}")
        return True

    def post(self, body: str, headers: dict[str, str], timeout: float = 10.0) -> tuple[int, str, float]:
        """POST to /slack/events; returns (status, body, seconds taken)."""
        import time

        request = urllib.request.Request(self.events_url, data=body.encode(), headers=headers, method="POST")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read().decode(), time.monotonic() - started
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace"), time.monotonic() - started

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
