"""The `/kafka` verbs: their command models, the rules for their values, and the table of verbs.

Adding a verb is one model below, one entry in `VERBS` and one member of `Command`; `verb_table`
checks at import that each entry agrees with its model, so a mismatch fails the bot's start, not
a user's command. Reading and writing command lines lives in `handlers.grammar`.

The models re-check their values with the rules the grammar applies to typed text, so a command
built from elsewhere (an alert's button payload, a console JSON line) cannot carry a value the
grammar would refuse. A rule raises `InvalidValue` with text written for the person who typed it.
"""

from __future__ import annotations

import difflib
import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Annotated, Literal, TypeAlias

from pydantic import AfterValidator, BaseModel, ConfigDict

Converter = Callable[[str], object]


class InvalidValue(ValueError):
    """A value broke a rule; the text says which rule, in words meant for the user."""


_QUOTE_LIMIT = 60


def quote(token: str) -> str:
    """Quote user input for a message: bounded, with control and bidi characters escaped, so an
    echoed token can neither flood a chat message nor disguise itself."""
    shown = token if len(token) <= _QUOTE_LIMIT else token[: _QUOTE_LIMIT - 1] + "…"
    escaped = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in shown)
    return f'"{escaped}"'


def closest(word: str, choices: list[str]) -> str | None:
    found = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return found[0] if found else None


# -- value rules ----------------------------------------------------------------------------------

# Kubernetes' own IsDNS1123Subdomain: each dot-separated label starts and ends alphanumeric.
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_MAX_NAME = 253


def cluster_name(token: str) -> str:
    """A managed cluster's name: its Kafka resource's name in Kubernetes."""
    what = f"{quote(token)} is not a valid cluster name"
    if not token:
        raise InvalidValue("the cluster name is empty")
    if len(token) > _MAX_NAME:
        raise InvalidValue(f"{what}: it has {len(token)} characters, the limit is {_MAX_NAME}")
    if _DNS1123_SUBDOMAIN.fullmatch(token):
        return token
    if re.fullmatch(r"[a-z0-9.-]+", token):
        raise InvalidValue(f"{what}: each '.'-separated part must start and end with a letter or digit")
    message = f"{what}: use lowercase letters, digits, '-' and '.'"
    # Names typed from memory are often right but for case or '_': offer the fix, never apply it.
    guess = token.lower().replace("_", "-")
    if len(guess) <= _MAX_NAME and _DNS1123_SUBDOMAIN.fullmatch(guess):
        message += f" (did you mean {quote(guess)}?)"
    raise InvalidValue(message)


_RUN_ID = re.compile(r"r-[0-9a-f]{4,32}")


def run_id(token: str) -> str:
    """A run id as the engine mints it: `r-` and lowercase hex, e.g. r-7f3a09bc."""
    if _RUN_ID.fullmatch(token):
        return token
    message = f"{quote(token)} is not a run id: run ids look like r-7f3a09bc"
    for guess in (token.lower(), "r-" + token.lower()):
        if _RUN_ID.fullmatch(guess):
            message += f" (did you mean {quote(guess)}?)"
            break
    raise InvalidValue(message)


_STEP_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,40}")


def step_id(token: str) -> str:
    """A step id as shown on a run card, e.g. 3b."""
    if _STEP_ID.fullmatch(token):
        return token
    raise InvalidValue(
        f"{quote(token)} is not a step id: step ids are up to 41 lowercase letters, digits and '-', "
        "as shown on the run card (e.g. 3b)"
    )


_NUMBER = re.compile(r"[0-9]+")  # ASCII only, as int() also takes "١" and "1_0"
_INT32_MAX = 2**31 - 1  # Kafka node ids are Java ints


def non_negative_int(token: str, noun: str = "number") -> int:
    if token.startswith("-") and _NUMBER.fullmatch(token[1:]):
        raise InvalidValue(f"{quote(token)} is not a valid {noun}: it must be 0 or more")
    if not _NUMBER.fullmatch(token):
        raise InvalidValue(f"{quote(token)} is not a valid {noun}: use a whole number, 0 or more")
    digits = token.lstrip("0") or "0"  # int() refuses over 4300 digits, leading zeros included
    if len(digits) > len(str(_INT32_MAX)) or int(digits) > _INT32_MAX:
        raise InvalidValue(f"{quote(token)} is not a valid {noun}: the largest is {_INT32_MAX}")
    return int(digits)


