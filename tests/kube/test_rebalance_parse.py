"""Reading a KafkaRebalance as Strimzi writes it: the state is the one True condition naming a
state (a Warning beside it is not a state), the review figures of optimizationResult, the progress
ConfigMap's text values."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.kube.rebalances import progress_from, rebalance_from
from runbooks.rules.rebalance import RebalanceState

pytestmark = pytest.mark.timeout(5)


def test_the_state_is_the_true_state_condition_not_a_warning() -> None:
    obj = {
        "metadata": {"name": "drain-3", "namespace": "kafka", "uid": "u-1", "resourceVersion": "41", "generation": 2,
                     "labels": {"strimzi.io/cluster": "east"},
                     "annotations": {"strimzi.io/rebalance-auto-approval": "TRUE"}},
        "spec": {"mode": "add-brokers", "brokers": [5, 6, True]},
        "status": {
            "conditions": [
                {"type": "Warning", "status": "True", "reason": "Deprecated", "message": "goals"},
                {"type": "PendingProposal", "status": "False"},
                {"type": "ProposalReady", "status": "True", "lastTransitionTime": "2026-12-07T03:30:00Z"},
            ],
            "optimizationResult": {"numReplicaMovements": 12, "dataToMoveMB": 0, "excludedTopics": ["a", "b"]},
            "progress": {"rebalanceProgressConfigMap": "drain-3"},
        },
    }
    view = rebalance_from(obj)
    assert view.state is RebalanceState.PROPOSAL_READY
    assert view.state_since == datetime(2026, 12, 7, 3, 30, tzinfo=UTC)
    assert (view.mode, view.brokers, view.cluster_label, view.generation) == ("add-brokers", (5, 6), "east", 2)
    assert view.optimization.replica_movements == 12 and view.optimization.data_to_move_mb == 0
    assert view.optimization.leader_movements is None and view.optimization.excluded_topics == ("a", "b")
    assert view.auto_approved and view.progress_config_map == "drain-3" and view.resource_version == "41"


def test_no_status_yet_and_notready_reasons() -> None:
    fresh = rebalance_from({"metadata": {"name": "r", "namespace": "kafka", "uid": "u"}, "spec": {}})
    assert fresh.state is None and fresh.mode == "full" and fresh.brokers == ()
    failed = rebalance_from({"metadata": {"name": "r"}, "status": {"conditions": [
        {"type": "NotReady", "status": "True", "reason": "CruiseControlRestException",
         "message": "NotEnoughValidWindows"}]}})
    assert failed.state is RebalanceState.NOT_READY
    assert (failed.reason, failed.message) == ("CruiseControlRestException", "NotEnoughValidWindows")


def test_progress_values_are_read_from_text_and_a_bad_one_stays_unknown() -> None:
    progress = progress_from({"data": {"completedByteMovementPercentage": "37.5",
                                       "estimatedTimeToCompletionInMinutes": "soon"}})
    assert progress.completed_percent == 37.5 and progress.eta_minutes is None
