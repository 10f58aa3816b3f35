"""The ports of the rebalance cards: Strimzi's KafkaRebalance resources, the cards' records, and
the channel the cards are posted in. ``bot/`` implements them; ``tests/fakes/rebalances.py`` fakes
them. The value types are the pure ones of ``runbooks.rules.rebalance`` (the rules judge them).
"""

from __future__ import annotations

from typing import Protocol

from handlers.ports import ClusterRef
from runbooks.rules.rebalance import (
    KafkaRebalanceView,
    OptimizationSummary,
    RebalanceAction,
    RebalanceProgress,
    RebalanceState,
)
from runbooks.rules.rebalance_card import CardMessage, RebalanceCard, RebalanceCardView

__all__ = [
    "KafkaRebalanceView", "KafkaRebalances", "OptimizationSummary", "RebalanceAction", "RebalanceCardStore",
    "RebalanceChannel", "RebalanceGone", "RebalanceMoved", "RebalanceProgress", "RebalanceState",
]


class RebalanceMoved(Exception):
    """The resource is no longer in the state the caller judged (or carries a pending action): nothing was written."""

    def __init__(self, message: str, current: KafkaRebalanceView) -> None:
        super().__init__(message)
        self.current = current


class RebalanceGone(Exception):
    """The KafkaRebalance (with that uid) does not exist any more."""


class KafkaRebalances(Protocol):
    """The KafkaRebalance resources of a managed cluster (label ``strimzi.io/cluster``)."""

    async def list_rebalances(self, cluster: ClusterRef) -> list[KafkaRebalanceView]: ...

    async def get_rebalance(self, cluster: ClusterRef, name: str) -> KafkaRebalanceView | None: ...

    async def create_rebalance(
        self, cluster: ClusterRef, name: str, *, mode: str, brokers: tuple[int, ...] = (), run_id: str = "",
    ) -> KafkaRebalanceView:
        """Create ``name`` with ``spec.mode``/``spec.brokers``, labelled ``strimzi.io/cluster`` (and
        ``kafka-chatops.io/run: <run_id>``: no rebalance card, the run's card approves it), with no
        annotation (never ``strimzi.io/rebalance-auto-approval``). One that exists already is returned
        as it is (the step is asked again after a crash); one of another cluster raises ``RebalanceMoved``."""
        ...

    async def annotate(
        self, cluster: ClusterRef, name: str, action: RebalanceAction, *, expected_state: RebalanceState,
        expected_uid: str,
    ) -> KafkaRebalanceView:
        """Set ``strimzi.io/rebalance=<action>`` only if the resource (same uid) is still in
        ``expected_state`` and carries no other pending action: the check and the write are one step
        (a write in between is refused by the server and judged again). Raises ``RebalanceMoved``
        or ``RebalanceGone``, having written nothing; returns the resource as written. Never touches
        ``strimzi.io/rebalance-auto-approval``."""
        ...

    async def progress(self, cluster: ClusterRef, rebalance: KafkaRebalanceView) -> RebalanceProgress | None:
        """The progress ConfigMap's figures; None when there is none (yet)."""
        ...


class RebalanceCardStore(Protocol):
    """The cards' records, shared by every replica: compare-and-set on a version, and a post claim."""

    async def load_cluster(self, cluster: str) -> list[tuple[RebalanceCard, int]]: ...

    async def load(self, card_id: str) -> tuple[RebalanceCard, int] | None: ...

    async def save(self, card: RebalanceCard, *, expected_version: int) -> int:
        """Raises ``handlers.ports.VersionConflict`` when another writer got there first."""
        ...

    async def delete(self, card: RebalanceCard, *, expected_version: int) -> bool: ...

    async def claim_post(self, card_id: str, owner: str, ttl_s: float) -> bool: ...

    async def release_post(self, card_id: str, owner: str) -> None: ...


class RebalanceChannel(Protocol):
    """Where cards go: a cluster's Slack channel, or the console."""

    async def post(self, channel: str | None, card_id: str, view: RebalanceCardView) -> CardMessage: ...

    async def update(self, ref: CardMessage, card_id: str, view: RebalanceCardView) -> None: ...
