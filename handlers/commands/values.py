"""The rules for the values typed in `/kafka` commands: each reads one word and either returns
the value or raises `InvalidValue` with text written for the person who typed it.

Shared by the grammar (typed text) and the command models (which re-check values built
elsewhere, e.g. a button payload), so both refuse exactly the same things.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from datetime import timedelta

from handlers.replies import ECHO_LIMIT, quote

Converter = Callable[[str], object]


class InvalidValue(ValueError):
    """A value broke a rule; the text says which rule, in words meant for the user."""




def shown(token: str) -> str:
    """``quote(token)``, and its length when it had to be cut: what was typed, recognisably and
    boundedly (a 100 KB key is shown as its start, an ellipsis and "(100,000 characters)")."""
    return quote(token) + (f" ({len(token):,} characters)" if len(token) > ECHO_LIMIT else "")


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


def kafka_user_name(token: str) -> str:
    """A KafkaUser's name (its Secret has the same name): a Kubernetes name, as a cluster's."""
    try:
        return cluster_name(token)
    except InvalidValue as exc:
        # the cluster rule's words, about a KafkaUser: "is not a valid KafkaUser name: use ..."
        raise InvalidValue(str(exc).replace("is not a valid cluster name", "is not a valid KafkaUser name")
                           .replace("the cluster name is empty", "the KafkaUser name is empty")) from None


_RUN_ID = re.compile(r"r-[0-9a-f]{4,32}")


def prefixed_id(token: str, pattern: re.Pattern[str], *, prefix: str, what: str, example: str,
                hint: str = "") -> str:
    """``token`` if it matches ``pattern`` (ids like ``r-7f3a09bc``); else InvalidValue showing the
    shape, and the id meant when only the case or the ``prefix`` was off."""
    if pattern.fullmatch(token):
        return token
    article = "an" if what[0] in "aeiou" else "a"
    message = f"{quote(token)} is not {article} {what}: {what}s look like {example}{hint}"
    for guess in (token.lower(), prefix + token.lower()):
        if pattern.fullmatch(guess):
            message += f" (did you mean {quote(guess)}?)"
            break
    raise InvalidValue(message)


def run_id(token: str) -> str:
    """A run id as the engine mints it: `r-` and lowercase hex, e.g. r-7f3a09bc."""
    return prefixed_id(token, _RUN_ID, prefix="r-", what="run id", example="r-7f3a09bc")


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


def span(token: str) -> timedelta | None:
    """A duration written like 90s, 30m, 2h, 1d or 1h30m (zero included); None if it is not one."""
    match = _DURATION.fullmatch(token)
    if not token or match is None:
        return None
    days, hours, minutes, seconds = (int(group or 0) for group in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def duration(token: str) -> timedelta:
    """A positive duration written like 90s, 30m, 2h, 1d or 1h30m."""
    value = span(token)
    if value is None:
        raise InvalidValue(f"{quote(token)} is not a duration: write it like 30m, 2h, 1d or 1h30m")
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


# -- the upgrade and config verbs ---------------------------------------------------------------

_VERSION = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")


def kafka_version(token: str) -> str:
    """A Kafka release as Strimzi names it in spec.kafka.version, e.g. 4.3.1. Whether this
    cluster's operator supports it is the runbook's question, not the grammar's."""
    if _VERSION.fullmatch(token):
        return token
    message = f"{quote(token)} is not a Kafka version: write it like 4.3.1"
    guess = token.strip().lower().removeprefix("kafka-").removeprefix("v")
    if guess != token and _VERSION.fullmatch(guess):
        message += f" (did you mean {quote(guess)}?)"
    raise InvalidValue(message)


CONFIG_ACTIONS = ("set", "unset")


def config_action(token: str) -> str:
    if token in CONFIG_ACTIONS:
        return token
    suggestion = closest(token.lower(), list(CONFIG_ACTIONS))
    guess = f" (did you mean {quote(suggestion)}?)" if suggestion else ""
    raise InvalidValue(f"{quote(token)} is not an action: use set k=v [k=v ...] or unset k [k ...]{guess}")


_CONFIG_KEY = re.compile(r"[a-z][a-z0-9]*(?:[._-][a-z0-9]+)*")
_CONFIG_KEY_LIMIT = 255  # Kafka's longest names (listener-prefixed SASL keys) are far shorter
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def config_entry(token: str) -> str:
    """`key=value` (for set) or `key` (for unset): a Kafka config name, and a value without control
    characters. Which of the two forms is needed depends on the action: the command model checks."""
    key, has_value, value = token.partition("=")
    if len(key) > _CONFIG_KEY_LIMIT:
        raise InvalidValue(f"{shown(key)} is not a Kafka config name: names have at most {_CONFIG_KEY_LIMIT} "
                           "characters, e.g. log.retention.ms")
    if not _CONFIG_KEY.fullmatch(key):
        raise InvalidValue(f"{quote(key or token)} is not a Kafka config name: names are lowercase words joined "
                           "by '.', e.g. log.retention.ms")
    if has_value and not value:
        raise InvalidValue(f"{quote(token)} has no value after '=': to remove a setting use unset {key}")
    if _CONTROL.search(value):
        raise InvalidValue(f"the value of {key} contains a control character (e.g. a newline), which is never "
                           "valid in a broker config")
    return token
