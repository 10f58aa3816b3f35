"""One broker config value, judged the way a Kafka broker judges it (pure).

A broker reads every value with ``ConfigDef.parseType`` (trim, then parse as the key's type) and
then runs the key's validator; a value either step refuses is a broker that will not start, or an
IncrementalAlterConfigs the brokers reject. This module does both steps from the key's entry in
Kafka's own model (``runbooks.rules.config_model``) and refuses with Kafka's own message, word for word
("Invalid value 5.0 for configuration log.cleaner.min.cleanable.ratio: Value must be no more than
1"), followed by what is valid and the default. A test holds these messages to Kafka's, run on
the jars.

Where Kafka itself accepts nonsense, the judge is stricter, and says so: NaN and infinities for a
number; digits other than 0-9 (Java's parser takes any Unicode digit).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from runbooks.rules.config_model import KeySpec, ValidatorSpec

_BOUNDS = {"SHORT": (-(2**15), 2**15 - 1), "INT": (-(2**31), 2**31 - 1), "LONG": (-(2**63), 2**63 - 1)}
_INTEGER = re.compile(r"[+-]?[0-9]+")
_UNICODE_INTEGER = re.compile(r"[+-]?\d+")
# Java's Double.parseDouble grammar (FloatingDecimal): decimal or hexadecimal, optional f/d suffix.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?")
_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+[fFdD]?")
_SPECIAL = re.compile(r"[+-]?(?:NaN|Infinity)")
_LIST_SEPARATOR = re.compile(r"[ \t\n\x0b\f\r]*,[ \t\n\x0b\f\r]*")  # Java's \s*,\s*
_RANGE_OR = re.compile(r"\[(-?\d+),\.\.\.,(-?\d+)\] or (-?\d+)")  # LambdaValidator text, e.g. gzip levels
_JAVA_NAME = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*")


class ValueRefused(Exception):
    """The value is not valid for the key; ``str()`` is the whole message."""


def java_trim(text: str) -> str:
    """``String.trim()``: strips every character up to U+0020 at both ends (not Unicode spaces)."""
    start, end = 0, len(text)
    while start < end and ord(text[start]) <= 0x20:
        start += 1
    while end > start and ord(text[end - 1]) <= 0x20:
        end -= 1
    return text[start:end]


def java_double(value: float) -> str:
    """``Double.toString``: plain between 10^-3 and 10^7, else computerized scientific notation."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    if 1e-3 <= abs(value) < 1e7:
        text = repr(value)
        return text if "." in text else f"{text}.0"
    sign, digits, exponent = Decimal(repr(value)).as_tuple()
    assert isinstance(exponent, int)
    shown = "".join(map(str, digits)).rstrip("0") or "0"
    scale = exponent + len(digits) - 1
    return f"{'-' if sign else ''}{shown[0]}.{shown[1:] or '0'}E{scale}"


def java_text(value: Any) -> str:
    """How Java prints a parsed value in a ConfigException (``Invalid value <this> for ...``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, list):
        return "[" + ", ".join(java_text(v) for v in value) + "]"
    if value is None:
        return "null"
    return str(value)


def _number(value: int | float | None) -> str:
    """A validator bound as Kafka prints it (the Number it was built with: 1 or 1.0)."""
    return java_text(value)


# A refusal quotes the value; a pasted 100 KB blob is not quoted whole. Cut the way replies cut any
# long word (handlers.replies.cap_echoes, 60 characters), so the reply does not cut it a second time.
_ECHO_MAX = 60


def echo(value: Any) -> str:
    """A value as a refusal quotes it: Java's text, cut short (with its length) if it is long."""
    text = java_text(value)
    return text if len(text) <= _ECHO_MAX else f"{text[:_ECHO_MAX - 1]}… ({len(text):,} characters)"


def _invalid(name: str, shown: Any, message: str) -> str:
    return f"Invalid value {echo(shown)} for configuration {name}: {message}"


