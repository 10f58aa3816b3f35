"""The MirrorMaker 2 runbook: a ``KafkaMirrorMaker2`` from a source cluster to a target cluster,
proven by a canary before it is called done.

The run belongs to the **target** cluster (it holds that cluster's lock: the resource is created in
its namespace, the remote topics and the Connect worker's topics appear there) and reads the
source. Steps:

1. ``mirror-preflight`` (both clusters, read): Ready, healthy, the mirror's name still free.
2. ``create-mirror`` (approved): the canary topic on the source (``kafka-chatops-canary-<name>``,
   created first so MirrorMaker 2 sees it when it starts), then the KafkaMirrorMaker2 in the
   target's namespace, exactly as the approval showed it.
3. ``await-mirror`` (target, read): Ready **and** every connector and task RUNNING in
   ``status.connectors``: Strimzi's Ready stays True next to a FAILED task (Strimzi issue #5715), so
   a FAILED task pauses the run with its trace.
4. ``mirror-canary`` (source write, target read): timestamped records produced on the source's
   canary topic, read back on the target under their remote name: latency p50/p99, missing and
   duplicated records. Any record missing pauses the run.
5. ``verify-checkpoints`` (source write, target read): the canary group's offset committed on the
   source; done when the checkpoint connector's translation of it is in
   ``<source alias>.checkpoints.internal`` on the target.

The canary topic and group are written into the resource's patterns explicitly
(``topicsPattern: "<--topics>|kafka-chatops-canary-<name>"``), so the proof never depends on the
user's regex matching a name the bot made up.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from runbooks.catalogue.mirror_security import (
    SecretNeed,
    SecretState,
    SideSecurity,
    check_side,
    refuse_missing,
    secrets_needed,
    side_fields,
)
from runbooks.catalogue.mirror_step_args import (
    CANARY_RECORDS,
    AwaitMirrorArgs,
    CreateMirrorArgs,
    MirrorCanaryArgs,
    MirrorPreflightArgs,
    VerifyCheckpointsArgs,
)
from runbooks.catalogue.runbook import Runbook
from runbooks.engine.models import PlanRefused, StepSpec

RUNBOOK = "mirror"
CANARY_PREFIX = "kafka-chatops-canary-"
MAX_TASKS = 8  # source connector tasks: one per partition up to this many (MirrorMaker 2 splits by partition)
IDENTITY_POLICY = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"
RUN_LABEL = "kafka-chatops.io/run"
# What MirrorMaker 2 never mirrors (its topics.exclude default) and its own topics: not "the user's".
_INTERNAL = re.compile(r"__.*|.*[-.]internal|.*\.replica|.*\.heartbeats|heartbeats|mm2-.*"
                       r"|.*-mm2-(config|offset|status)")
_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?")


class MirrorParams(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    target: str
    topics: str
    groups: str | None = None
    name: str | None = None
    identity_names: bool = False
    source_user: str | None = None  # the KafkaUser MirrorMaker 2 is on each side; default the bot's own
    target_user: str | None = None

    @property
    def resource_name(self) -> str:
        return self.name or f"{self.source}-to-{self.target}"


class MirrorSide(BaseModel):
    """One cluster as the mirror's pre-flight sees it."""

    model_config = ConfigDict(frozen=True)

    name: str
    namespace: str
    ready: bool
    not_ready_reason: str = ""
    problems: tuple[str, ...] = ()  # health problems (URP, offline, quorum, ...), or why Kafka did not answer
    bootstrap: str = ""
    kafka_version: str | None = None
    security: SideSecurity = SideSecurity()
    kubectl: tuple[str, ...] = ()  # the flags that reach its Kubernetes API, for commands shown to people


class TopicInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    partitions: int
    size_bytes: int = 0


class ExistingMirror(BaseModel):
    """A KafkaMirrorMaker2 already there: in the target's namespace, or the source's (the reverse direction)."""

    model_config = ConfigDict(frozen=True)

    name: str
    namespace: str
    target_alias: str
    source_alias: str
    topics_pattern: str = ""
    identity: bool = False


class MirrorInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: MirrorSide
    target: MirrorSide
    source_topics: tuple[TopicInfo, ...] = ()
    target_topics: tuple[str, ...] = ()
    mirrors: tuple[ExistingMirror, ...] = ()  # of both clusters' namespaces
    secrets: tuple[SecretState, ...] = ()  # the target namespace's Secrets of those the resource names


def canary_topic(name: str) -> str:
    return f"{CANARY_PREFIX}{name}"


def canary_group(name: str) -> str:
    return f"{CANARY_PREFIX}{name}"


