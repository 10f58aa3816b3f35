"""In-memory fakes of the alert ports (AlertStore, AlertChannel, LagReports) and of the LagReader,
for the use-case tests; the real adapters are tested against a real Redis and the sandbox."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from handlers.alerting.alert_text import AlertView
from handlers.alerting.lag_document import LagDocument
from handlers.alerting.lag_models import LagReport
from handlers.clusters import ManagedCluster
from handlers.ports import ClusterRef, ConsumerGroup, GroupCommits, VersionConflict
from runbooks.alerting.lifecycle import AlertRules, AlertState, MessageRef
from runbooks.engine.models import ApprovalPolicy
from tests.fakes.time import FakeClock

__all__ = ["FakeClock", "FakeLagReader", "MemoryAlertStore", "MemoryLagReports", "RecordingChannel", "cluster"]


def cluster(name: str = "prod", rules: AlertRules | None = None) -> ManagedCluster:
    return ManagedCluster(ref=ClusterRef(name=name, namespace="kafka", kafka=name), policy=ApprovalPolicy(),
                          channel="C1", alerts=rules or AlertRules())


class MemoryAlertStore:
    """The AlertStore port over dicts, with the same compare-and-set and claim semantics."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[str, int]] = {}
        self.claims: dict[tuple[str, int], str] = {}

    async def load_cluster(self, cluster: str) -> list[tuple[AlertState, int]]:
        found = [(AlertState.model_validate_json(doc), version) for doc, version in self.docs.values()]
        return [(s, v) for s, v in found if s.key.cluster == cluster]

    async def load(self, alert_id: str) -> tuple[AlertState, int] | None:
        if alert_id not in self.docs:
            return None
        doc, version = self.docs[alert_id]
        return AlertState.model_validate_json(doc), version

    async def save(self, state: AlertState, *, expected_version: int) -> int:
        current = self.docs.get(state.id, ("", 0))[1]
        if current != expected_version:
            raise VersionConflict(f"{state.id}: {expected_version} != {current}")
        self.docs[state.id] = (state.model_dump_json(), current + 1)
        return current + 1

    async def delete(self, alert_id: str, *, expected_version: int) -> bool:
        if self.docs.get(alert_id, ("", 0))[1] != expected_version:
            return False
        del self.docs[alert_id]
        return True

    async def claim_post(self, alert_id: str, occurrence: int, owner: str, ttl_s: float) -> bool:
        if (alert_id, occurrence) in self.claims:  # SET NX: only the first claimant wins
            return False
        self.claims[(alert_id, occurrence)] = owner
        return True

    async def release_post(self, alert_id: str, occurrence: int, owner: str) -> None:
        if self.claims.get((alert_id, occurrence)) == owner:
            del self.claims[(alert_id, occurrence)]


@dataclass
class RecordingChannel:
    """Keeps every post and edit, like the Slack stub records chat.postMessage and chat.update."""

    posts: list[AlertView] = field(default_factory=list)
    updates: list[tuple[str, AlertView]] = field(default_factory=list)
    fail: bool = False

    async def post(self, cluster: ManagedCluster, view: AlertView) -> MessageRef:
        if self.fail:
            raise ConnectionError("channel down")
        self.posts.append(view)
        return MessageRef(channel=cluster.channel, id=f"m{len(self.posts)}")

    async def update(self, cluster: ManagedCluster, ref: MessageRef, view: AlertView) -> None:
        self.updates.append((ref.id, view))


class MemoryLagReports:
    def __init__(self) -> None:
        self.reports: dict[str, str] = {}

    async def save(self, report: LagReport | LagDocument, *, ttl_s: float) -> None:
        self.reports[report.cluster] = report.model_dump_json()

    async def latest(self, cluster: str) -> LagReport | None:
        doc = self.reports.get(cluster)
        return None if doc is None else LagReport.model_validate_json(doc)

    async def holds_figures(self, cluster: str) -> bool:
        doc = self.reports.get(cluster)
        return doc is not None and json.loads(doc).get("error") is None


class FakeLagReader:
    """A cluster in dicts: groups, their commits (or an error per group), log offsets, record times."""

    def __init__(self) -> None:
        self.groups: list[ConsumerGroup] = []
        self.commits: dict[str, dict[str, dict[int, int]] | str] = {}
        self.ends: dict[tuple[str, int], tuple[int, int]] = {}
        self.timestamps: dict[tuple[str, int, int], int] = {}
        self.calls: list[str] = []
        self.fetched: list[tuple[str, int, int]] = []
        # As the streaming reader does: a group whose commits are as last handed out gets the same
        # object back (the evaluation then skips it). Off: a new object every poll, as the admin API.
        self.same_when_unchanged = False
        self._handed: dict[str, GroupCommits] = {}

    async def consumer_groups(self, cluster: ClusterRef, bootstrap_servers: str) -> list[ConsumerGroup]:
        self.calls.append("groups")
        return list(self.groups)

    async def committed_offsets(self, cluster: ClusterRef, bootstrap_servers: str,
                                groups: Sequence[str]) -> list[GroupCommits]:
        self.calls.append("committed")
        results = []
        for g in groups:
            found = self.commits.get(g, {})
            made = (GroupCommits(group=g, error=found) if isinstance(found, str)
                    else GroupCommits(group=g, offsets=json.loads(json.dumps(found), object_hook=_int_keys)))
            before = self._handed.get(g)
            if self.same_when_unchanged and before is not None and before == made:
                made = before
            self._handed[g] = made
            results.append(made)
        return results

    async def log_offsets(self, cluster: ClusterRef, bootstrap_servers: str,
                          partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], tuple[int, int]]:
        self.calls.append("log_offsets")
        return {tp: self.ends[tp] for tp in partitions if tp in self.ends}

    async def record_timestamps(self, cluster: ClusterRef, bootstrap_servers: str,
                                positions: Sequence[tuple[str, int, int]]) -> dict[tuple[str, int, int], int]:
        self.calls.append("timestamps")
        self.fetched += list(positions)
        return {p: self.timestamps[p] for p in positions if p in self.timestamps}


def _int_keys(obj: dict[str, object]) -> dict[object, object]:
    return {int(k) if k.isdigit() else k: v for k, v in obj.items()}