def parse(name: str, value: str, spec: KeySpec) -> Any:
    """``ConfigDef.parseType`` for a string value; ValueRefused with Kafka's message."""
    trimmed = java_trim(value)
    kind = spec.type
    if kind == "BOOLEAN":
        if trimmed.lower() in ("true", "false"):
            return trimmed.lower() == "true"
        raise ValueRefused(_invalid(name, value, "Expected value to be either true or false"))
    if kind in _BOUNDS:
        low, high = _BOUNDS[kind]
        # Length first: Python refuses to convert over 4300 digits, and nothing that long fits a LONG.
        if len(trimmed) <= 25 and _INTEGER.fullmatch(trimmed) and low <= int(trimmed) <= high:
            return int(trimmed)
        if _UNICODE_INTEGER.fullmatch(trimmed) and not trimmed.isascii():
            raise ValueRefused(_invalid(name, value, f"write the {kind} with the digits 0-9"))
        raise ValueRefused(_invalid(name, value, f"Not a number of type {kind}"))
    if kind == "DOUBLE":
        return _parse_double(name, value, trimmed)
    if kind == "LIST":
        return [] if not trimmed else _LIST_SEPARATOR.split(trimmed)
    if kind == "CLASS" and not _JAVA_NAME.fullmatch(trimmed):
        raise ValueRefused(_invalid(name, value, f"Class {trimmed} could not be found."))
    return trimmed  # STRING, PASSWORD, and a CLASS name (whether the brokers have it is theirs to say)


def _parse_double(name: str, value: str, trimmed: str) -> float:
    if _SPECIAL.fullmatch(trimmed):
        return float(trimmed.replace("Infinity", "inf"))
    if _HEX.fullmatch(trimmed):
        body = trimmed.rstrip("fFdD")
        try:
            return float.fromhex(body)
        except OverflowError:  # Java reads a too-large hex float as an infinity
            return -math.inf if body.startswith("-") else math.inf
    if _DECIMAL.fullmatch(trimmed):
        return float(trimmed.rstrip("fFdD"))
    raise ValueRefused(_invalid(name, value, "Not a number of type DOUBLE"))


def ensure_valid(name: str, parsed: Any, validator: ValidatorSpec | None) -> None:
    """The key's validator (``ConfigDef.Validator.ensureValid``); ValueRefused with Kafka's message."""
    if validator is None:
        return
    kind = validator.kind
    if kind == "range":
        if parsed is None:
            raise ValueRefused(_invalid(name, parsed, "Value must be non-null"))
        number = float(parsed)  # Kafka compares doubleValue()s; NaN passes both tests, as in Kafka
        if validator.min is not None and number < validator.min:
            raise ValueRefused(_invalid(name, parsed, f"Value must be at least {_number(validator.min)}"))
        if validator.max is not None and number > validator.max:
            raise ValueRefused(_invalid(name, parsed, f"Value must be no more than {_number(validator.max)}"))
    elif kind == "valid_string":
        if parsed not in validator.values:
            raise ValueRefused(_invalid(name, parsed, f"String must be one of: {', '.join(validator.values)}"))
    elif kind == "case_insensitive_string":
        if str(parsed).upper() not in validator.values:
            raise ValueRefused(_invalid(name, parsed,
                                        f"String must be one of (case insensitive): {', '.join(validator.values)}"))
    elif kind == "valid_list":
        _ensure_valid_list(name, parsed, validator)
    elif kind in ("non_empty_string", "non_empty_without_control_chars"):
        if parsed is not None and not parsed:
            words = "String must be non-empty" if kind == "non_empty_string" else "String may not be empty"
            raise ValueRefused(_invalid(name, parsed, words))
    elif kind == "non_null":
        if parsed is None:
            raise ValueRefused(_invalid(name, "null", "entry must be non null"))
    elif kind == "composite":
        for part in validator.validators:
            ensure_valid(name, parsed, part)
    elif kind == "custom" and (match := _RANGE_OR.fullmatch(validator.text)):
        low, high, other = (int(g) for g in match.groups())
        if not (low <= parsed <= high or parsed == other):
            raise ValueRefused(_invalid(name, parsed, f"Value must be between {low} and {high} or equal to {other}"))
    else:
        raise ValueRefused(f"{name} is checked by Kafka with a rule this bot cannot evaluate ({validator.text or kind}"
                           f"{', ' + validator.java_class if validator.java_class else ''}): change it by hand")


_EVALUATED = frozenset({"range", "valid_string", "case_insensitive_string", "valid_list", "non_empty_string",
                        "non_empty_without_control_chars", "non_null", "composite"})


def evaluable(validator: ValidatorSpec) -> bool:
    """Whether ``ensure_valid`` knows this validator (else it refuses every value of the key)."""
    if validator.kind == "custom":
        return bool(_RANGE_OR.fullmatch(validator.text))
    return validator.kind in _EVALUATED and all(evaluable(part) for part in validator.validators)


