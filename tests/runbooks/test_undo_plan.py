"""runbooks/catalogue/undo.py on hand-built runs and clusters: what a run changed by its own record, the undo's
gate (the run's own harm allowed, anything else refused by name), and the undo's plan."""

from __future__ import annotations

from typing import Any

import pytest

from runbooks.catalogue.step_args import PatchKafkaArgs, VerifyConfigArgs, edit
from runbooks.catalogue.undo import Footprint, UndoInput, footprint, plan_undo, undo_offered, undo_problems
from runbooks.engine.models import PlanRefused, Run, RunState, Step, StepSpec
from runbooks.rules.health import QuorumInfo
from runbooks.rules.rolls import BrokerPodState
from tests.runbooks.builders import args_of, make_run, part, snapshot, voter

pytestmark = pytest.mark.timeout(5)

UIDS = {"0": "u0", "1": "u1", "2": "u2"}


def patch_step(step_id: str, edits: list[tuple[list[str], Any]], previous: list[Any] | None, *,
               applied: bool = True) -> Step:
    spec = StepSpec(id=step_id, title=step_id,
                    args=PatchKafkaArgs(edits=tuple(edit(*path, value=value) for path, value in edits)))
    observed: dict[str, Any] = {"generation_before": 4, "uids": UIDS, "restarts": {"0": 0, "1": 0, "2": 0}}
    if previous is not None:
        observed["previous"] = [{"path": path, "value": old} for (path, _), old in zip(edits, previous, strict=True)]
    return Step(spec=spec, applied=applied, observed=observed if applied else {})


def paused_run(runbook: str, *steps: Step, dynamic: tuple[str, ...] = ()) -> Run:
    verify = Step(spec=StepSpec(id="verify", title="verify", args=VerifyConfigArgs(dynamic=dynamic)))
    run = make_run(specs=[s.spec for s in (*steps, verify)], run_id="r-0000abcd")
    return run.model_copy(update={"runbook": runbook, "steps": (*steps, verify), "state": RunState.PAUSED})


CONFIG_RUN = paused_run("config", patch_step("patch-config", [(["config", "log.cleaner.min.cleanable.ratio"], 0.9),
                                                             (["config", "num.io.threads"], 16)], [None, 8]))


def pod(node: int, *, uid: str | None = None, ready: bool = True, restarts: int = 0, state: str = "") -> BrokerPodState:
    return BrokerPodState(id=node, pod=f"c-pool-{node}", uid=uid or f"u{node}", ready=ready, restart_count=restarts,
                          stuck=bool(state), state=state)


HEALTHY_PARTS = [part("orders", n, leader=n, replicas=(0, 1, 2), isr=(0, 1, 2)) for n in range(3)]
BROKEN_1 = [part("orders", n, leader=(n + 1) % 3 if n == 1 else n, replicas=(0, 1, 2), isr=(0, 2)) for n in range(3)]


def broken_world(**overrides: Any) -> UndoInput:
    """Broker 1 restarted by the change and crash-looping, NotReady from reconciling the change."""
    values: dict[str, Any] = {
        "ready": False, "reason": "FatalProblem", "message": "Error while waiting for restarted pod c-pool-1 to "
        "become ready", "generation": 5, "observed_generation": 5,
        "spec": {"version": "4.3.1", "config": {"log.cleaner.min.cleanable.ratio": 0.9, "num.io.threads": 16}},
        "kafka_version": "4.3.1", "metadata_version": "4.3-IV0",
        "pods": (pod(0), pod(1, uid="u1-new", ready=False, restarts=3, state="CrashLoopBackOff, 3 container restarts"),
                 pod(2)),
        "snapshot": snapshot(*BROKEN_1, brokers=(0, 2), quorum=QuorumInfo(leader_id=2, voters=(
            voter(0, 1000), voter(1, 0), voter(2, 1000)))),
    }
    values.update(overrides)
    return UndoInput(**values)


def test_a_config_runs_footprint_is_its_keys_with_the_values_before_it() -> None:
    """Each key goes back to what the patch step saw before patching (absent: removed)."""
    fp = footprint(CONFIG_RUN)
    assert [(r.path, r.value) for r in fp.restore] == [(("config", "log.cleaner.min.cleanable.ratio"), None),
                                                      (("config", "num.io.threads"), 8)]
    assert fp.diff() == "log.cleaner.min.cleanable.ratio: 0.9 -> (not set); num.io.threads: 16 -> 8"
    assert (fp.uids, fp.generation, fp.live) == (UIDS, 4, False)
    assert undo_offered(CONFIG_RUN) == fp


