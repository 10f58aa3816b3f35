"""The `/kafka` verbs: the table of verbs (``VERBS``), each entry naming its command model
(``handlers.commands.command_models``) and its arguments and options.

Adding a verb is one model in ``command_models``, one entry in `VERBS` and one member of `Command`
(a runbook's entry takes its verb and help texts from its declaration in `runbooks.catalogue`);
`verb_table` checks at import that each entry agrees with its model, so a mismatch fails the bot's
start, not a user's command. Reading and writing command lines lives in `handlers.commands.grammar`.
"""

from __future__ import annotations

from collections.abc import Mapping

from handlers.commands.alert_values import alert_id, group_id, snooze_duration
from handlers.commands.command_models import (
    MAX_CONFIG_KEYS,
    AbortCommand,
    AlertId,
    AlertsCommand,
    ApproveCommand,
    BrokerIds,
    ClusterName,
    ClustersCommand,
    Command,
    ConfigAction,
    ConfigCommand,
    ConfigEntry,
    GroupId,
    HelpCommand,
    KafkaVersion,
    LagCommand,
    MirrorCommand,
    MirrorRestartCommand,
    ReplaceBrokerCommand,
    RestartCommand,
    ResumeCommand,
    RunId,
    RunsCommand,
    ScaleCommand,
    ShowRunCommand,
    SnoozeCommand,
    SnoozeDuration,
    StatusCommand,
    StepId,
    UndoCommand,
    UpgradeCommand,
    _broker_id,
    _connector_name,
    _engine_name,
    _pool_name,
    _replica_count,
    _throttle_text,
    _undo_cluster,
    _verb_name,
)
from handlers.commands.values import (
    Converter,
    InvalidValue,
    broker_ids,
    closest,
    cluster_name,
    config_action,
    config_entry,
    duration,
    format_duration,
    kafka_user_name,
    kafka_version,
    non_negative_int,
    run_id,
    step_id,
)
from handlers.commands.verbspec import RESERVED_OPTIONS, ArgSpec, OptionKind, OptionSpec, VerbSpec, verb_table
from handlers.replies import quote
from runbooks.catalogue.config import CONFIG
from runbooks.catalogue.mirror import MIRROR
from runbooks.catalogue.mirror_restart import MIRROR_RESTART
from runbooks.catalogue.rebalance_steps import DEFAULT_ENGINE, WHY_BOT_DEFAULT
from runbooks.catalogue.replace_broker import REPLACE_BROKER
from runbooks.catalogue.replica_steps import DEFAULT_THROTTLE
from runbooks.catalogue.restart import RESTART
from runbooks.catalogue.scale import SCALE
from runbooks.catalogue.upgrade import UPGRADE

__all__ = [
    "MAX_CONFIG_KEYS",
    "RESERVED_OPTIONS",
    "VERBS",
    "AbortCommand",
    "AlertId",
    "AlertsCommand",
    "ApproveCommand",
    "ArgSpec",
    "BrokerIds",
    "ClusterName",
    "ClustersCommand",
    "Command",
    "ConfigAction",
    "ConfigCommand",
    "ConfigEntry",
    "Converter",
    "GroupId",
    "HelpCommand",
    "InvalidValue",
    "KafkaVersion",
    "LagCommand",
    "MirrorCommand",
    "MirrorRestartCommand",
    "OptionKind",
    "OptionSpec",
    "ReplaceBrokerCommand",
    "RestartCommand",
    "ResumeCommand",
    "RunId",
    "RunsCommand",
    "ScaleCommand",
    "ShowRunCommand",
    "SnoozeCommand",
    "SnoozeDuration",
    "StatusCommand",
    "StepId",
    "UndoCommand",
    "UpgradeCommand",
    "VerbSpec",
    "broker_ids",
    "closest",
    "cluster_name",
    "duration",
    "format_duration",
    "non_negative_int",
    "quote",
    "run_id",
    "step_id",
    "verb_table",
]


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
        name=MIRROR.verb,
        summary=MIRROR.summary,
        description=MIRROR.description,
        command=MirrorCommand,
        args=(ArgSpec(name="source", convert=cluster_name, hint="the source cluster, or status|pause|resume|remove"),
              ArgSpec(name="target", convert=cluster_name, hint="the target cluster, or the mirror's name")),
        options=(
            OptionSpec(name="--topics", kind=OptionKind.STRING, metavar="<regex>",
                       help="The source topics to mirror: a regular expression the whole name must match."),
            OptionSpec(name="--groups", kind=OptionKind.STRING, metavar="<regex>",
                       help="The consumer groups whose offsets are translated to the target."),
            OptionSpec(name="--name", kind=OptionKind.STRING, metavar="<name>", convert=cluster_name,
                       help="The KafkaMirrorMaker2's name. Default <source>-to-<target>."),
            OptionSpec(name="--identity-names", kind=OptionKind.FLAG,
                       help="Keep the topic names on the target (IdentityReplicationPolicy); default "
                       "<source>.<topic>."),
            OptionSpec(name="--source-user", kind=OptionKind.STRING, metavar="<KafkaUser>", convert=kafka_user_name,
                       help="The source's KafkaUser MirrorMaker 2 authenticates as (its Secret, copied to the "
                       "target's namespace). Default the bot's own kafka_user; a dedicated user is better."),
            OptionSpec(name="--target-user", kind=OptionKind.STRING, metavar="<KafkaUser>", convert=kafka_user_name,
                       help="The target's KafkaUser MirrorMaker 2 authenticates as. Default the bot's own "
                       "kafka_user; a dedicated user is better."),
            OptionSpec(name="--dry-run", kind=OptionKind.FLAG, help="Show the plan; change nothing."),
        ),
        examples=("/kafka mirror prod-east prod-west --topics 'orders.*' --groups billing --dry-run",
                  "/kafka mirror prod-east prod-west --topics 'orders.*' --source-user mm2 --target-user mm2",
                  "/kafka mirror prod-east prod-west --topics 'orders|payments' --identity-names",
                  "/kafka mirror status prod-east-to-prod-west", "/kafka mirror pause prod-east-to-prod-west",
                  "/kafka mirror remove prod-east-to-prod-west"),
        mutating=True,
    ),
    VerbSpec(
        name=MIRROR_RESTART.verb,
        summary=MIRROR_RESTART.summary,
        description=MIRROR_RESTART.description,
        command=MirrorRestartCommand,
        args=(_CLUSTER_ARG,
              ArgSpec(name="mirror", convert=cluster_name, hint="the KafkaMirrorMaker2's name"),
              ArgSpec(name="connector", convert=_connector_name, hint="e.g. 'east->west.MirrorSourceConnector'")),
        options=(
            OptionSpec(name="--task", kind=OptionKind.INT, metavar="0",
                       help="Restart only this task of the connector. Default: the connector and its FAILED tasks."),
            OptionSpec(name="--dry-run", kind=OptionKind.FLAG, help="Show the plan; change nothing."),
        ),
        examples=("/kafka mirror-restart prod-west dr 'east->west.MirrorSourceConnector' --task 0",
                  "/kafka mirror-restart prod-west dr 'east->west.MirrorCheckpointConnector'"),
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
