"""The two cleanup steps every replica-moving plan ends its moves with (runbooks/catalogue/replica_steps.py):
what they cover decides what an aborted run leaves behind, so they are read whole here."""

from __future__ import annotations

import pytest

from runbooks.catalogue.replica_steps import PartitionTarget, cleanup_steps
from runbooks.rules.reassignment import PartitionMove

pytestmark = pytest.mark.timeout(10)


def test_cleanup_covers_every_topic_and_broker_the_moves_or_targets_touch() -> None:
    """clear-throttles names every broker a move involves (and the extra ones) and every topic either
    moved or targeted (a catch-up throttles a topic no move names); cancel-moves names each target."""
    moves = [PartitionMove(topic="orders", partition=0, old=(1, 2), new=(2, 3), leader=1, size_bytes=10)]
    targets = [PartitionTarget(topic="orders", partition=0, replicas=(2, 3)),
               PartitionTarget(topic="audit", partition=4, replicas=(5, 6))]
    cancel, clear = cleanup_steps(targets, moves, extra_brokers=(7,))
    assert clear.model_dump(mode="json") == {
        "id": "clear-throttles", "title": "Remove the replication throttles",
        "args": {"kind": "clear-throttles", "brokers": [1, 2, 3, 7], "topics": ["audit", "orders"]},
        "needs_approval": False, "approvals_required": None, "skippable": False, "timeout_s": 300.0,
        "compensation": "None: a throttle is only ever needed while replicas move.", "cleanup": True,
        "interruptible": False, "summary": "Runs however the run ends: a throttle left on slows every later recovery.",
    }
    assert cancel.model_dump(mode="json") == {
        "id": "cancel-moves", "title": "Cancel any move of this run still in flight",
        "args": {"kind": "cancel-moves", "partitions": [
            {"topic": "audit", "partition": 4, "replicas": [5, 6]},
            {"topic": "orders", "partition": 0, "replicas": [2, 3]}]},
        "needs_approval": False, "approvals_required": None, "skippable": False, "timeout_s": 300.0,
        "compensation": "None: a cancelled move is planned again by a new run.", "cleanup": True,
        "interruptible": False, "summary": "Runs however the run ends: a move still in flight is cancelled (its "
        "partition goes back to its replicas before that move).",
    }
