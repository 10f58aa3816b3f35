"""The mirror runbook's pure planning (``runbooks.catalogue.mirror`` and ``mirror_manage``): the plan read
whole, the KafkaMirrorMaker2 spec it approves, and each refusal and safety rule on an otherwise good input."""

from __future__ import annotations

import re
from typing import Any

import pytest

from runbooks.catalogue.mirror import (
    IDENTITY_POLICY,
    ExistingMirror,
    MirrorInput,
    MirrorParams,
    MirrorSide,
    TopicInfo,
    plan,
)
from runbooks.catalogue.mirror_manage import copies_on_target, plan_state, with_state
from runbooks.catalogue.mirror_step_args import (
    AwaitMirrorArgs,
    CreateMirrorArgs,
    MirrorCanaryArgs,
    MirrorPreflightArgs,
    VerifyCheckpointsArgs,
)
from runbooks.engine.models import PlanRefused

pytestmark = pytest.mark.timeout(5)


def world(**changes: Any) -> MirrorInput:
    base: dict[str, Any] = {
        "source": MirrorSide(name="east", namespace="kafka", ready=True, bootstrap="east:9092", kafka_version="4.3.1"),
        "target": MirrorSide(name="west", namespace="kafka-w", ready=True, bootstrap="west:9092",
                             kafka_version="4.3.1"),
        "source_topics": (TopicInfo(name="orders.eu", partitions=6, size_bytes=3 * 1024 ** 3),
                          TopicInfo(name="orders.us", partitions=4), TopicInfo(name="payments", partitions=2),
                          TopicInfo(name="__consumer_offsets", partitions=50),
                          TopicInfo(name="west.checkpoints.internal", partitions=1)),
        "target_topics": ("billing-out",),
    }
    base.update(changes)
    return MirrorInput(**base)


def params(**changes: Any) -> MirrorParams:
    return MirrorParams(**{"source": "east", "target": "west", "topics": "orders.*", **changes})


def refusal(p: MirrorParams, w: MirrorInput) -> str:
    with pytest.raises(PlanRefused) as err:
        plan(p, w)
    return str(err.value)


def test_the_plan_whole() -> None:
    steps = plan(params(groups="billing"), world())
    assert [(s.id, s.needs_approval, s.timeout_s) for s in steps] == [
        ("mirror-preflight", False, 120.0), ("create-mirror", True, 120.0), ("await-mirror", False, 600.0),
        ("mirror-canary", False, 300.0), ("verify-checkpoints", False, 900.0)]
    assert steps[0].args == MirrorPreflightArgs(source="east", name="east-to-west")
    assert steps[0].summary == ("Mirrors 2 topics: orders.eu (6 partitions, 3.0 GiB) → east.orders.eu; "
                                "orders.us (4 partitions, 0 B) → east.orders.us.")
    create = steps[1].args
    assert isinstance(create, CreateMirrorArgs)
    assert (create.name, create.canary_topic, create.canary_group) == (
        "east-to-west", "kafka-chatops-canary-east-to-west", "kafka-chatops-canary-east-to-west")
    assert steps[2].args == AwaitMirrorArgs(name="east-to-west", connectors=(
        "east->west.MirrorSourceConnector", "east->west.MirrorCheckpointConnector"))
    assert steps[3].args == MirrorCanaryArgs(source="east", canary_topic="kafka-chatops-canary-east-to-west",
                                             remote_topic="east.kafka-chatops-canary-east-to-west")
    assert steps[4].args == VerifyCheckpointsArgs(
        source="east", source_alias="east", group="kafka-chatops-canary-east-to-west",
        canary_topic="kafka-chatops-canary-east-to-west", remote_topic="east.kafka-chatops-canary-east-to-west")
    titles = [s.title for s in steps]  # each step says which cluster it touches
    assert titles[1] == "Create KafkaMirrorMaker2 east-to-west [west: write; east: canary topic]"
    assert titles[3] == "Canary: 50 records east → west [east: write, west: read]"
    assert "In west's namespace kafka-w" in steps[1].summary and '"kind": "KafkaMirrorMaker2"' in steps[1].summary


