"""The rolling config update: the diff against the Kafka resource, refusals, and the plan (pure).

``set k=v ...`` / ``unset k ...`` become one patch of ``spec.kafka.config``, approved with the
diff in front of the approver. What Kafka can change on a running broker (the brokers' own
``read_only`` flag from DescribeConfigs) the operator applies live, and the card says "applied
without a restart"; anything else makes the operator roll every broker, which the run follows
broker by broker (``runbooks.rules.rolls``). A removed key may go either way (Strimzi deletes a dynamic
override live, but re-renders the file if the key was written there), so its per-broker steps
accept both: a restart, or the operator finishing without one. Finally every broker is asked
through DescribeConfigs whether it runs with the new value.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from runbooks.catalogue.runbook import Runbook
from runbooks.catalogue.step_args import (
    AwaitOperatorArgs,
    ClusterCheckArgs,
    PatchKafkaArgs,
    RollExpectation,
    VerifyConfigArgs,
    edit,
    follow_steps,
)
from runbooks.engine.models import PlanRefused, StepSpec
from runbooks.rules.config_checks import Effective, cross_problems
from runbooks.rules.config_keys import (
    ConfigEntryInfo,
    is_plugin_key,
    key_problem,
    plugin_refusal,
    suggestion,
    typed_value,
    value_verdict,
)
from runbooks.rules.config_model import BrokerConfigModel, ModelMissing, model_for
from runbooks.rules.health import ClusterSnapshot, assess
from runbooks.rules.rolls import BrokerPodState, roll_summary

RUNBOOK = "config"


class ConfigParams(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: Literal["set", "unset"]
    values: dict[str, str] = {}  # set: key -> value as typed
    keys: tuple[str, ...] = ()  # unset

    @property
    def change(self) -> str:
        """The change as typed: ``set k=v ...`` or ``unset k ...``."""
        entries = [f"{k}={v}" for k, v in self.values.items()] if self.action == "set" else list(self.keys)
        return f"{self.action} {' '.join(entries)}"


class ConfigInput(BaseModel):
    """The cluster as the planner needs it, read through the ports."""

    model_config = ConfigDict(frozen=True)

    ready: bool
    not_ready_reason: str = ""
    settled: bool = True
    generation: int
    kafka_version: str | None = None
    spec_config: dict[str, Any] = {}
    brokers: tuple[BrokerPodState, ...]
    snapshot: ClusterSnapshot | None = None
    snapshot_error: str = ""
    catalogue: dict[str, ConfigEntryInfo] = {}  # every broker config of one live broker
    allowed_class_keys: frozenset[str] = frozenset()  # the clusters file's allowed_class_keys
    bootstrap: str | None = None  # the address the brokers were read at (None: none known)


class ConfigChange(BaseModel):
    """One line of the diff: the Kafka resource's value before and after, and the brokers' now."""

    model_config = ConfigDict(frozen=True)

    key: str
    before: Any = None  # None: not in spec.kafka.config
    after: Any = None  # None: removed
    on_brokers: str | None = None  # the value the brokers run with now (DescribeConfigs)
    dynamic: bool = False  # Kafka applies it live: no restart

    def line(self) -> str:
        before = "(not set)" if self.before is None else _show(self.before)
        after = "(removed)" if self.after is None else _show(self.after)
        how = "applied live, no restart" if self.dynamic else "needs a restart of every broker"
        now = f"; brokers run {self.on_brokers}" if self.on_brokers is not None else ""
        return f"{self.key}: {before} -> {after} ({how}{now})"


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _inherited_rfs(world: ConfigInput) -> list[int]:
    """Replication factors of the partitions whose topics take the broker-wide min.insync.replicas."""
    snapshot = world.snapshot
    if snapshot is None:
        return []
    default = snapshot.default_min_isr
    return [p.effective_rf for p in snapshot.partitions if snapshot.min_isr_of(p.topic) == default]


def judging_model(world: ConfigInput) -> tuple[BrokerConfigModel, str]:
    """Kafka's config model for this cluster's version, and a note if it is another patch release's."""
    try:
        return model_for(world.kafka_version)
    except ModelMissing as exc:
        raise PlanRefused(f"its config values cannot be judged: {exc}") from None


