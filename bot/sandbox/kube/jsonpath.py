"""The part of Kubernetes' JSONPath that CRD printer columns use, evaluated like ``k8s.io/client-go/util/jsonpath``.

A column's ``jsonPath`` is a chain of steps: ``.field`` (``\\.`` escapes a dot inside a name, as in
``.metadata.labels.strimzi\\.io/cluster``), ``[*]``, ``[N]`` and the filter ``[?(@.key=="value")]``
(also ``!=``; the value in single or double quotes, or a bare number). Missing keys yield no result
(the API server sets ``AllowMissingKeys(true)`` for printer columns); anything else is refused with
a ``JsonPathError`` naming the problem, so a bad column fails loudly at import, not per request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Step = Callable[[Any], list[Any]]
_FILTER = re.compile(r"""\[\?\(@\.([A-Za-z0-9_.\-]+)\s*(==|!=)\s*("[^"]*"|'[^']*'|-?\d+(?:\.\d+)?)\)\]""")
_INDEX = re.compile(r"\[(-?\d+)\]")


class JsonPathError(ValueError):
    pass


@dataclass(frozen=True)
class JsonPath:
    text: str
    steps: tuple[Step, ...]

    def find(self, obj: Any) -> list[Any]:
        """Every value the path reaches in ``obj``, in document order."""
        values = [obj]
        for step in self.steps:
            values = [found for value in values for found in step(value)]
        return values


def parse(text: str) -> JsonPath:
    """Parse a printer column path; ``{...}`` braces, as kubectl writes them, are accepted too."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    steps: list[Step] = []
    position = 0
    while position < len(body):
        if body[position] == ".":
            name, position = _field_name(body, position + 1)
            steps.append(_field(name))
        elif body.startswith("[*]", position):
            steps.append(_every)
            position += 3
        elif (index := _INDEX.match(body, position)) is not None:
            steps.append(_item(int(index.group(1))))
            position = index.end()
        elif (condition := _FILTER.match(body, position)) is not None:
            key, operator, literal = condition.groups()
            steps.append(_filter(tuple(key.split(".")), operator == "!=", _literal(literal)))
            position = condition.end()
        else:
            raise JsonPathError(f"unsupported JSONPath {text!r} at {body[position:]!r}: use .field, [*], [N] "
                                f'or [?(@.key=="value")]')
    return JsonPath(text, tuple(steps))


def render(value: Any) -> str:
    """A value as ``jsonpath.PrintResults`` prints it: strings bare, lists and maps as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=isinstance(value, dict))
    return str(value)


def _field_name(body: str, start: int) -> tuple[str, int]:
    name: list[str] = []
    position = start
    while position < len(body) and body[position] not in ".[":
        if body[position] == "\\" and position + 1 < len(body):
            position += 1
        name.append(body[position])
        position += 1
    if not name:
        raise JsonPathError(f"unsupported JSONPath {body!r}: an empty field name at {start} (recursive descent "
                            "'..' is not supported)")
    return "".join(name), position


def _literal(text: str) -> Any:
    if text[0] in "\"'":
        return text[1:-1]
    return float(text) if "." in text else int(text)


def _field(name: str) -> Step:
    def step(value: Any) -> list[Any]:
        return [value[name]] if isinstance(value, dict) and name in value else []

    return step


def _every(value: Any) -> list[Any]:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return [value[key] for key in sorted(value)]
    return []


def _item(index: int) -> Step:
    def step(value: Any) -> list[Any]:
        if isinstance(value, list) and -len(value) <= index < len(value):
            return [value[index]]
        return []

    return step


def _filter(key: tuple[str, ...], negated: bool, wanted: Any) -> Step:
    def matches(element: Any) -> bool:
        for part in key:
            if not isinstance(element, dict) or part not in element:
                return False
            element = element[part]
        return bool(element != wanted) if negated else bool(element == wanted)

    def step(value: Any) -> list[Any]:
        return [element for element in value if matches(element)] if isinstance(value, list) else []

    return step
