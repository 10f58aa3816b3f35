"""The `/kafka` verbs: their command models, the rules for their values, and the table of verbs.

Adding a verb is one model below, one entry in `VERBS` and one member of `Command` (a runbook's
entry takes its verb and help texts from its declaration in `runbooks.catalogue`); `verb_table`
checks at import that each entry agrees with its model, so a mismatch fails the bot's start, not
a user's command. Reading and writing command lines lives in `handlers.commands.grammar`.

The models re-check their values with the rules the grammar applies to typed text, so a command
built from elsewhere (an alert's button payload, a console JSON line) cannot carry a value the
grammar would refuse. A rule raises `InvalidValue` with text written for the person who typed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Literal, TypeAlias

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

from handlers.commands.alert_values import alert_id, group_id, snooze_duration
from handlers.commands.values import (
    _INT32_MAX,
    Converter,
    InvalidValue,
    broker_ids,
    closest,
    cluster_name,
    config_action,
    config_entry,
    duration,
    format_duration,
    kafka_version,
    non_negative_int,
    run_id,
    shown,
    step_id,
)
from handlers.commands.verbspec import RESERVED_OPTIONS, ArgSpec, OptionKind, OptionSpec, VerbSpec, verb_table
from handlers.replies import quote
from runbooks.catalogue.config import CONFIG
from runbooks.catalogue.rebalance_steps import DEFAULT_ENGINE, ENGINES, WHY_BOT_DEFAULT
from runbooks.catalogue.replace_broker import REPLACE_BROKER
from runbooks.catalogue.replica_steps import DEFAULT_THROTTLE
from runbooks.catalogue.restart import RESTART
from runbooks.catalogue.scale import SCALE
from runbooks.catalogue.upgrade import UPGRADE

__all__ = [
    "RESERVED_OPTIONS", "VERBS", "ArgSpec", "Command", "Converter", "InvalidValue", "OptionKind", "OptionSpec",
    "VerbSpec", "broker_ids", "closest", "cluster_name", "duration", "format_duration", "non_negative_int", "quote",
    "run_id", "step_id", "verb_table",
]

MAX_CONFIG_KEYS = 50  # per change: each key is a line of the diff the approver reads


def _broker_tuple(value: tuple[int, ...] | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not value:
        raise InvalidValue("the broker list is empty: leave out --brokers to mean every broker")
    for index, broker in enumerate(value):
        if not 0 <= broker <= _INT32_MAX:
            raise InvalidValue(f"{broker} is not a valid broker id: it must be 0 or more")
        if broker in value[:index]:
            raise InvalidValue(f"broker {broker} is listed twice")
    return value


def _broker_id(token: str) -> int:
    return non_negative_int(token, "broker id")


def _replica_count(token: str) -> int:
    return non_negative_int(token, "number of nodes")


def _pool_name(token: str) -> str:
    """A KafkaNodePool's name: a Kubernetes name like a cluster's."""
    try:
        return cluster_name(token)
    except InvalidValue:
        raise InvalidValue(f"{quote(token)} is not a valid node pool name: use lowercase letters, digits, '-' and "
                           "'.' (/kafka status <cluster> shows the brokers)") from None


def _throttle_text(token: str) -> str:
    """Kept as typed: the runbook's plan reads it and refuses a rate that is 0 or not a rate, saying why."""
    if not token.strip():
        raise InvalidValue(f"the throttle is empty: give a rate like {DEFAULT_THROTTLE}")
    return token


def _engine_name(token: str) -> str:
    if token in ENGINES:
        return token
    raise InvalidValue(f"unknown engine {quote(token)}: the engines are bot (the default: the bot's own planner) and "
                       "cruise-control (a KafkaRebalance, where the Kafka resource has spec.cruiseControl)")


def _verb_name(token: str) -> str:
    name = token.lower()
    if name in VERBS:
        return name
    suggestion = closest(name, list(VERBS))
    guess = f" (did you mean {quote(suggestion)}?)" if suggestion else ""
    raise InvalidValue(f"unknown command {quote(token)}{guess}; the commands are {', '.join(VERBS)}")


