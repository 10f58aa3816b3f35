"""Label and field selectors, parsed and matched the way ``k8s.io/apimachinery`` does.

Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``, ``k notin (a,b)``,
``k>1``, ``k<1``, comma-separated and ANDed. ``!=`` and ``notin`` also match objects that lack the
label, as on a real cluster.

Field selectors: ``path=v``, ``path==v``, ``path!=v``. The real API accepts only a few fields per
type (``metadata.name``, ``metadata.namespace`` everywhere, ``status.phase`` on pods...); this one
accepts any dotted path, which is more lenient than a cluster, never stricter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.sandbox.kube.api_errors import ApiError, bad_request

_LABEL_TOKEN = re.compile(r"\s*(==|!=|=|!|\(|\)|,|>|<|[^\s=!(),<>]+)")
# A qualified name with an optional DNS prefix, as in ``strimzi.io/cluster``.
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

EXISTS = "exists"
DOES_NOT_EXIST = "!"
EQUALS = "="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
GREATER_THAN = ">"
LESS_THAN = "<"


@dataclass(frozen=True)
class LabelRequirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == EXISTS:
            return present
        if self.operator == DOES_NOT_EXIST:
            return not present
        if self.operator in (EQUALS, IN):
            return present and value in self.values
        if self.operator in (NOT_EQUALS, NOT_IN):
            return not present or value not in self.values
        # Gt/Lt: the label must hold an integer, else the object does not match.
        try:
            actual = int(value) if value is not None else None
        except ValueError:
            return False
        if actual is None:
            return False
        bound = int(self.values[0])
        return actual > bound if self.operator == GREATER_THAN else actual < bound


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[LabelRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(requirement.matches(labels) for requirement in self.requirements)


@dataclass(frozen=True)
class FieldRequirement:
    path: tuple[str, ...]
    value: str
    negated: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        actual = _field_value(obj, self.path)
        return (actual != self.value) if self.negated else (actual == self.value)


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(requirement.matches(obj) for requirement in self.requirements)


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse a ``labelSelector`` query value; a malformed one is a 400, as on a real cluster."""
    if not text or not text.strip():
        return LabelSelector()
    tokens = _tokenize_labels(text)
    requirements: list[LabelRequirement] = []
    position = 0
    while True:
        requirement, position = _parse_requirement(tokens, position, text)
        requirements.append(requirement)
        if position == len(tokens):
            return LabelSelector(tuple(requirements))
        if tokens[position] != ",":
            raise _selector_error(text, f"expected ',' but found {tokens[position]!r}")
        position += 1


def parse_field_selector(text: str | None) -> FieldSelector:
    """Parse a ``fieldSelector`` query value (``\\`` escapes ``,``, ``=`` and ``!`` in values)."""
    if not text or not text.strip():
        return FieldSelector()
    requirements = []
    for term in _split_unescaped(text, ","):
        requirements.append(_parse_field_term(term, text))
    return FieldSelector(tuple(requirements))


def _tokenize_labels(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _LABEL_TOKEN.match(text, position)
        if match is None:
            raise _selector_error(text, f"unexpected character at {position}")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def _parse_requirement(tokens: list[str], position: int, text: str) -> tuple[LabelRequirement, int]:
    def token_at(index: int) -> str | None:
        return tokens[index] if index < len(tokens) else None

    if token_at(position) == "!":
        key = _label_key(token_at(position + 1), text)
        return LabelRequirement(key, DOES_NOT_EXIST), position + 2
    key = _label_key(token_at(position), text)
    operator = token_at(position + 1)
    if operator is None or operator == ",":
        return LabelRequirement(key, EXISTS), position + 1
    if operator in ("=", "==", "!="):
        value = token_at(position + 2)
        if value is None or value == ",":
            # ``key=`` selects the empty value.
            return LabelRequirement(key, NOT_EQUALS if operator == "!=" else EQUALS, ("",)), position + 2
        return (
            LabelRequirement(key, NOT_EQUALS if operator == "!=" else EQUALS, (_label_value(value, text),)),
            position + 3,
        )
    if operator in (IN, NOT_IN):
        return _parse_set(tokens, position + 2, key, operator, text)
    if operator in (GREATER_THAN, LESS_THAN):
        value = token_at(position + 2)
        if value is None or not re.fullmatch(r"-?\d+", value):
            raise _selector_error(text, f"for '{operator}' the value must be an integer")
        return LabelRequirement(key, operator, (value,)), position + 3
    raise _selector_error(text, f"unknown operator {operator!r}")


def _parse_set(
    tokens: list[str], position: int, key: str, operator: str, text: str
) -> tuple[LabelRequirement, int]:
    if position >= len(tokens) or tokens[position] != "(":
        raise _selector_error(text, f"expected '(' after '{operator}'")
    position += 1
    values: list[str] = []
    expect_value = True
    while position < len(tokens) and tokens[position] != ")":
        token = tokens[position]
        if token == ",":
            if expect_value:
                values.append("")
            expect_value = True
        else:
            if not expect_value:
                raise _selector_error(text, f"expected ',' or ')' but found {token!r}")
            values.append(_label_value(token, text))
            expect_value = False
        position += 1
    if position >= len(tokens):
        raise _selector_error(text, "missing ')'")
    if values and expect_value:  # a trailing comma, as in ``(a,)``, adds the empty value
        values.append("")
    if not values:
        raise _selector_error(text, "for 'in', 'notin' operators, values set can't be empty")
    return LabelRequirement(key, operator, tuple(values)), position + 1


def _label_key(token: str | None, text: str) -> str:
    if token is None or not _LABEL_KEY.match(token) or len(token.rsplit("/", 1)[-1]) > 63:
        raise _selector_error(text, f"invalid label key {token!r}")
    return token


def _label_value(token: str, text: str) -> str:
    if not _LABEL_VALUE.match(token) or len(token) > 63:
        raise _selector_error(text, f"invalid label value {token!r}")
    return token


def _selector_error(text: str, why: str) -> ApiError:
    return bad_request(f"unable to parse requirement: {why} in label selector {text!r}")


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _parse_field_term(term: str, text: str) -> FieldRequirement:
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(==|!=|=)(.*)", term)
    if match is None:
        raise bad_request(f"invalid selector: {text!r}; can't understand {term!r}")
    path, operator, raw_value = match.groups()
    value = re.sub(r"\\(.)", r"\1", raw_value)
    return FieldRequirement(tuple(path.split(".")), value, negated=operator == "!=")


def _field_value(obj: Mapping[str, Any], path: tuple[str, ...]) -> str:
    current: Any = obj
    for part in path:
        if not isinstance(current, Mapping) or part not in current:
            return ""
        current = current[part]
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)
