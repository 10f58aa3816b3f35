"""What a `/kafka` command means once parsed: the command models and the rules for their values.

The models re-check their values with the same rules the grammar applies to typed text, so a
command built from some other source (an alert's button payload, a console JSON line) cannot carry
a value the grammar would have refused. Each rule raises `InvalidValue` whose text is written for
the person who typed the value: the grammar shows it as is.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal, TypeAlias

from pydantic import AfterValidator, BaseModel, ConfigDict

__all__ = [
    "AbortCommand",
    "ApproveCommand",
    "ClustersCommand",
    "Command",
    "HelpCommand",
    "InvalidValue",
    "RestartCommand",
    "ResumeCommand",
    "RunsCommand",
    "ShowRunCommand",
    "StatusCommand",
    "broker_ids",
    "cluster_name",
    "duration",
    "quote",
    "run_id",
    "step_id",
]


class InvalidValue(ValueError):
    """A value broke a rule; the text says which rule, in words meant for the user."""


_QUOTE_LIMIT = 60


def quote(token: str) -> str:
    """Quote user input for an error message: bounded, and with control or bidi characters shown
    escaped, so that an echoed token can neither flood a chat message nor disguise itself."""
    shown = token if len(token) <= _QUOTE_LIMIT else token[: _QUOTE_LIMIT - 1] + "…"
    escaped = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in shown)
    return f'"{escaped}"'


# Kubernetes' own IsDNS1123Subdomain: each dot-separated label starts and ends alphanumeric.
_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_MAX_NAME = 253


def cluster_name(token: str) -> str:
    """A managed cluster's name, which is its Kafka resource's name in Kubernetes."""
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


_NUMBER = re.compile(r"[0-9]{1,10}")  # ASCII only: int() would also take "１" or "1_0"
_INT32_MAX = 2**31 - 1  # Kafka node ids are Java ints


def non_negative_int(token: str, noun: str = "number") -> int:
    if token.startswith("-") and _NUMBER.fullmatch(token[1:]):
        raise InvalidValue(f"{quote(token)} is not a valid {noun}: it must be 0 or more")
    if not _NUMBER.fullmatch(token) or int(token) > _INT32_MAX:
        raise InvalidValue(f"{quote(token)} is not a valid {noun}: use a whole number, 0 or more")
    return int(token)


def broker_ids(token: str) -> tuple[int, ...]:
    """A comma-separated list of broker (node) ids, e.g. 1,2. Order is kept; the runbook decides
    the order it restarts them in."""
    ids: list[int] = []
    for item in (part.strip() for part in token.split(",")):
        if not item:
            raise InvalidValue(
                f"{quote(token)} has an empty item: list broker ids separated by commas, e.g. 1,2"
            )
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
    """The inverse of `duration` (for whole seconds), used to print a command back."""
    total = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _broker_tuple(value: tuple[int, ...] | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    if not value:
        raise InvalidValue("the broker list is empty: omit --brokers to restart every broker")
    return broker_ids(",".join(str(broker) for broker in value))


ClusterName = Annotated[str, AfterValidator(cluster_name)]
RunId = Annotated[str, AfterValidator(run_id)]
StepId = Annotated[str, AfterValidator(step_id)]
BrokerIds = Annotated[tuple[int, ...] | None, AfterValidator(_broker_tuple)]


class _Command(BaseModel):
    # `kind` names the verb, so a command round-trips through JSON (console --json, audit) and an
    # adapter can look up its VerbSpec (console_only, mutating) from the command alone.
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
    brokers: BrokerIds = None  # None: every broker in the cluster
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
    step_id: StepId | None = None  # None: whichever step the run is waiting on when it is handled


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