def _undo_cluster(token: str) -> str:
    """Undo names the cluster before the run, like every verb that changes a cluster: a run id in
    the cluster's place is the common slip, so say that instead of "needs <run-id>"."""
    try:
        run_id(token)
    except InvalidValue:
        return cluster_name(token)
    raise InvalidValue(f"{quote(token)} is a run id, but undo names the cluster first: undo <cluster> {token}")


# -- command models -------------------------------------------------------------------------------

ClusterName = Annotated[str, AfterValidator(cluster_name)]
RunId = Annotated[str, AfterValidator(run_id)]
StepId = Annotated[str, AfterValidator(step_id)]
BrokerIds = Annotated[tuple[int, ...] | None, AfterValidator(_broker_tuple)]
KafkaVersion = Annotated[str, AfterValidator(kafka_version)]
ConfigAction = Annotated[Literal["set", "unset"], AfterValidator(config_action)]
ConfigEntry = Annotated[str, AfterValidator(config_entry)]
GroupId = Annotated[str, AfterValidator(group_id)]
AlertId = Annotated[str, AfterValidator(alert_id)]
SnoozeDuration = Annotated[str, AfterValidator(snooze_duration)]


class _Command(BaseModel):
    # Every model has `kind`, the verb's name, so a command round-trips through JSON (console
    # --json, audit) and an adapter can find its VerbSpec (console_only, mutating) from it alone.
    model_config = ConfigDict(frozen=True, extra="forbid")


class HelpCommand(_Command):
    kind: Literal["help"] = "help"
    verb: str | None = None  # None: the overview of every verb


class ClustersCommand(_Command):
    kind: Literal["clusters"] = "clusters"


class StatusCommand(_Command):
    kind: Literal["status"] = "status"
    cluster: ClusterName


class LagCommand(_Command):
    kind: Literal["lag"] = "lag"
    cluster: ClusterName
    group: GroupId | None = None  # None: every group, the most behind first


class AlertsCommand(_Command):
    kind: Literal["alerts"] = "alerts"
    cluster: ClusterName


class SnoozeCommand(_Command):
    kind: Literal["snooze"] = "snooze"
    alert_id: AlertId
    duration: SnoozeDuration  # as text (2h, 1h30m): the model round-trips through a command line

    @property
    def length(self) -> timedelta:
        return duration(self.duration)


class RestartCommand(_Command):
    kind: Literal["restart"] = "restart"
    cluster: ClusterName
    brokers: BrokerIds = None  # None: every broker of the cluster
    dry_run: bool = False


class ReplaceBrokerCommand(_Command):
    kind: Literal["replace-broker"] = "replace-broker"
    cluster: ClusterName
    broker: Annotated[int, AfterValidator(lambda v: _broker_id(str(v)))]
    throttle: Annotated[str, AfterValidator(_throttle_text)] | None = None  # None: the default rate
    keep_data: bool = False
    engine: Annotated[str, AfterValidator(_engine_name)] | None = None  # None: the default engine
    dry_run: bool = False


class ScaleCommand(_Command):
    kind: Literal["scale"] = "scale"
    cluster: ClusterName
    pool: Annotated[str, AfterValidator(_pool_name)]
    replicas: Annotated[int, AfterValidator(lambda v: _replica_count(str(v)))]
    remove_ids: BrokerIds = None
    throttle: Annotated[str, AfterValidator(_throttle_text)] | None = None
    engine: Annotated[str, AfterValidator(_engine_name)] | None = None
    dry_run: bool = False


class UpgradeCommand(_Command):
    kind: Literal["upgrade"] = "upgrade"
    cluster: ClusterName
    version: KafkaVersion
    dry_run: bool = False