def config_diff(params: ConfigParams, world: ConfigInput) -> list[ConfigChange]:
    """The changes ``params`` make to spec.kafka.config; PlanRefused names every bad key or value, and
    every rule across keys the resulting config would break."""
    model, _ = judging_model(world)
    problems: list[str] = []
    changes: list[ConfigChange] = []
    spec = world.spec_config
    known = sorted(world.catalogue) if world.catalogue else sorted(model.keys)
    keys = list(params.values) if params.action == "set" else list(params.keys)
    judged: dict[str, str | None] = {}  # key -> its new text (None: unset), for the rules across keys
    for key in keys:
        problem = key_problem(key)
        if problem is None and key not in (world.catalogue or model.keys):
            problem = f"the brokers know no config {key!r}{suggestion(key, known)}"
        key_spec = model.keys.get(key)
        if problem is None and key_spec is None:
            problem = (f"{key} is not in Kafka {model.kafka_version}'s broker config model, so its values cannot be "
                       "judged")
        if problem is None and key_spec is not None and key_spec.type == "PASSWORD":
            problem = (f"{key} is a secret (PASSWORD): typed here it would be shown on the run card and stored in "
                       "clear in the Kafka resource; it is not changed through this command")
        if problem is None and key_spec is not None and is_plugin_key(key, key_spec) \
                and key not in world.allowed_class_keys:
            problem = plugin_refusal(key, key_spec, world.allowed_class_keys)
        if problem:
            problems.append(problem)
            continue
        info = world.catalogue.get(key)
        if params.action == "unset":
            if key not in spec:
                problems.append(f"{key} is not set in spec.kafka.config, so there is nothing to unset"
                                + (f" (the brokers use {info.value or 'the Kafka default'}, from {info.source})"
                                   if info else ""))
                continue
            judged[key] = None
            changes.append(ConfigChange(key=key, before=spec[key], after=None,
                                        on_brokers=info.value if info else None, dynamic=False))
            continue
        raw = params.values[key]
        parsed, problem = value_verdict(key, raw, key_spec)
        if problem:
            problems.append(problem)
            continue
        value = typed_value(parsed, key_spec)
        if key in spec and _show(spec[key]) == _show(value):
            problems.append(f"{key} is already {_show(value)} in spec.kafka.config")
            continue
        judged[key] = _show(value)
        live = (not info.read_only) if info is not None else (key_spec is not None and key_spec.dynamic)
        changes.append(ConfigChange(key=key, before=spec.get(key), after=value,
                                    on_brokers=info.value if info else None, dynamic=live))
    effective = Effective(model, spec=spec, reported={k: i.value for k, i in world.catalogue.items()}, change=judged)
    problems += cross_problems(model, effective, judged, brokers=len(world.brokers) or None,
                               inherited_rfs=_inherited_rfs(world))
    if problems:
        raise PlanRefused(first_problems(problems))
    return changes


SHOWN_PROBLEMS = 5


def first_problems(problems: list[str]) -> str:
    """The first few problems and how many more: a refusal stays short, however many keys were bad."""
    more = len(problems) - SHOWN_PROBLEMS
    return "; ".join(problems[:SHOWN_PROBLEMS]) + (f"; and {more} more problem{'s' * (more > 1)}" if more > 0 else "")


def broker_validation(params: ConfigParams, world: ConfigInput) -> dict[str, str]:
    """The values to ask the brokers about before the approval (IncrementalAlterConfigs with
    validate_only): the ones Kafka applies live, which only the running brokers can fully judge
    (e.g. a thread pool may change by at most a factor of two at a time)."""
    return {c.key: _show(c.after) for c in config_diff(params, world) if c.dynamic and c.after is not None}


def check_cluster(world: ConfigInput) -> None:
    if not world.ready:
        raise PlanRefused(f"the Kafka resource is not Ready ({world.not_ready_reason or 'no reason given'}): a "
                          "config change starts only from a Ready cluster")
    if not world.settled:
        raise PlanRefused("the operator has not reconciled the latest change to the Kafka resource yet")
    if world.snapshot is None:
        raise PlanRefused(f"Kafka did not answer, so its health cannot be checked: {world.snapshot_error}")
    report = assess(world.snapshot, expected_brokers=[b.id for b in world.brokers])
    if not report.ok:
        raise PlanRefused(f"the cluster is not healthy: {report.summary()}. Fix that first")