def test_the_resource_is_strimzis_v1_layout_with_the_canary_in_its_patterns() -> None:
    spec = plan(params(groups="billing"), world())[1].args.spec  # type: ignore[attr-defined]
    assert spec["version"] == "4.3.1" and spec["replicas"] == 1
    assert spec["target"] == {"alias": "west", "bootstrapServers": "west:9092", "groupId": "east-to-west-mm2",
                              "configStorageTopic": "east-to-west-mm2-config",
                              "offsetStorageTopic": "east-to-west-mm2-offset",
                              "statusStorageTopic": "east-to-west-mm2-status"}
    (mirror,) = spec["mirrors"]
    assert mirror["source"] == {"alias": "east", "bootstrapServers": "east:9092"}
    assert mirror["sourceConnector"] == {"tasksMax": 8, "autoRestart": {"enabled": True}, "state": "running",
                                         "config": {}}  # 6 + 4 + 1 partitions, at most 8 tasks
    assert mirror["checkpointConnector"]["autoRestart"] == {"enabled": True}
    assert mirror["checkpointConnector"]["config"]["sync.group.offsets.enabled"] == "true"
    canary = "kafka-chatops-canary-east-to-west"
    assert re.fullmatch(mirror["topicsPattern"], canary) and re.fullmatch(mirror["topicsPattern"], "orders.eu")
    assert not re.fullmatch(mirror["topicsPattern"], "payments")
    assert re.fullmatch(mirror["groupsPattern"], "billing") and re.fullmatch(mirror["groupsPattern"], canary)
    assert not re.fullmatch(mirror["groupsPattern"], "other")


def test_tasks_follow_the_partitions_and_identity_names_set_the_policy_on_both_connectors() -> None:
    small = world(source_topics=(TopicInfo(name="orders.eu", partitions=2),))
    spec = plan(params(identity_names=True, name="dr"), small)[1].args.spec  # type: ignore[attr-defined]
    (mirror,) = spec["mirrors"]
    assert mirror["sourceConnector"]["tasksMax"] == 3
    assert mirror["sourceConnector"]["config"] == {"replication.policy.class": IDENTITY_POLICY}
    assert mirror["checkpointConnector"]["config"]["replication.policy.class"] == IDENTITY_POLICY
    summary = plan(params(identity_names=True, name="dr"), small)[0].summary
    assert summary == "Mirrors 1 topic: orders.eu (2 partitions, 0 B) → orders.eu."


@pytest.mark.parametrize(("p", "words"), [
    (params(target="east"), "the source and the target are both east: a mirror copies topics from one managed "
     "cluster to another, so name two different clusters"),
    (params(topics="orders.(*"), "--topics 'orders.(*' is not a valid regular expression (nothing to repeat at "
     "position 8); give one that MirrorMaker 2 can match topic names with"),
    (params(groups="[a"), "--groups '[a' is not a valid regular expression"),
    (params(topics="pay"), "--topics 'pay' matches no topic on east (the whole name must match); its topics are: "
     "orders.eu, orders.us, payments"),
    (params(topics="__consumer_offsets"), "matches no topic on east"),  # internal topics are never mirrored
    (params(name="Not_A_Name"), "'Not_A_Name' cannot name a KafkaMirrorMaker2"),
])
def test_bad_input_is_refused_with_what_is_wrong_and_what_is_valid(p: MirrorParams, words: str) -> None:
    assert words in refusal(p, world())


def test_a_mirror_set_up_again_under_its_name_continues_over_the_copies_it_left() -> None:
    """`mirror remove` leaves the copies and the worker's offsets topic on the target: the same --name
    resumes from those offsets (no record twice), another name would copy everything again into them."""
    left = ("east.orders.eu", "east.orders.us", "east.kafka-chatops-canary-east-to-west", "east-to-west-mm2-offset")
    steps = plan(params(), world(target_topics=left))
    create = next(s for s in steps if s.id == "create-mirror")
    assert "continues mirror east-to-west removed earlier: its worker starts from the offsets in " \
           "east-to-west-mm2-offset" in create.summary
    other = refusal(params(name="again"), world(target_topics=left))
    assert "west has a topic east.orders.eu already" in other and "with that mirror's --name" in other
    assert "drop --identity-names" in refusal(params(identity_names=True), world(target_topics=(
        "orders.us", "east-to-west-mm2-offset")))  # identity copies do not say where they came from