def test_an_upgrades_footprint_is_the_version_only_and_none_after_the_metadata_raise() -> None:
    """metadataVersion stays pinned; once the run raised it there is no way back, and undo says so."""
    pin = patch_step("pin-metadata", [(["metadataVersion"], "4.2-IV1")], [None])
    roll = patch_step("roll-version", [(["version"], "4.3.1")], ["4.2.2"])
    fp = footprint(paused_run("upgrade", pin, roll))
    assert [(r.path, r.value) for r in fp.restore] == [(("version",), "4.2.2")]
    raised = patch_step("raise-metadata", [(["metadataVersion"], "4.3-IV0")], ["4.2-IV1"])
    with pytest.raises(PlanRefused, match="already raised the metadata version, and Kafka cannot go back below it"):
        footprint(paused_run("upgrade", pin, roll, raised))


@pytest.mark.parametrize(("run", "why"), [
    (paused_run("config", patch_step("patch-config", [(["config", "a.b"], 1)], [None], applied=False)),
     "has not changed anything that can be put back yet (no patch of it was applied): abort it instead"),
    (paused_run("config", patch_step("patch-config", [(["config", "a.b"], 1)], None)),
     "did not record the values it replaced (it ran on an older version of the bot)"),
    (paused_run("undo", patch_step("revert", [(["config", "a.b"], 1)], [None])),
     "is itself an undo; undoing it would make the change that broke the cluster again"),
    (make_run().model_copy(update={"state": RunState.PAUSED}), "is a restart run, which changes no setting"),
])
def test_runs_with_nothing_to_undo_say_why(run: Run, why: str) -> None:
    with pytest.raises(PlanRefused, match=why.replace("(", r"\(").replace(")", r"\)")):
        footprint(run)
    assert undo_offered(run) is None


def test_a_running_run_offers_no_undo() -> None:
    assert undo_offered(CONFIG_RUN.model_copy(update={"state": RunState.WAITING})) is None


def test_the_gate_allows_a_cluster_broken_only_by_the_runs_own_change() -> None:
    """Broker 1 restarted by the change and crash-looping, the operator's FatalProblem naming its pod,
    partitions missing only broker 1: nothing else is wrong."""
    assert undo_problems(footprint(CONFIG_RUN), broken_world()) == []


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"pods": (pod(0), pod(1, uid="u1-new", ready=False, state="CrashLoopBackOff"),
               pod(2, ready=False, state="CrashLoopBackOff, 1 container restart", restarts=1))},
     "broker 2 (pod c-pool-2: CrashLoopBackOff, 1 container restart) is down too, and run r-0000abcd did not "
     "restart it"),
    ({"snapshot": snapshot(*[part("orders", n, leader=0, replicas=(0, 1, 2), isr=(0,)) for n in range(3)],
                           brokers=(0, 2), quorum=QuorumInfo(leader_id=2, voters=()))},
     "3 partitions are missing a replica on a broker run r-0000abcd did not restart (e.g. orders-0, orders-1, "
     "orders-2)"),
    ({"snapshot": snapshot(*BROKEN_1, brokers=(0, 2), quorum=QuorumInfo(leader_id=None, voters=()))},
     "the KRaft quorum has no leader"),
    ({"snapshot": snapshot(part("orders", 0, leader=0, replicas=(0, 2, 1), isr=(0, 2), adding=(1,)),
                           brokers=(0, 2))},
     "partition reassignments are in flight (1)"),
    ({"observed_generation": 4},
     "the Kafka resource is NotReady (FatalProblem: Error while waiting for restarted pod c-pool-1 to become "
     "ready) from generation 4, before run r-0000abcd's change (generation 5)"),
    ({"message": "Pod c-pool-2 is unschedulable or is not starting"},
     "the Kafka resource is NotReady (FatalProblem: Pod c-pool-2 is unschedulable or is not starting), naming "
     "c-pool-2, which run r-0000abcd did not restart"),
    ({"paused": True}, "reconciliation of the Kafka resource is paused"),
    ({"spec": {"config": {"log.cleaner.min.cleanable.ratio": 0.5, "num.io.threads": 16}}},
     "spec.kafka log.cleaner.min.cleanable.ratio is now 0.5, not the 0.9 run r-0000abcd wrote: someone changed "
     "it since"),
    ({"snapshot": None, "snapshot_error": "KafkaTimeoutError: no broker answered"},
     "Kafka did not answer (KafkaTimeoutError: no broker answered), so nothing else can be ruled out"),
    ({"pods": (pod(0), pod(1, uid="u1-new", ready=False, state="CrashLoopBackOff")),
      "snapshot": snapshot(*BROKEN_1, brokers=(0,))},
     "broker 2 has no pod (the operator is replacing it)"),
])
def test_the_gate_refuses_anything_else_and_names_it(overrides: dict[str, Any], problem: str) -> None:
    problems = undo_problems(footprint(CONFIG_RUN), broken_world(**overrides))
    assert any(problem in p for p in problems), problems