def plan_config_change(params: ConfigParams, world: ConfigInput) -> list[StepSpec]:
    changes = config_diff(params, world)
    check_cluster(world)
    _, note = judging_model(world)
    brokers = world.brokers
    edits = tuple(edit("config", c.key, value=c.after) for c in changes)
    restart = [c for c in changes if not c.dynamic]
    diff = "; ".join(c.line() for c in changes) + (f". Note: {note}" if note else "")
    steps = [StepSpec(
        id="preflight", title="Pre-flight: Ready, healthy",
        args=ClusterCheckArgs(kafka_version=world.kafka_version, brokers=tuple(b.id for b in brokers)),
        needs_approval=False,
        timeout_s=120.0)]
    undo = "; ".join(f"{c.key}: back to {'(not set)' if c.before is None else _show(c.before)}" for c in changes)
    if not restart:
        steps.append(StepSpec(
            id="patch-config", title="Patch spec.kafka.config (applied live, no restart)",
            args=PatchKafkaArgs(edits=edits, expect_generation=world.generation, wait="settled", no_roll=True),
            timeout_s=600.0,
            summary=f"Diff of spec.kafka.config: {diff}.", compensation=undo))
    else:
        with_keys = [f"{c.key}={_show(c.after)}" for c in restart if c.after is not None]
        without = [c.key for c in restart if c.after is None]
        what = " and ".join(filter(None, ("restarted with " + ", ".join(with_keys) if with_keys else "",
                                          "without " + ", ".join(without) if without else "")))
        what = what if with_keys else "restarted " + what
        steps.append(StepSpec(
            id="patch-config", title="Patch spec.kafka.config (the operator rolls every broker)",
            args=PatchKafkaArgs(edits=edits, expect_generation=world.generation,
                                expect_pods={str(b.id): b.uid for b in brokers}, wait="none"),
            timeout_s=120.0, compensation=undo,
            summary=roll_summary(brokers, world.snapshot, f"Diff of spec.kafka.config: {diff}.")))
        expect = {c.key: _show(c.after) for c in restart if c.after is not None}
        steps += follow_steps("roll", brokers, world.snapshot, what=what,
                              expect=RollExpectation(config=expect), may_skip_roll=True,
                              settle_generation=world.generation + 1)
        steps.append(StepSpec(
            id="roll-done", title="Operator done: Ready at the new generation",
            args=AwaitOperatorArgs(kafka_version=world.kafka_version, generation=world.generation + 1),
            needs_approval=False, timeout_s=600.0))
    steps.append(StepSpec(
        id="verify", title="Verify the value on every broker (DescribeConfigs)",
        args=VerifyConfigArgs(set={c.key: _show(c.after) for c in changes if c.after is not None},
                              unset=tuple(c.key for c in changes if c.after is None),
                              dynamic=tuple(c.key for c in changes if c.dynamic),
                              uids={str(b.id): b.uid for b in brokers}, brokers=tuple(b.id for b in brokers)),
        needs_approval=False, timeout_s=120.0))
    return steps


CONFIG = Runbook(
    name=RUNBOOK,
    verb="config",
    summary="Change broker configs in spec.kafka.config, rolling the brokers only if Kafka needs it.",
    description="Shows the diff against the Kafka resource, refuses keys Strimzi owns (node ids, roles, "
    "listeners, log dirs, controller quorum, ...) and invalid values with the reason, patches spec.kafka.config, "
    "follows the operator's roll broker by broker when a key needs a restart (keys Kafka applies live are "
    "reported as applied without a restart), then checks the value on every broker. --dry-run shows the plan and "
    "changes nothing.",
    params=ConfigParams,
    world=ConfigInput,
    plan=plan_config_change,
    title=lambda params: f"Config change ({params.change})",
    refusal=lambda cluster, params: f"Cannot change the config of {cluster}",
    stored=lambda params: {**params.model_dump(mode="json"), "change": params.change},
)
