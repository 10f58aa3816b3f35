"""The ``KafkaRebalances`` port in memory: KafkaRebalance resources per namespace, with the API
server's bookkeeping (uid, resourceVersion bumped on every write) and the same check-and-write
``annotate`` as ``bot.kube.rebalances`` (``tests/contracts/test_rebalance_ports.py`` holds both to
one contract). ``operator_moves`` plays Strimzi's part: a new state, and the annotation acted on removed.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime

from handlers.ports import ClusterRef
from handlers.rebalances import RebalanceGone, RebalanceMoved
from runbooks.rules.rebalance import (
    REBALANCE_ANNOTATION,
    KafkaRebalanceView,
    OptimizationSummary,
    RebalanceAction,
    RebalanceProgress,
    RebalanceState,
)


class FakeRebalances:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], KafkaRebalanceView] = {}  # (namespace, name) -> resource
        self.progress_maps: dict[tuple[str, str], RebalanceProgress] = {}
        self.annotations_written: list[tuple[str, str, str]] = []  # (namespace, name, value), in order
        self.created: list[tuple[str, str]] = []  # (namespace, name) created through the port, in order
        self._versions = itertools.count(1)
        self.delay_s = 0.0  # a slow API server: reads take this long, so concurrent presses overlap

    def _bump(self, view: KafkaRebalanceView, **changes: object) -> KafkaRebalanceView:
        updated = view.model_copy(update={**changes, "resource_version": str(next(self._versions))})
        self.objects[(view.namespace, view.name)] = updated
        return updated

    # -- what tests (and the fake operator) do ---------------------------------------------------

    def create(self, namespace: str, name: str, *, cluster: str, mode: str = "full", brokers: tuple[int, ...] = (),
               annotations: dict[str, str] | None = None) -> KafkaRebalanceView:
        view = KafkaRebalanceView(name=name, namespace=namespace, uid=str(uuid.uuid4()), cluster_label=cluster,
                                  mode=mode, brokers=brokers, annotations=dict(annotations or {}), generation=1)
        return self._bump(view)

    def operator_moves(self, namespace: str, name: str, state: RebalanceState, *, at: datetime | None = None,
                       optimization: OptimizationSummary | None = None, reason: str = "",
                       message: str = "") -> KafkaRebalanceView:
        """The operator reconciles: the resource reaches ``state`` and the annotation it acted on is removed."""
        view = self.objects[(namespace, name)]
        annotations = {k: v for k, v in view.annotations.items() if k != REBALANCE_ANNOTATION}
        return self._bump(view, state=state, state_since=at or datetime.now(UTC), annotations=annotations,
                          optimization=optimization or view.optimization, reason=reason, message=message)

    def set_progress(self, namespace: str, name: str, percent: float, eta_minutes: float) -> None:
        self.progress_maps[(namespace, name)] = RebalanceProgress(completed_percent=percent, eta_minutes=eta_minutes)

    def delete(self, namespace: str, name: str) -> None:
        del self.objects[(namespace, name)]

    # -- the port --------------------------------------------------------------------------------

    async def list_rebalances(self, cluster: ClusterRef) -> list[KafkaRebalanceView]:
        return sorted((v for (ns, _), v in self.objects.items()
                       if ns == cluster.namespace and v.cluster_label == cluster.kafka), key=lambda v: v.name)

    async def get_rebalance(self, cluster: ClusterRef, name: str) -> KafkaRebalanceView | None:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        view = self.objects.get((cluster.namespace, name))
        return view if view is not None and view.cluster_label == cluster.kafka else None

    async def create_rebalance(
        self, cluster: ClusterRef, name: str, *, mode: str, brokers: tuple[int, ...] = (), run_id: str = "",
    ) -> KafkaRebalanceView:
        existing = self.objects.get((cluster.namespace, name))
        if existing is not None:
            if existing.cluster_label != cluster.kafka:
                raise RebalanceMoved(f"KafkaRebalance {cluster.namespace}/{name} exists for cluster "
                                     f"{existing.cluster_label or '(none)'}, not {cluster.kafka}", existing)
            return existing
        self.created.append((cluster.namespace, name))
        made = self.create(cluster.namespace, name, cluster=cluster.kafka, mode=mode, brokers=brokers)
        return self._bump(made, run_id=run_id)

    async def annotate(
        self, cluster: ClusterRef, name: str, action: RebalanceAction, *, expected_state: RebalanceState,
        expected_uid: str,
    ) -> KafkaRebalanceView:
        current = await self.get_rebalance(cluster, name)
        if current is None or current.uid != expected_uid:
            raise RebalanceGone(f"KafkaRebalance {cluster.namespace}/{name} is gone")
        if current.state is not expected_state:
            now = current.state.value if current.state else "without a status"
            raise RebalanceMoved(f"KafkaRebalance {cluster.namespace}/{name} is now {now}, not "
                                 f"{expected_state.value}.", current)
        if current.pending_action:
            raise RebalanceMoved(f"KafkaRebalance {cluster.namespace}/{name} already carries "
                                 f"{REBALANCE_ANNOTATION}={current.pending_action}.", current)
        self.annotations_written.append((cluster.namespace, name, action.value))
        return self._bump(current, annotations={**current.annotations, REBALANCE_ANNOTATION: action.value})

    async def progress(self, cluster: ClusterRef, rebalance: KafkaRebalanceView) -> RebalanceProgress | None:
        return self.progress_maps.get((cluster.namespace, rebalance.name))