def broker_ids(token: str) -> tuple[int, ...]:
    """Comma-separated broker (node) ids, e.g. 1,2. The order typed is kept: the runbook, not the
    user, decides the order of restarts."""
    ids: list[int] = []
    for item in (part.strip() for part in token.split(",")):
        if not item:
            raise InvalidValue(f"{quote(token)} has an empty item: separate broker ids by commas, e.g. 1,2")
        broker = non_negative_int(item, "broker id")
        if broker in ids:
            raise InvalidValue(f"broker {broker} is listed twice in {quote(token)}")
        ids.append(broker)
    return tuple(ids)


_DURATION = re.compile(r"(?:([0-9]{1,6})d)?(?:([0-9]{1,6})h)?(?:([0-9]{1,6})m)?(?:([0-9]{1,6})s)?")


def duration(token: str) -> timedelta:
    """A positive duration written like 90s, 30m, 2h, 1d or 1h30m."""
    match = _DURATION.fullmatch(token)
    if not token or match is None:
        raise InvalidValue(f"{quote(token)} is not a duration: write it like 30m, 2h, 1d or 1h30m")
    days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    value = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if not value:
        raise InvalidValue(f"{quote(token)} is not a duration: it must be longer than zero")
    return value


def format_duration(value: timedelta) -> str:
    """The inverse of `duration`, to whole seconds."""
    total, parts = int(value.total_seconds()), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


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


def _verb_name(token: str) -> str:
    name = token.lower()
    if name in VERBS:
        return name
    suggestion = closest(name, list(VERBS))
    guess = f" (did you mean {quote(suggestion)}?)" if suggestion else ""
    raise InvalidValue(f"unknown command {quote(token)}{guess}; the commands are {', '.join(VERBS)}")


# -- command models -------------------------------------------------------------------------------

ClusterName = Annotated[str, AfterValidator(cluster_name)]
RunId = Annotated[str, AfterValidator(run_id)]
StepId = Annotated[str, AfterValidator(step_id)]
BrokerIds = Annotated[tuple[int, ...] | None, AfterValidator(_broker_tuple)]


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


class RestartCommand(_Command):
    kind: Literal["restart"] = "restart"
    cluster: ClusterName
    brokers: BrokerIds = None  # None: every broker of the cluster
    dry_run: bool = False


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


class ApproveCommand(_Command):
    kind: Literal["approve"] = "approve"
    run_id: RunId
    step_id: StepId | None = None  # None: whichever step the run waits on when this is handled


Command: TypeAlias = (
    HelpCommand
    | ClustersCommand
    | StatusCommand
    | RestartCommand
    | RunsCommand
    | ShowRunCommand
    | AbortCommand
    | ResumeCommand
    | ApproveCommand
)


# -- the table's vocabulary -----------------------------------------------------------------------


class OptionKind(enum.Enum):
    """How an option's value is read (and written back by `grammar.command_line`)."""

    FLAG = "flag"  # no value: present means True
    INT = "int"  # a whole number, 0 or more
    INT_LIST = "int-list"  # 1,2,3: whole numbers, no duplicates
    STRING = "string"
    DURATION = "duration"  # 30m, 2h, 1d, 1h30m -> timedelta


def _non_empty(token: str) -> str:
    if not token:
        raise InvalidValue("the value is empty")
    return token


_KIND_DEFAULTS: Mapping[OptionKind, tuple[Converter, str]] = {
    OptionKind.FLAG: (lambda token: True, ""),
    OptionKind.INT: (non_negative_int, "<n>"),
    OptionKind.INT_LIST: (broker_ids, "<n,...>"),
    OptionKind.STRING: (_non_empty, "<text>"),
    OptionKind.DURATION: (duration, "<30m>"),
}


@dataclass(frozen=True, kw_only=True)
class ArgSpec:
    """A positional argument: shown as <name>, read by `convert`, stored in the model's `dest`."""

    name: str
    convert: Converter
    field: str = ""  # the model field; defaults to name with '-' as '_'
    optional: bool = False
    repeat: bool = False  # takes every remaining positional, as a tuple
    hint: str = ""  # added when the argument is missing: where to find a value

    @property
    def dest(self) -> str:
        return self.field or self.name.replace("-", "_")

    @property
    def usage(self) -> str:
        shown = f"<{self.name}>" + ("..." if self.repeat else "")
        return f"[{shown}]" if self.optional else shown


