"""replace-broker and scale with ``--engine cruise-control``, the plans read whole (ids, kinds,
arguments, approvals, cleanup, interruptible), and each refusal of the engine word for word.

The bot's planner stays the default: the same params without ``engine`` plan move-replicas steps.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runbooks.catalogue import replace_broker, scale
from runbooks.catalogue.rebalance_steps import NO_CRUISE_CONTROL, rebalance_name
from runbooks.catalogue.replace_broker import ReplaceBrokerInput, ReplaceBrokerParams
from runbooks.catalogue.scale import ScaleInput, ScaleParams
from runbooks.engine.models import PlanRefused, StepSpec
from runbooks.rules.health import ClusterSnapshot
from runbooks.rules.node_pools import NodePool
from runbooks.rules.reassignment import ReassignmentBroker
from runbooks.rules.rebalance import KafkaRebalanceView, RebalanceState, wants_card
from tests.runbooks.reassignment_builders import MiB, brokers, part

pytestmark = pytest.mark.timeout(10)

CONTROLLERS = NodePool(name="controllers", roles=("controller",), replicas=3, node_ids=(0, 1, 2))
POOL = NodePool(name="brokers", roles=("broker",), replicas=3, node_ids=(3, 4, 5))
PARTS = tuple(part(f"t-{i}", ((3 + i) % 3 + 3, (4 + i) % 3 + 3), size=100 * MiB) for i in range(6))
SCALE_WORLD = ScaleInput(pools=(CONTROLLERS, POOL), brokers=tuple(ReassignmentBroker(id=b) for b in (3, 4, 5)),
                         partitions=PARTS, cruise_control=True)
REPLACE_PARTS = (part("t-0", (0, 1, 2), size=100 * MiB), part("t-1", (1, 2, 3), size=100 * MiB),
                 part("t-2", (2, 3, 0), size=100 * MiB), part("t-3", (3, 0, 1), size=100 * MiB))
REPLACE_WORLD = ReplaceBrokerInput(brokers=brokers(4), partitions=REPLACE_PARTS,
                                   pods={i: f"c-kafka-{i}" for i in range(4)},
                                   snapshot=ClusterSnapshot(taken_at=datetime(2026, 1, 1, tzinfo=UTC), brokers=()),
                                   cruise_control=True)


def shape(steps: list[StepSpec]) -> list[tuple[str, str, bool, bool, bool]]:
    return [(s.id, s.kind, s.needs_approval, s.cleanup, s.interruptible) for s in steps]


def args(steps: list[StepSpec]) -> dict[str, dict[str, object]]:
    return {s.id: s.args.model_dump() for s in steps}


def test_scale_up_patches_the_pool_waits_then_asks_cruise_control_to_fill_the_new_ids() -> None:
    steps = scale.plan(ScaleParams(pool="brokers", replicas=5, engine="cruise-control"), SCALE_WORLD)
    assert shape(steps) == [
        ("preflight", "preflight", False, False, False),
        ("scale-pool", "patch-node-pool", True, False, False),
        ("await-brokers", "await-pool-nodes", False, False, False),
        ("fill-proposal", "create-rebalance", False, False, False),
        ("fill-rebalance", "run-rebalance", True, False, True),
        ("stop-rebalances", "stop-rebalance", False, True, False),
    ]
    assert args(steps)["fill-proposal"] == {"kind": "create-rebalance", "label": "fill", "mode": "add-brokers",
                                            "brokers": (6, 7)}
    assert args(steps)["fill-rebalance"] == {"kind": "run-rebalance", "label": "fill", "stale_after_s": 600.0}
    assert args(steps)["stop-rebalances"] == {"kind": "stop-rebalance", "labels": ("fill",)}
    by_id = {s.id: s for s in steps}
    assert by_id["fill-proposal"].title == "Fill brokers 6, 7: ask Cruise Control for a proposal (add-brokers)"
    assert by_id["fill-proposal"].summary == ("A KafkaRebalance (add-brokers) asks Cruise Control to move replicas "
                                              "onto brokers 6, 7; nothing moves until approved.")
    assert by_id["fill-rebalance"].summary == (
        "Cruise Control will move replicas onto brokers 6, 7, with the movements and data shown (its proposal, not "
        "the bot's plan; a proposal older than 10 min is refreshed first). At risk: while they copy, the moving "
        "partitions lean on their current replicas.")
    assert by_id["fill-proposal"].timeout_s == 1800.0 and by_id["fill-rebalance"].timeout_s == 6 * 3600.0


def test_scale_up_with_racks_is_planned_by_cruise_control_which_learns_them_once_brokers_run() -> None:
    racked = SCALE_WORLD.model_copy(update={"brokers": tuple(ReassignmentBroker(id=b, rack=r)
                                                             for b, r in ((3, "a"), (4, "b"), (5, "c")))})
    with pytest.raises(PlanRefused, match="the brokers have racks"):
        scale.plan(ScaleParams(pool="brokers", replicas=4), racked)
    steps = scale.plan(ScaleParams(pool="brokers", replicas=4, engine="cruise-control"), racked)
    assert [s.kind for s in steps][-3:] == ["create-rebalance", "run-rebalance", "stop-rebalance"]


def test_scale_down_asks_cruise_control_to_empty_the_leaving_brokers_before_the_pool_shrinks() -> None:
    steps = scale.plan(ScaleParams(pool="brokers", replicas=2, engine="cruise-control"), SCALE_WORLD)
    assert shape(steps) == [
        ("preflight", "preflight", False, False, False),
        ("drain-proposal", "create-rebalance", False, False, False),
        ("drain-rebalance", "run-rebalance", True, False, True),
        ("stop-rebalances", "stop-rebalance", False, True, False),
        ("scale-pool", "patch-node-pool", True, False, False),
        ("await-scale-down", "await-pool-nodes", False, False, False),
    ]
    assert args(steps)["drain-proposal"] == {"kind": "create-rebalance", "label": "drain", "mode": "remove-brokers",
                                             "brokers": (5,)}
    assert args(steps)["scale-pool"]["remove_ids"] == (5,)


def test_replace_broker_drains_replaces_then_asks_for_replicas_back_by_cruise_controls_choice() -> None:
    steps = replace_broker.plan(ReplaceBrokerParams(broker=3, engine="cruise-control"), REPLACE_WORLD)
    assert shape(steps) == [
        ("preflight", "preflight", False, False, False),
        ("drain-proposal", "create-rebalance", False, False, False),
        ("drain-rebalance", "run-rebalance", True, False, True),
        ("replace", "replace-pod-and-pvc", True, False, False),
        ("back-proposal", "create-rebalance", False, False, False),
        ("back-rebalance", "run-rebalance", True, False, True),
        ("stop-rebalances", "stop-rebalance", False, True, False),
    ]
    assert args(steps)["drain-proposal"] == {"kind": "create-rebalance", "label": "drain", "mode": "remove-brokers",
                                             "brokers": (3,)}
    assert args(steps)["replace"] == {"kind": "replace-pod-and-pvc", "broker": 3, "pod": "c-kafka-3",
                                      "expect_empty": True}
    assert args(steps)["back-proposal"] == {"kind": "create-rebalance", "label": "back", "mode": "add-brokers",
                                            "brokers": (3,)}
    assert args(steps)["stop-rebalances"] == {"kind": "stop-rebalance", "labels": ("drain", "back")}
    back = {s.id: s for s in steps}["back-rebalance"]
    assert "Cruise Control chooses which replicas it receives (not necessarily the ones it had)" in back.summary


def test_the_bot_engine_is_the_default() -> None:
    assert ReplaceBrokerParams(broker=3).engine == "bot" and ScaleParams(pool="p", replicas=1).engine == "bot"
    kinds = {s.kind for s in replace_broker.plan(ReplaceBrokerParams(broker=3), REPLACE_WORLD)}
    assert "move-replicas" in kinds and not kinds & {"create-rebalance", "run-rebalance", "stop-rebalance"}


DEAD = REPLACE_WORLD.model_copy(update={"brokers": tuple(b.model_copy(update={"alive": b.id != 3})
                                                         for b in REPLACE_WORLD.brokers)})


@pytest.mark.parametrize(("planned", "message"), [
    (lambda: scale.plan(ScaleParams(pool="brokers", replicas=2, engine="cruise-control"),
                        SCALE_WORLD.model_copy(update={"cruise_control": False})), NO_CRUISE_CONTROL),
    (lambda: replace_broker.plan(ReplaceBrokerParams(broker=3, engine="cruise-control"),
                                 REPLACE_WORLD.model_copy(update={"cruise_control": False})), NO_CRUISE_CONTROL),
    (lambda: replace_broker.plan(ReplaceBrokerParams(broker=3, engine="cruise-control", keep_data=True),
                                 REPLACE_WORLD),
     "--keep-data moves no replica, so there is nothing for --engine cruise-control to do: leave out --engine"),
    (lambda: replace_broker.plan(ReplaceBrokerParams(broker=3, engine="cruise-control"), DEAD),
     "broker 3 is down, so there is nothing to drain: it is replaced and re-replicates from the leaders, which "
     "--engine cruise-control does not do. Leave out --engine"),
    (lambda: replace_broker.plan(ReplaceBrokerParams(broker=7, engine="cruise-control"), REPLACE_WORLD),
     "no broker 7 in this cluster; its brokers are 0, 1, 2, 3"),
])
def test_each_refusal_of_the_engine_word_for_word(planned, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PlanRefused) as refused:
        planned()
    assert str(refused.value) == message


def test_the_no_cruise_control_refusal_says_what_to_do() -> None:
    assert NO_CRUISE_CONTROL == ("--engine cruise-control needs Cruise Control, but the Kafka resource has no "
                                 "spec.cruiseControl: use --engine bot (the default), or add spec.cruiseControl to "
                                 "the Kafka resource first")


def test_replace_with_too_few_brokers_left_for_the_replication_factor_is_refused() -> None:
    three = REPLACE_WORLD.model_copy(update={"brokers": (*brokers(3), ReassignmentBroker(id=3)),
                                             "partitions": (part("t-0", (0, 1, 2, 3), size=MiB),)})
    with pytest.raises(PlanRefused) as refused:
        replace_broker.plan(ReplaceBrokerParams(broker=3, engine="cruise-control"), three)
    assert str(refused.value) == ("draining broker 3 leaves 3 live brokers, fewer than the largest replication "
                                  "factor (4, topic t)")


def test_a_runs_rebalance_is_named_after_the_cluster_the_run_and_the_phase() -> None:
    assert rebalance_name("prod", "r-7f3a09bc", "drain") == "prod-kco-r-7f3a09bc-drain"


def test_a_runs_own_rebalance_gets_no_rebalance_card_its_run_card_asks() -> None:
    """One approval path per rebalance: the run's (its approvers, four-eyes, plan), not a second card."""
    mine = KafkaRebalanceView(name="c-kco-r-1-drain", namespace="kafka", uid="u", cluster_label="c",
                              state=RebalanceState.PROPOSAL_READY, run_id="r-1")
    assert not wants_card(mine)
    assert wants_card(mine.model_copy(update={"run_id": ""}))