def remote_name(params: MirrorParams, topic: str) -> str:
    """The topic's name on the target: DefaultReplicationPolicy's ``<source alias>.<topic>``, or the
    same name under IdentityReplicationPolicy."""
    return topic if params.identity_names else f"{params.source}.{topic}"


def connector_names(params: MirrorParams) -> tuple[str, str]:
    """Strimzi's names of the two connectors it creates for one mirror."""
    return (f"{params.source}->{params.target}.MirrorSourceConnector",
            f"{params.source}->{params.target}.MirrorCheckpointConnector")


def compile_pattern(option: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise PlanRefused(f"{option} {pattern!r} is not a valid regular expression ({exc}); give one that "
                          "MirrorMaker 2 can match topic names with, e.g. 'orders.*' or 'orders|payments'") from None


def _covers(pattern: str, topic: str) -> bool:
    try:
        return re.fullmatch(pattern, topic) is not None
    except re.error:
        return False


def _side_problems(side: MirrorSide, role: str) -> list[str]:
    found = []
    if not side.ready:
        found.append(f"the {role} {side.name} is not Ready ({side.not_ready_reason or 'no reason given'})")
    found += [f"the {role} {side.name}: {p}" for p in side.problems]
    if not side.bootstrap:
        found.append(f"the {role} {side.name} has no bootstrap address")
    return found


def matched_topics(params: MirrorParams, world: MirrorInput) -> list[TopicInfo]:
    pattern = compile_pattern("--topics", params.topics)
    return [t for t in world.source_topics
            if pattern.fullmatch(t.name) and not _INTERNAL.fullmatch(t.name) and not t.name.startswith(CANARY_PREFIX)]


def needed_secrets(params: MirrorParams, world: MirrorInput) -> list[SecretNeed]:
    return secrets_needed(params.source, world.source.namespace, world.source.security,
                          params.target, world.target.namespace, world.target.security)


def mirror_spec(params: MirrorParams, world: MirrorInput, topics: list[TopicInfo]) -> dict[str, Any]:
    """The KafkaMirrorMaker2 spec (v1 layout) the run creates."""
    name = params.resource_name
    needs = needed_secrets(params, world)
    partitions = sum(t.partitions for t in topics) + 1  # + the canary topic's one
    policy = {"replication.policy.class": IDENTITY_POLICY} if params.identity_names else {}
    groups = re.escape(canary_group(name))
    if params.groups is not None:
        groups = f"{params.groups}|{groups}"
    return {
        "version": world.target.kafka_version or "",
        "replicas": 1,
        "target": {"alias": params.target, "bootstrapServers": world.target.bootstrap,
                   **side_fields(params.target, world.target.security, needs), "groupId": f"{name}-mm2",
                   "configStorageTopic": f"{name}-mm2-config", "offsetStorageTopic": offsets_topic(name),
                   "statusStorageTopic": f"{name}-mm2-status"},
        "mirrors": [{
            "source": {"alias": params.source, "bootstrapServers": world.source.bootstrap,
                       **side_fields(params.source, world.source.security, needs)},
            "topicsPattern": f"{params.topics}|{re.escape(canary_topic(name))}",
            "groupsPattern": groups,
            "sourceConnector": {"tasksMax": min(MAX_TASKS, partitions), "autoRestart": {"enabled": True},
                                "state": "running", "config": dict(policy)},
            "checkpointConnector": {"tasksMax": 1, "autoRestart": {"enabled": True}, "state": "running",
                                    "config": {"sync.group.offsets.enabled": "true",
                                               # a new group (the canary's) is seen within a minute, not ten
                                               "refresh.groups.interval.seconds": "60", **policy}},
        }],
    }


def _refuse_input(params: MirrorParams, world: MirrorInput) -> list[TopicInfo]:
    if params.source == params.target:
        raise PlanRefused(f"the source and the target are both {params.source}: a mirror copies topics from one "
                          "managed cluster to another, so name two different clusters")
    name = params.resource_name
    if not _NAME.fullmatch(name):
        raise PlanRefused(f"{name!r} cannot name a KafkaMirrorMaker2: use 1 to 40 lowercase letters, digits and "
                          "'-', starting and ending with a letter or digit (--name)")
    if params.groups is not None:
        compile_pattern("--groups", params.groups)
    topics = matched_topics(params, world)
    if not topics:
        listed = ", ".join(t.name for t in world.source_topics if not _INTERNAL.fullmatch(t.name))[:300]
        raise PlanRefused(f"--topics {params.topics!r} matches no topic on {params.source} (the whole name must "
                          f"match); its topics are: {listed or 'none'}")
    taken = next((m for m in world.mirrors if m.name == name and m.namespace == world.target.namespace), None)
    if taken is not None:
        raise PlanRefused(f"a KafkaMirrorMaker2 named {name} already exists in {params.target}'s namespace "
                          f"{taken.namespace}: choose another --name, or `/kafka mirror remove {name}` first")
    return topics


def offsets_topic(name: str) -> str:
    """Where the mirror's Connect worker stores the source offsets it copied up to (on the target)."""
    return f"{name}-mm2-offset"


def resumes(params: MirrorParams, world: MirrorInput) -> bool:
    """Whether this mirror continues one removed before: a mirror of this name ran (its offsets topic
    is on the target, ``mirror remove`` leaves it) under DefaultReplicationPolicy, whose copies carry
    their source in their names. Its worker starts from those offsets, so copies it left take no
    record twice."""
    return not params.identity_names and offsets_topic(params.resource_name) in world.target_topics


def _refuse_clashes(params: MirrorParams, world: MirrorInput, topics: list[TopicInfo]) -> None:
    existing = set() if resumes(params, world) else set(world.target_topics)
    ours = {remote_name(params, t.name): t.name for t in topics}
    ours[remote_name(params, canary_topic(params.resource_name))] = canary_topic(params.resource_name)
    same_way = [m for m in world.mirrors if m.target_alias == params.target and m.source_alias == params.source]
    for remote, topic in sorted(ours.items()):
        covered = next((m for m in same_way if _covers(m.topics_pattern, topic)), None)
        if covered is not None:
            raise PlanRefused(f"{topic} is mirrored from {params.source} to {params.target} already, by "
                              f"KafkaMirrorMaker2 {covered.name}: two mirrors of one topic write it twice")
        if remote in existing:
            raise PlanRefused(f"{params.target} has a topic {remote} already, which is no mirror of {params.source}'s "
                              f"{topic}: mirroring would write into it. If an earlier mirror left it, set this one up "
                              "with that mirror's --name to continue from its offsets; else rename or delete it, "
                              "narrow --topics, or "
                              + ("drop --identity-names (the copies are then named " + f"{params.source}.<topic>)"
                                 if params.identity_names else "pick other topics"))
    reverse = [m for m in world.mirrors if m.source_alias == params.target and m.target_alias == params.source]
    for other in reverse:
        if not (params.identity_names or other.identity):
            continue  # DefaultReplicationPolicy names carry their origin: MirrorMaker 2 skips them going back
        looping = sorted(r for r in ours if _covers(other.topics_pattern, r))
        if looping:
            raise PlanRefused(f"this would loop: KafkaMirrorMaker2 {other.name} mirrors {params.target} back to "
                              f"{params.source} with topicsPattern {other.topics_pattern!r}, which matches "
                              f"{', '.join(looping[:5])}, and with IdentityReplicationPolicy MirrorMaker 2 cannot tell "
                              "a copy from an original; drop --identity-names or narrow one of the two patterns")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def topics_text(params: MirrorParams, topics: list[TopicInfo]) -> str:
    shown = [f"{t.name} ({_count(t.partitions, 'partition')}, {_size(t.size_bytes)}) → {remote_name(params, t.name)}"
             for t in topics[:20]]
    more = f"; and {len(topics) - 20} more" if len(topics) > 20 else ""
    return "; ".join(shown) + more


def plan(params: MirrorParams, world: MirrorInput) -> list[StepSpec]:
    topics = _refuse_input(params, world)
    _refuse_clashes(params, world, topics)
    problems = _side_problems(world.source, "source") + _side_problems(world.target, "target")
    if problems:
        raise PlanRefused("; ".join(problems))
    name, src, tgt = params.resource_name, params.source, params.target
    check_side("source", "--source-user", src, world.source.security)
    check_side("target", "--target-user", tgt, world.target.security)
    needs = needed_secrets(params, world)
    kubectl = {c: flags for c, flags in ((src, world.source.kubectl), (tgt, world.target.kubectl)) if flags}
    refuse_missing(needs, world.secrets, tgt, world.target.namespace, flags=kubectl)
    spec = mirror_spec(params, world, topics)
    canary = canary_topic(name)
    remote_canary = remote_name(params, canary)
    policy = "IdentityReplicationPolicy (names kept)" if params.identity_names else f"names {src}.<topic>"
    return [
        StepSpec(id="mirror-preflight", title=f"Pre-flight [{src}: read, {tgt}: read]: both Ready and healthy",
                 args=MirrorPreflightArgs(source=src, name=name, secrets=tuple(needs), kubectl=kubectl),
                 needs_approval=False, timeout_s=120.0,
                 summary=f"Mirrors {_count(len(topics), 'topic')}: {topics_text(params, topics)}."
                 + _secrets_text(needs, world.target.namespace)),
        StepSpec(id="create-mirror", title=f"Create KafkaMirrorMaker2 {name} [{tgt}: write; {src}: canary topic]",
                 args=CreateMirrorArgs(source=src, name=name, canary_topic=canary, spec=spec,
                                       canary_group=canary_group(name)), timeout_s=120.0,
                 compensation=f"`/kafka mirror remove {name}` deletes the resource (the copies stay).",
                 summary=f"In {tgt}'s namespace {world.target.namespace}, {policy}; "
                 + (f"continues mirror {name} removed earlier: its worker starts from the offsets in "
                    f"{offsets_topic(name)}, so the copies it left on {tgt} get no record twice; "
                    if resumes(params, world) else "")
                 + f"the topic {canary} "
                 f"(1 partition) is created on {src} first; {_count(len(topics), 'topic')} (listed in the "
                 f"pre-flight). Resource: {_resource_text(name, world.target.namespace, spec)}"),
        StepSpec(id="await-mirror", title=f"Wait for {name} Ready and every connector and task RUNNING [{tgt}: read]",
                 args=AwaitMirrorArgs(name=name, connectors=connector_names(params)), needs_approval=False,
                 timeout_s=600.0, summary="A FAILED connector or task pauses the run with its trace."),
        StepSpec(id="mirror-canary",
                 title=f"Canary: {CANARY_RECORDS} records {src} → {tgt} [{src}: write, {tgt}: read]",
                 args=MirrorCanaryArgs(source=src, canary_topic=canary, remote_topic=remote_canary),
                 needs_approval=False, timeout_s=300.0,
                 summary=f"Timestamped records to {canary} on {src}, read back from {remote_canary} on {tgt}: "
                 "latency p50/p99, records missing (any missing pauses the run)."),
        StepSpec(id="verify-checkpoints", title=f"Offsets translated: {canary_group(name)} [{src}: write, {tgt}: read]",
                 args=VerifyCheckpointsArgs(source=src, source_alias=src, group=canary_group(name),
                                            canary_topic=canary, remote_topic=remote_canary),
                 needs_approval=False, timeout_s=900.0,
                 summary=f"Commits {canary_group(name)}'s offset at the end of {canary} on {src}; done when the "
                 f"checkpoint connector's translation is in {src}.checkpoints.internal on {tgt}."),
    ]


def _secrets_text(needs: list[SecretNeed], namespace: str) -> str:
    if not needs:
        return ""  # both listeners plaintext, no authentication
    return (f" Secrets the resource mounts from {namespace} (names only; checked there): "
            + ", ".join(f"{n.name} ({n.what})" for n in needs) + ".")


def _resource_text(name: str, namespace: str, spec: dict[str, Any]) -> str:
    return json.dumps({"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaMirrorMaker2",
                       "metadata": {"name": name, "namespace": namespace},
                       "spec": spec}, sort_keys=False)


MIRROR = Runbook(
    name=RUNBOOK,
    verb="mirror",
    summary="Set up MirrorMaker 2 from one managed cluster to another, proven by a canary.",
    description="`/kafka mirror <source> <target> --topics <regex> [--groups <regex>] [--name <name>] "
    "[--identity-names] [--source-user <KafkaUser>] [--target-user <KafkaUser>] [--dry-run]`. Checks both "
    "clusters, lists the topics it will mirror and their names on the target, connects MirrorMaker 2 to each as "
    "the clusters file says (TLS, SCRAM-SHA-512 or client certificates, as the KafkaUser of --source-user / "
    "--target-user, default the bot's own) after checking the Secrets it mounts are in the target's namespace, "
    "refuses clashes and loops, creates a KafkaMirrorMaker2 in the target's namespace (approved), waits for every "
    "connector and task RUNNING, then proves it: canary records produced on the source arrive on the target "
    "(latency p50/p99, none missing) and a committed group offset is translated. "
    "`/kafka mirror status|pause|resume|remove <name>` manage it afterwards.",
    params=MirrorParams,
    world=MirrorInput,
    plan=plan,
    title=lambda params: f"MirrorMaker 2 {params.source} → {params.target} ({params.resource_name})",
    refusal=lambda cluster, params: f"Cannot set up a mirror {params.source} → {params.target}",
    stored=lambda params: params.model_dump(mode="json"),
)