class ConfigCommand(_Command):
    kind: Literal["config"] = "config"
    cluster: ClusterName
    action: ConfigAction
    entries: tuple[ConfigEntry, ...]  # key=value for set, key for unset
    dry_run: bool = False

    @model_validator(mode="after")
    def _entries_fit_the_action(self) -> ConfigCommand:
        if not self.entries:
            raise InvalidValue(f"{self.action} needs at least one key")
        if len(self.entries) > MAX_CONFIG_KEYS:
            raise InvalidValue(f"a config change takes at most {MAX_CONFIG_KEYS} keys at once, this one has "
                               f"{len(self.entries):,}: split it into smaller changes")
        seen: set[str] = set()
        for entry in self.entries:
            key, has_value, _ = entry.partition("=")
            if self.action == "set" and not has_value:
                raise InvalidValue(f"set takes key=value pairs, e.g. {key}=<value>; {shown(entry)} has no value "
                                   f"(to remove a setting use unset {key})")
            if self.action == "unset" and has_value:
                raise InvalidValue(f"unset takes key names only, e.g. unset {key}; to give {key} a value use "
                                   f"set {shown(entry)}")
            if key in seen:
                raise InvalidValue(f"{key} is given twice: give each key once")
            seen.add(key)
        return self

    @property
    def values(self) -> dict[str, str]:
        return dict(entry.partition("=")[::2] for entry in self.entries)


class RunsCommand(_Command):
    kind: Literal["runs"] = "runs"
    cluster: ClusterName | None = None


class ShowRunCommand(_Command):
    kind: Literal["run"] = "run"
    run_id: RunId


class AbortCommand(_Command):
    kind: Literal["abort"] = "abort"
    run_id: RunId


class ResumeCommand(_Command):
    kind: Literal["resume"] = "resume"
    run_id: RunId


class UndoCommand(_Command):
    kind: Literal["undo"] = "undo"
    cluster: ClusterName
    run_id: RunId


class ApproveCommand(_Command):
    kind: Literal["approve"] = "approve"
    run_id: RunId
    step_id: StepId | None = None  # None: whichever step the run waits on when this is handled


Command: TypeAlias = (
    HelpCommand
    | ClustersCommand
    | StatusCommand
    | LagCommand
    | AlertsCommand
    | SnoozeCommand
    | RestartCommand
    | UpgradeCommand
    | ConfigCommand
    | ReplaceBrokerCommand
    | ScaleCommand
    | RunsCommand
    | ShowRunCommand
    | AbortCommand
    | ResumeCommand
    | UndoCommand
    | ApproveCommand
)


# -- the table ------------------------------------------------------------------------------------

_CLUSTER_ARG = ArgSpec(name="cluster", convert=cluster_name, hint="/kafka clusters lists them")
_RUN_ID_ARG = ArgSpec(name="run-id", convert=run_id, hint="/kafka runs lists them")
_THROTTLE = OptionSpec(
    name="--throttle", kind=OptionKind.STRING, metavar="50MiB/s", convert=_throttle_text,
    help=f"Replication rate per broker while replicas move, e.g. 100MiB/s, 10MB/s or bytes. Default "
    f"{DEFAULT_THROTTLE}: most of a 1 Gbit/s link stays free for producers and consumers (100 GiB moves in "
    "about 35 min).")
_ENGINE = OptionSpec(
    name="--engine", kind=OptionKind.STRING, metavar="bot|cruise-control", convert=_engine_name,
    help=f"Who plans the moves. Default {DEFAULT_ENGINE}: {WHY_BOT_DEFAULT}. cruise-control: "
    "a KafkaRebalance approved from Cruise Control's proposal (the Kafka resource needs spec.cruiseControl; "
    "Cruise Control's own throttle applies, not --throttle).")