@dataclass(frozen=True, kw_only=True)
class OptionSpec:
    """An option, `--name value` or `--name=value`, stored in the model's `dest`."""

    name: str
    kind: OptionKind
    help: str
    metavar: str = ""  # the value as shown in usage; defaults by kind
    convert: Converter | None = None  # defaults by kind
    field: str = ""  # the model field; defaults to the name without -- and with '-' as '_'

    @property
    def dest(self) -> str:
        return self.field or self.name.removeprefix("--").replace("-", "_")

    @property
    def usage(self) -> str:
        shown = self.metavar or _KIND_DEFAULTS[self.kind][1]
        return f"{self.name} {shown}" if shown else self.name

    def read(self, token: str) -> object:
        return (self.convert or _KIND_DEFAULTS[self.kind][0])(token)


@dataclass(frozen=True, kw_only=True)
class VerbSpec:
    """One verb: what it takes, the model it builds, and how it is explained."""

    name: str
    summary: str  # one line, for the overview
    description: str = ""  # follows the summary in the verb's own help
    command: type[BaseModel]  # built with the parsed values as its fields
    args: tuple[ArgSpec, ...] = ()
    options: tuple[OptionSpec, ...] = ()
    examples: tuple[str, ...] = ()  # whole command lines; the tests parse every one
    console_only: bool = False  # in Slack the same act is a button; an adapter may refuse the verb
    mutating: bool = False  # may change a cluster or a run (restart does, unless --dry-run)

    @property
    def usage(self) -> str:
        return " ".join(["/kafka", self.name, *(a.usage for a in self.args), *(f"[{o.usage}]" for o in self.options)])

    def option(self, name: str) -> OptionSpec | None:
        return next((option for option in self.options if option.name == name), None)


RESERVED_OPTIONS = ("--help", "-h")  # every verb takes them: they ask for the verb's help


def verb_table(*specs: VerbSpec) -> Mapping[str, VerbSpec]:
    """A read-only table of verbs in help order, each checked against its command model."""
    table: dict[str, VerbSpec] = {}
    for spec in specs:
        problem = _spec_problem(spec, table)
        if problem:
            raise ValueError(f"verb {spec.name!r}: {problem}")
        table[spec.name] = spec
    return MappingProxyType(table)


def _spec_problem(spec: VerbSpec, table: Mapping[str, VerbSpec]) -> str | None:
    if spec.name in table or not re.fullmatch(r"[a-z][a-z-]*", spec.name):
        return "duplicate or malformed name"
    if any(a.optional and not b.optional for a, b in zip(spec.args, spec.args[1:], strict=False)):
        return "a required argument follows an optional one"
    if any(arg.repeat for arg in spec.args[:-1]):
        return "only the last argument may repeat"
    if any(not re.fullmatch(r"--[a-z][a-z0-9-]*", o.name) or o.name in RESERVED_OPTIONS for o in spec.options):
        return "option names are --lowercase-words, and --help is built in"
    dests = [arg.dest for arg in spec.args] + [option.dest for option in spec.options]
    fields = spec.command.model_fields
    required = {name for name, info in fields.items() if info.is_required()}
    if len(set(dests)) != len(dests) or not set(dests) <= set(fields) or not required <= set(dests):
        return f"arguments and options {dests} do not match the fields of {spec.command.__name__}"
    if "kind" in fields and fields["kind"].default != spec.name:
        return f"{spec.command.__name__}.kind is not {spec.name!r}"
    return None


# -- the table ------------------------------------------------------------------------------------

_CLUSTER_ARG = ArgSpec(name="cluster", convert=cluster_name, hint="/kafka clusters lists them")
_RUN_ID_ARG = ArgSpec(name="run-id", convert=run_id, hint="/kafka runs lists them")

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
        name="restart",
        summary="Rolling restart, one broker at a time, each step approved.",
        description="Non-controller brokers first, the active controller last. Each approval request "
        "shows the partitions that restarting that broker would leave below min.insync.replicas. "
        "--dry-run shows the plan and changes nothing.",
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
