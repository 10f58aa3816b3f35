"""The `/kafka` commands as models, and the rules for their values (split from ``verbs``, which
holds the table of verbs). The models re-check their values with the rules the grammar applies to
typed text, so a command built from elsewhere (an alert's button payload, a console JSON line)
cannot carry a value the grammar would refuse. A rule raises `InvalidValue` with text written for
the person who typed it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, TypeAlias

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

from handlers.commands.alert_values import alert_id, group_id, snooze_duration
from handlers.commands.values import (
    _INT32_MAX,
    InvalidValue,
    closest,
    cluster_name,
    config_action,
    config_entry,
    duration,
    kafka_user_name,
    kafka_version,
    non_negative_int,
    run_id,
    shown,
    step_id,
)
from handlers.replies import quote
from runbooks.catalogue.rebalance_steps import ENGINES
from runbooks.catalogue.replica_steps import DEFAULT_THROTTLE

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
    from handlers.commands.verbs import VERBS  # the table names every model here: read it at call time

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
KafkaUserName = Annotated[str, AfterValidator(kafka_user_name)]
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


def _connector_name(token: str) -> str:
    """A Connect connector's name as ``status.connectors`` gives it (``east->west.MirrorSourceConnector``):
    the runbook checks it exists; here only that it is one word of printable text."""
    if not token or len(token) > 249 or not token.isprintable() or any(c.isspace() for c in token):
        raise InvalidValue(f"{shown(token)} is not a connector name: give it as /kafka mirror status shows it, "
                           "e.g. 'east->west.MirrorSourceConnector' (quoted: it contains '>')")
    return token


class MirrorRestartCommand(_Command):
    """Restart a FAILED MirrorMaker 2 connector, or one of its tasks (``runbooks.catalogue.mirror_restart``)."""

    kind: Literal["mirror-restart"] = "mirror-restart"
    cluster: ClusterName
    mirror: ClusterName  # the KafkaMirrorMaker2's name: a Kubernetes name like a cluster's
    connector: Annotated[str, AfterValidator(_connector_name)]
    task: int | None = None
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


MIRROR_ACTIONS = ("status", "pause", "resume", "remove")


class MirrorCommand(_Command):
    """``mirror <source> <target> --topics ...`` sets a mirror up; ``mirror status|pause|resume|remove
    <name>`` manages one (then ``source`` holds the action and ``target`` the mirror's name)."""

    kind: Literal["mirror"] = "mirror"
    source: ClusterName
    target: ClusterName
    topics: str | None = None
    groups: str | None = None
    name: ClusterName | None = None
    identity_names: bool = False
    source_user: KafkaUserName | None = None
    target_user: KafkaUserName | None = None
    dry_run: bool = False

    @model_validator(mode="after")
    def _one_form(self) -> MirrorCommand:
        if self.source in MIRROR_ACTIONS:
            extra = [o for o, v in (("--topics", self.topics), ("--groups", self.groups), ("--name", self.name),
                                    ("--source-user", self.source_user), ("--target-user", self.target_user))
                     if v is not None] + (["--identity-names"] if self.identity_names else [])
            if extra:
                raise InvalidValue(f"mirror {self.source} <name> takes no {', '.join(extra)}: those set a mirror up "
                                   "(/kafka mirror <source> <target> --topics <regex>)")
            return self
        if self.topics is None:
            raise InvalidValue("mirror <source> <target> needs --topics <regex>: the source topics to mirror, "
                               "e.g. --topics 'orders.*'")
        return self

    @property
    def action(self) -> str:
        """``create``, or the management action (status, pause, resume, remove)."""
        return self.source if self.source in MIRROR_ACTIONS else "create"

    @property
    def cluster(self) -> str | None:
        """The cluster the run belongs to (the target); None for the management forms, whose cluster is
        the one the named mirror is found in (the service gates those once it has found it)."""
        return self.target if self.action == "create" else None


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
    | MirrorCommand
    | MirrorRestartCommand
    | RunsCommand
    | ShowRunCommand
    | AbortCommand
    | ResumeCommand
    | UndoCommand
    | ApproveCommand
)