def test_a_crash_in_place_counts_as_the_changes_own_only_when_it_was_applied_live() -> None:
    """Broker 2 crashed in its own pod (more restarts, same uid): the change's doing if its keys were
    applied to running brokers, someone else's problem if it only reaches brokers by restarting them."""
    crashed_in_place = broken_world(pods=(pod(0), pod(1, uid="u1-new", ready=False, state="CrashLoopBackOff"),
                                          pod(2, ready=False, restarts=1, state="CrashLoopBackOff")),
                                    snapshot=snapshot(*[part("orders", n, leader=0, replicas=(0, 1, 2), isr=(0,))
                                                        for n in range(3)], brokers=(0,)))
    assert undo_problems(footprint(CONFIG_RUN), crashed_in_place)
    live = paused_run("config", *CONFIG_RUN.steps[:1], dynamic=("num.io.threads",))
    assert undo_problems(footprint(live), crashed_in_place) == []


def test_the_config_undo_plan_reverts_then_follows_the_broken_broker_first() -> None:
    """An approved revert with the run's values as its precondition, then the touched brokers, the
    crash-looping one first (each tolerating the ones after it), the operator's end, the verification."""
    fp = footprint(CONFIG_RUN)
    world = broken_world(pods=(pod(0, uid="u0-new"), pod(1, uid="u1-new", ready=False, state="CrashLoopBackOff"),
                               pod(2)))
    steps = plan_undo(fp, world)
    assert [s.id for s in steps] == ["revert", "undo-1", "undo-0", "undo-done", "verify"]
    revert = steps[0]
    assert revert.kind == "revert-kafka" and revert.needs_approval
    assert args_of(revert)["edits"] == [{"path": ["config", "log.cleaner.min.cleanable.ratio"], "value": None},
                                    {"path": ["config", "num.io.threads"], "value": 8}]
    assert args_of(revert)["expect"] == [{"path": ["config", "log.cleaner.min.cleanable.ratio"], "value": 0.9},
                                     {"path": ["config", "num.io.threads"], "value": 16}]
    assert args_of(revert)["expect_generation"] == 5 and Footprint.model_validate(args_of(revert)["footprint"]) == fp
    assert "in the order 1, 0" in revert.summary and "because what is wrong is run r-0000abcd's own change" in \
        revert.summary
    assert [(args_of(s)["uid"], args_of(s)["tolerate"], args_of(s)["down_at_plan"]) for s in steps[1:3]] == [
        ("u1-new", [0], True), ("u0-new", [], False)]
    assert args_of(steps[1])["expect"] == {"kafka_version": None, "config": {"num.io.threads": "8"}}
    assert args_of(steps[3]) == {"kind": "await-operator", "kafka_version": "4.3.1", "generation": 6}
    assert args_of(steps[4])["set"] == {"num.io.threads": "8"}
    assert args_of(steps[4])["unset"] == ["log.cleaner.min.cleanable.ratio"]


def test_the_upgrade_undo_sets_the_version_back_and_keeps_the_metadata_version() -> None:
    pin = patch_step("pin-metadata", [(["metadataVersion"], "4.2-IV1")], [None])
    roll = patch_step("roll-version", [(["version"], "4.3.1")], ["4.2.2"])
    fp = footprint(paused_run("upgrade", pin, roll))
    world = broken_world(spec={"version": "4.3.1", "metadataVersion": "4.2-IV1"}, metadata_version="4.2-IV1")
    steps = plan_undo(fp, world)
    assert [s.id for s in steps] == ["revert", "undo-1", "undo-done", "verify"]
    assert args_of(steps[0])["edits"] == [{"path": ["version"], "value": "4.2.2"}]
    assert args_of(steps[1])["expect"] == {"kafka_version": "4.2.2", "config": {}}
    assert steps[3].kind == "verify-upgrade"
    assert args_of(steps[3]) == {"kind": "verify-upgrade", "kafka_version": "4.2.2", "metadata_version": "4.2-IV1",
                                 "config": {}, "brokers": [0, 1, 2]}


def test_a_refused_plan_lists_every_problem() -> None:
    with pytest.raises(PlanRefused) as refused:
        plan_undo(footprint(CONFIG_RUN), broken_world(paused=True, observed_generation=3))
    assert "paused" in str(refused.value) and "from generation 3" in str(refused.value)