def _ensure_valid_list(name: str, parsed: Any, validator: ValidatorSpec) -> None:
    if parsed is None:
        if not validator.null_allowed:
            raise ValueRefused(f"Configuration '{name}' values must not be null.")
        return
    values = list(parsed)
    if validator.entries_only:
        for item in values:
            if item not in validator.values:
                raise ValueRefused(_invalid(name, item, f"String must be one of: {', '.join(validator.values)}"))
        return
    if not values and not validator.empty_allowed:
        allowed = f"[{', '.join(validator.values)}]" if validator.values else "any non-empty value"
        raise ValueRefused(f"Configuration '{name}' must not be empty. Valid values include: {allowed}")
    if len(set(values)) != len(values):
        raise ValueRefused(f"Configuration '{name}' values must not be duplicated.")
    for item in values:
        if not item:
            raise ValueRefused(f"Configuration '{name}' values must not be empty.")
        if validator.values and item not in validator.values:
            raise ValueRefused(_invalid(name, item, f"String must be one of: {', '.join(validator.values)}"))


def what_is_valid(spec: KeySpec) -> str:
    """What the key takes, in words, with its default: '(valid: a finite number from 0 to 1. Default: 0.5)'."""
    default = spec.default if spec.default not in (None, "") else ("empty" if spec.default == "" else "not set")
    return f"(valid: {_describe(spec)}. Default: {default})"


def _bounds(spec: KeySpec) -> tuple[int | float | None, int | float | None]:
    low: int | float | None
    high: int | float | None
    low, high = _BOUNDS.get(spec.type, (None, None))
    found = _find(spec.validator, "range")
    if found is not None:
        low = found.min if found.min is not None and (low is None or found.min > low) else low
        high = found.max if found.max is not None and (high is None or found.max < high) else high
    return low, high


def _find(validator: ValidatorSpec | None, kind: str) -> ValidatorSpec | None:
    if validator is None:
        return None
    if validator.kind == kind:
        return validator
    return next((v for part in validator.validators if (v := _find(part, kind)) is not None), None)


def _describe(spec: KeySpec) -> str:
    kind, validator = spec.type, spec.validator
    if validator is not None and validator.kind == "custom":
        return validator.text
    if kind == "BOOLEAN":
        return "true or false"
    if kind in _BOUNDS or kind == "DOUBLE":
        low, high = _bounds(spec)
        noun = "a whole number" if kind in _BOUNDS else "a finite number"
        if low is not None and high is not None:
            return f"{noun} from {_number(low)} to {_number(high)}"
        if low is not None:
            return f"{noun} of at least {_number(low)}"
        return f"{noun} of at most {_number(high)}" if high is not None else noun
    choices = _find(validator, "valid_list") or _find(validator, "valid_string") \
        or _find(validator, "case_insensitive_string")
    if kind == "LIST":
        once = "" if choices is not None and choices.entries_only else ", each at most once"
        items = f" of {', '.join(choices.values)}{once}" if choices and choices.values else ""
        empty = "" if choices is None or choices.empty_allowed else ", not empty"
        return f"a comma-separated list{items}{empty}"
    if choices is not None and choices.values:
        case = " (any case)" if choices.kind == "case_insensitive_string" else ""
        return f"one of {', '.join(choices.values)}{case}"
    if kind == "CLASS":
        return "the name of a Java class on the brokers' classpath"
    return "non-empty text" if _find(validator, "non_empty_string") else "text"


def judge(name: str, value: str, spec: KeySpec) -> Any:
    """The value as the brokers would read it (int, float, bool, list or str), or ValueRefused with
    Kafka's message and what is valid."""
    try:
        parsed = parse(name, value, spec)
        ensure_valid(name, parsed, spec.validator)
        if spec.type == "DOUBLE" and not math.isfinite(parsed):
            raise ValueRefused(_invalid(name, value, "not a finite number (Kafka would take it, but NaN or "
                                                     "infinity means nothing here)"))
    except ValueRefused as refused:
        raise ValueRefused(f"{refused} {what_is_valid(spec)}") from None
    return parsed


def looks_like_class(item: str) -> bool:
    """A Java binary class name (the brokers load it at start; its presence is theirs to check)."""
    return bool(_JAVA_NAME.fullmatch(item)) and "." in item