def test_a_name_already_used_in_the_targets_namespace_is_refused() -> None:
    taken = ExistingMirror(name="east-to-west", namespace="kafka-w", target_alias="west", source_alias="north",
                           topics_pattern="x")
    assert "a KafkaMirrorMaker2 named east-to-west already exists in west's namespace kafka-w" in refusal(
        params(), world(mirrors=(taken,)))
    elsewhere = taken.model_copy(update={"namespace": "kafka"})  # the source's namespace: another name space
    assert plan(params(), world(mirrors=(elsewhere,)))


def test_a_target_topic_that_is_no_mirror_clashes_and_one_mirrored_already_is_refused() -> None:
    assert "west has a topic east.orders.eu already, which is no mirror of east's orders.eu" in refusal(
        params(), world(target_topics=("east.orders.eu",)))
    assert "drop --identity-names" in refusal(params(identity_names=True), world(target_topics=("orders.us",)))
    same = ExistingMirror(name="dr", namespace="kafka-w", target_alias="west", source_alias="east",
                          topics_pattern="orders.us")
    assert "orders.us is mirrored from east to west already, by KafkaMirrorMaker2 dr" in refusal(
        params(), world(mirrors=(same,), target_topics=("east.orders.us",)))


@pytest.mark.parametrize(("ours", "theirs", "loops"), [
    (True, False, True),  # our copies keep their names; the reverse mirror picks them up and sends them back
    (False, True, True),  # the reverse mirror cannot tell our prefixed copies from originals either
    (True, True, True),
    (False, False, False),  # both prefix: MirrorMaker 2 sees a copy's origin and skips it
])
def test_a_mirror_that_would_loop_is_refused(ours: bool, theirs: bool, loops: bool) -> None:
    reverse = ExistingMirror(name="back", namespace="kafka", target_alias="east", source_alias="west",
                             topics_pattern=".*orders.*", identity=theirs)
    p = params(identity_names=ours)
    if loops:
        said = refusal(p, world(mirrors=(reverse,)))
        assert "this would loop: KafkaMirrorMaker2 back mirrors west back to east" in said
    else:
        assert plan(p, world(mirrors=(reverse,)))
    narrow = reverse.model_copy(update={"topics_pattern": "payments"})
    assert plan(p, world(mirrors=(narrow,)))  # a reverse mirror of other topics is no loop


def test_an_unhealthy_or_unreachable_cluster_is_refused() -> None:
    sick = world(source=MirrorSide(name="east", namespace="kafka", ready=False, not_ready_reason="NotReady",
                                   problems=("1 offline partitions (e.g. orders.eu-0)",), bootstrap="east:9092"))
    assert refusal(params(), sick) == ("the source east is not Ready (NotReady); the source east: 1 offline "
                                       "partitions (e.g. orders.eu-0)")
    nowhere = world(target=MirrorSide(name="west", namespace="kafka-w", ready=True))
    assert "the target west has no bootstrap address" in refusal(params(), nowhere)


def test_pause_and_resume_set_every_connectors_state_and_refuse_a_no_op() -> None:
    spec = plan(params(), world())[1].args.spec  # type: ignore[attr-defined]
    paused = with_state(spec, "paused")
    assert {paused["mirrors"][0][k]["state"] for k in ("sourceConnector", "checkpointConnector")} == {"paused"}
    assert spec["mirrors"][0]["sourceConnector"]["state"] == "running"  # the input is left as it was
    (step,) = plan_state("dr", spec, 3, "paused")
    assert step.args.generation == 3 and step.needs_approval  # type: ignore[attr-defined]
    with pytest.raises(PlanRefused, match="every connector of dr is running already"):
        plan_state("dr", spec, 3, "running")


def test_remove_lists_the_copies_the_worker_topics_and_the_checkpoints_left_on_the_target() -> None:
    spec = plan(params(), world())[1].args.spec  # type: ignore[attr-defined]
    target = ("east.orders.eu", "east.payments", "orders.eu", "east.checkpoints.internal", "east-to-west-mm2-config",
              "east.kafka-chatops-canary-east-to-west", "unrelated")
    assert copies_on_target(spec, target) == ["east-to-west-mm2-config", "east.checkpoints.internal",
                                              "east.kafka-chatops-canary-east-to-west", "east.orders.eu"]
