"""The ports of the alert use cases: where alert state lives (shared by every replica), where alert
messages go (the cluster's channel: Slack or the console), and where the latest lag poll is kept."""

from __future__ import annotations

from typing import Protocol

from handlers.alerting.alert_text import AlertView
from handlers.alerting.lag_document import LagDocument
from handlers.alerting.lag_models import LagReport
from handlers.clusters import ManagedCluster
from runbooks.alerting.lifecycle import AlertState, MessageRef


class AlertStore(Protocol):
    """Alert states with a version each, written with compare-and-set (``VersionConflict``)."""

    async def load_cluster(self, cluster: str) -> list[tuple[AlertState, int]]: ...

    async def load(self, alert_id: str) -> tuple[AlertState, int] | None: ...

    async def save(self, state: AlertState, *, expected_version: int) -> int:
        """Write ``state`` if its stored version is still ``expected_version`` (0: not stored yet)."""
        ...

    async def delete(self, alert_id: str, *, expected_version: int) -> bool: ...

    async def claim_post(self, alert_id: str, occurrence: int, owner: str, ttl_s: float) -> bool:
        """Take the right to post occurrence ``occurrence`` of an alert (SET NX): only one replica
        ever posts a given occurrence, even if two decided to at the same instant."""
        ...

    async def release_post(self, alert_id: str, occurrence: int, owner: str) -> None:
        """Give the claim back after a failed post, so the next evaluation may retry at once."""
        ...


class AlertChannel(Protocol):
    """Where a cluster's alert messages go: one message per alert occurrence, edited in place."""

    async def post(self, cluster: ManagedCluster, view: AlertView) -> MessageRef: ...

    async def update(self, cluster: ManagedCluster, ref: MessageRef, view: AlertView) -> None: ...


class LagReports(Protocol):
    """The latest lag poll of each cluster, readable by any replica (``/kafka lag``, ``/metrics``)."""

    async def save(self, report: LagReport | LagDocument, *, ttl_s: float) -> None:
        """Store the report (a ``LagDocument`` is the same report already as JSON text)."""
        ...

    async def latest(self, cluster: str) -> LagReport | None: ...

    async def holds_figures(self, cluster: str) -> bool:
        """Whether the stored report is a poll's figures (not none, not a failed poll's reason),
        told without building its models."""
        ...