VERBS: Mapping[str, VerbSpec] = verb_table(
    VerbSpec(
        name="help",
        summary="List the commands, or show one command's usage and examples.",
        command=HelpCommand,
        args=(ArgSpec(name="command", field="verb", convert=_verb_name, optional=True),),
        examples=("/kafka help", "/kafka help restart"),
    ),
    VerbSpec(
        name="clusters",
        summary="List the Kafka clusters this bot manages.",
        description="Use these names as <cluster> in the other commands.",
        command=ClustersCommand,
        examples=("/kafka clusters",),
    ),
    VerbSpec(
        name="status",
        summary="Show one cluster's health and any run in progress on it.",
        description="Readiness, brokers and the active controller, under-replicated and offline "
        "partitions. Changes nothing.",
        command=StatusCommand,
        args=(_CLUSTER_ARG,),
        examples=("/kafka status prod-east",),
    ),
    VerbSpec(
        name="lag",
        summary="Show consumer lag: every group of a cluster, or one group's partitions and members.",
        description="Lag in records and in time, from the lag monitor's latest poll. Time lag is placed on "
        "the sampled log-end line (as Kafka Lag Exporter does) or, where that cannot tell, read from the "
        "timestamp of the record at the committed offset. Groups without members are listed too.",
        command=LagCommand,
        args=(_CLUSTER_ARG, ArgSpec(name="group", convert=group_id, optional=True)),
        examples=("/kafka lag prod-east", "/kafka lag prod-east orders-app"),
    ),
    VerbSpec(
        name="alerts",
        summary="List a cluster's alerts: firing, waiting out their window, resolved recently.",
        description="Each alert has an id (a-1b2c3d4e) for /kafka snooze.",
        command=AlertsCommand,
        args=(_CLUSTER_ARG,),
        examples=("/kafka alerts prod-east",),
    ),
    VerbSpec(
        name="snooze",
        summary="Mute an alert for a while (at most 7 days); its message shows who snoozed it.",
        description="A snoozed alert posts nothing new; if it still fires when the snooze ends, it is posted "
        "then. The alert's message has Snooze buttons for 30 min, 2 h and 1 day.",
        command=SnoozeCommand,
        args=(ArgSpec(name="alert", field="alert_id", convert=alert_id, hint="/kafka alerts <cluster> lists them"),
              ArgSpec(name="duration", convert=snooze_duration, hint="e.g. 30m, 2h or 1d")),
        examples=("/kafka snooze a-1b2c3d4e 2h", "/kafka snooze a-1b2c3d4e 30m"),
    ),
    VerbSpec(
        name=RESTART.verb,
        summary=RESTART.summary,
        description=RESTART.description,
        command=RestartCommand,
        args=(_CLUSTER_ARG,),
        options=(
            OptionSpec(name="--brokers", kind=OptionKind.INT_LIST, metavar="1,2", convert=broker_ids,
                       help="Restart only these broker ids (comma-separated). Default: every broker."),
            OptionSpec(name="--dry-run", kind=OptionKind.FLAG, help="Show the plan; change nothing."),
        ),
        examples=("/kafka restart prod-east --dry-run", "/kafka restart prod-east --brokers 3,4"),
        mutating=True,
    ),
    VerbSpec(
        name=UPGRADE.verb,
        summary=UPGRADE.summary,
        description=UPGRADE.description,
        command=UpgradeCommand,
        args=(_CLUSTER_ARG, ArgSpec(name="version", convert=kafka_version, hint="e.g. 4.3.1")),
        options=(OptionSpec(name="--dry-run", kind=OptionKind.FLAG, help="Show the plan; change nothing."),),
        examples=("/kafka upgrade prod-east 4.3.1 --dry-run", "/kafka upgrade prod-east 4.3.1"),
        mutating=True,
    ),
    VerbSpec(
        name=CONFIG.verb,
        summary=CONFIG.summary,
        description=CONFIG.description,
        command=ConfigCommand,
        args=(
            _CLUSTER_ARG,
            ArgSpec(name="set|unset", field="action", convert=config_action, hint="set k=v ... or unset k ..."),
            ArgSpec(name="key[=value]", field="entries", convert=config_entry, repeat=True,
                    hint="e.g. log.retention.ms=86400000"),
        ),
        options=(OptionSpec(name="--dry-run", kind=OptionKind.FLAG, help="Show the plan; change nothing."),),
        examples=("/kafka config prod-east set log.retention.ms=86400000 --dry-run",
                  "/kafka config prod-east set num.replica.fetchers=2 log.cleaner.threads=2",
                  "/kafka config prod-east unset log.retention.ms"),
        mutating=True,
    ),
    VerbSpec(
        name=REPLACE_BROKER.verb,
        summary=REPLACE_BROKER.summary,
        description=REPLACE_BROKER.description,
        command=ReplaceBrokerCommand,
        args=(_CLUSTER_ARG, ArgSpec(name="broker", convert=_broker_id, hint="/kafka status <cluster> lists them")),
        options=(
            _THROTTLE,
            OptionSpec(name="--keep-data", kind=OptionKind.FLAG,
                       help="Replace the pod only, on the same disk (a restart with the restart's health gates)."),
            _ENGINE,
            OptionSpec(name="--dry-run", kind=OptionKind.FLAG, help="Show the plan; change nothing."),
        ),
        examples=("/kafka replace-broker prod-east 3 --dry-run",
                  "/kafka replace-broker prod-east 3 --throttle 100MiB/s",
                  "/kafka replace-broker prod-east 3 --keep-data",
                  "/kafka replace-broker prod-east 3 --engine cruise-control"),
        mutating=True,
    ),
    VerbSpec(
        name=SCALE.verb,
        summary=SCALE.summary,
        description=SCALE.description,
        command=ScaleCommand,
        args=(_CLUSTER_ARG, ArgSpec(name="pool", convert=_pool_name, hint="the KafkaNodePool's name"),
              ArgSpec(name="replicas", convert=_replica_count, hint="the pool's new number of nodes")),
        options=(
            OptionSpec(name="--remove-ids", kind=OptionKind.INT_LIST, metavar="3,4", convert=broker_ids,
                       help="Scale-down: remove these nodes of the pool first (default: its highest ids)."),
            _THROTTLE,
            _ENGINE,
            OptionSpec(name="--dry-run", kind=OptionKind.FLAG, help="Show the plan; change nothing."),
        ),
        examples=("/kafka scale prod-east brokers 4 --dry-run", "/kafka scale prod-east brokers 3 --remove-ids 1",
                  "/kafka scale prod-east brokers 5 --engine cruise-control"),
        mutating=True,
    ),
    VerbSpec(
        name="runs",
        summary="List runs in progress and recent ones, on every cluster or on one.",
        command=RunsCommand,
        args=(ArgSpec(name="cluster", convert=cluster_name, optional=True),),
        examples=("/kafka runs", "/kafka runs prod-east"),
    ),
    VerbSpec(
        name="run",
        summary="Show one run: its steps and where it stands.",
        description="To start a runbook, use its own command, e.g. /kafka restart.",
        command=ShowRunCommand,
        args=(_RUN_ID_ARG,),
        examples=("/kafka run r-7f3a09bc",),
    ),
    VerbSpec(
        name="abort",
        summary="Stop a run at the next safe point.",
        description="A step in progress is not cut off; the run stops before the next one. Done "
        "steps are not undone: where a step can be reverted, the revert is offered, never run by itself.",
        command=AbortCommand,
        args=(_RUN_ID_ARG,),
        examples=("/kafka abort r-7f3a09bc",),
        mutating=True,
    ),
    VerbSpec(
        name="resume",
        summary="Resume a paused run by retrying the step it paused on.",
        description="A run pauses when a health check fails, a step times out or an approval "
        "expires. Fix the cause first: /kafka status <cluster>.",
        command=ResumeCommand,
        args=(_RUN_ID_ARG,),
        examples=("/kafka resume r-7f3a09bc",),
        mutating=True,
    ),
    VerbSpec(
        name="undo",
        summary="Put back what a paused config change or upgrade changed: a new run, approved like any other.",
        description="For a run that paused (a broker crash-looping after the change, the operator's fatal "
        "error, a broker not back in time): restores the previous values of the keys it set in "
        "spec.kafka.config, or spec.kafka.version (metadataVersion stays pinned), then follows the operator's "
        "roll back, broken brokers first, and verifies. The undo ends the paused run and takes over its cluster "
        "lock. It may start on a cluster that is not Ready when what is wrong is the paused run's own change, "
        "and is refused, with the reason, when anything else is wrong. The card of a paused run has an Undo "
        "button that does the same.",
        command=UndoCommand,
        args=(ArgSpec(name="cluster", convert=_undo_cluster, hint="/kafka clusters lists them"), _RUN_ID_ARG),
        examples=("/kafka undo prod-east r-7f3a09bc",),
        mutating=True,
    ),
    VerbSpec(
        name="approve",
        summary="Approve the step a run is waiting on.",
        description="Console only: in Slack, approve with the run card's button. Give <step-id> to "
        "approve only the step you reviewed; without it, whichever step is waiting is approved. The "
        "same approver and four-eyes rules apply as for the button.",
        command=ApproveCommand,
        args=(_RUN_ID_ARG, ArgSpec(name="step-id", convert=step_id, optional=True)),
        examples=("approve r-7f3a09bc 3b", "approve r-7f3a09bc"),
        console_only=True,
        mutating=True,
    ),
)
