"""What the engine's end-to-end tests share: a clusters file, bot processes, pod-uid tracking and
audit reading against the real sandbox and a real redis-server."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from kubernetes import client

from bot import store
from runbooks.engine.models import AuditEntry
from tests.fixtures.bot_process import BotProcess
from tests.fixtures.sandbox import SandboxInfo

REQUESTER = "console:alice"
APPROVER = "console:bob"
OUTSIDER = "console:carol"


def write_clusters_file(path: Path, sandbox: SandboxInfo, *, approval_timeout: str = "30m") -> Path:
    path.write_text(
        "clusters:\n"
        f"  {sandbox.cluster}:\n"
        f"    namespace: {sandbox.namespace}\n"
        f"    kafka: {sandbox.cluster}\n"
        f"    approvers: [{json.dumps(REQUESTER)}, {json.dumps(APPROVER)}]\n"
        "    four_eyes: true\n"
        f"    approval_timeout: {approval_timeout}\n"
    )
    return path


def bot(user: str, *, redis_url: str, sandbox: SandboxInfo, config: Path, log_dir: Path) -> BotProcess:
    return BotProcess(
        user=user, redis_url=redis_url, kubeconfig=sandbox.kubeconfig, config_path=config, log_dir=log_dir,
        extra_env={"KAFKA_CHATOPS_LEASE_TTL": "3", "KAFKA_CHATOPS_POLL_INTERVAL": "0.3"},
    )


def run_id_of(reply: dict[str, Any]) -> str:
    assert reply["event"] == "reply", reply
    return str(reply["run_id"])


class PodUidTracker:
    """Polls the broker pods and remembers every uid each pod name ever had (a restart = a new uid)."""

    def __init__(self, sandbox: SandboxInfo) -> None:
        self._core = client.CoreV1Api(sandbox.api_client())
        self._namespace = sandbox.namespace
        self._selector = f"strimzi.io/cluster={sandbox.cluster},strimzi.io/broker-role=true"
        self.uids: dict[str, list[str]] = defaultdict(list)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> PodUidTracker:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()

    def _sample(self) -> None:
        for pod in self._core.list_namespaced_pod(self._namespace, label_selector=self._selector).items:
            seen = self.uids[pod.metadata.name]
            if not seen or seen[-1] != pod.metadata.uid:
                seen.append(pod.metadata.uid)

    def _poll(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self._sample()
            except Exception:  # the API emulator is busy; the next sample catches up
                time.sleep(0.2)

    def restarts(self) -> dict[str, int]:
        return {name: len(uids) - 1 for name, uids in sorted(self.uids.items())}


def read_audit(redis_url: str, run_id: str) -> list[AuditEntry]:
    async def fetch() -> list[dict[str, Any]]:
        redis = await store.connect(redis_url)
        try:
            return await store.RunStore(redis).audit_entries(run_id)
        finally:
            await redis.aclose()

    return [AuditEntry.model_validate(d) for d in asyncio.run(fetch())]


def read_run(redis_url: str, run_id: str) -> dict[str, Any]:
    async def fetch() -> dict[str, Any]:
        redis = await store.connect(redis_url)
        try:
            loaded = await store.RunStore(redis).load_run(run_id)
            assert loaded is not None, f"run {run_id} is not in Redis"
            return loaded[0]
        finally:
            await redis.aclose()

    return asyncio.run(fetch())


def assert_audit_is_a_chain(entries: list[AuditEntry]) -> None:
    """Every transition is recorded once: each entry starts where the previous one ended."""
    transitions = [e for e in entries if not e.action.endswith("_refused") and e.action != "requested"]
    assert transitions, "no transitions audited"
    for before, after in itertools.pairwise(transitions):
        assert after.from_state == before.to_state, f"audit gap between {before} and {after}"


def wait_for_run(redis_url: str, run_id: str, predicate: Any, *, timeout: float, what: str) -> dict[str, Any]:
    """Poll the stored run until ``predicate(run_document)`` holds (events may predate a restarted
    process, the record never does)."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            last = read_run(redis_url, run_id)
        except store.StoreUnavailable:
            time.sleep(0.3)
            continue
        if predicate(last):
            return last
        time.sleep(0.3)
    raise AssertionError(f"run {run_id}: no {what} within {timeout:.0f} s; last state {last.get('state')}, "
                         f"step {last.get('current')}, pause {last.get('pause_reason')}")


def waiting_on(step_id: str) -> Any:
    def check(run: dict[str, Any]) -> bool:
        approval = run.get("approval") or {}
        return run["state"] == "awaiting_approval" and approval.get("step_id") == step_id
    return check
