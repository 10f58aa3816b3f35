"""Strimzi's CustomResourceDefinitions as far as the API server needs them: printer columns and schemas.

The data lives in ``bot/sandbox/strimzi-crds.yaml`` (copied from Strimzi 1.2, sources named there);
this module loads it once and checks every column's JSONPath, so a typo fails at the first request
with a message naming the column, not as an empty cell.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from bot.sandbox.kube.jsonpath import JsonPath, JsonPathError, parse
from bot.sandbox.kube.resources import ResourceType

CRD_FILE = "strimzi-crds.yaml"
COLUMN_TYPES = ("integer", "number", "string", "boolean", "date")


@dataclass(frozen=True)
class PrinterColumn:
    """One ``additionalPrinterColumns`` entry of a CRD version."""

    name: str
    type: str
    description: str
    path: JsonPath
    priority: int = 0
    format: str = ""


@dataclass(frozen=True)
class CustomResourceDefinition:
    columns: tuple[PrinterColumn, ...]
    schema: dict[str, Any]


def definition_for(rtype: ResourceType) -> CustomResourceDefinition | None:
    """The CRD of a custom resource type the sandbox serves, or None for built-in types."""
    return _definitions().get(rtype.qualified_name)


@functools.cache
def _definitions() -> dict[str, CustomResourceDefinition]:
    text = resources.files("bot.sandbox").joinpath(CRD_FILE).read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    return {name: _definition(name, crd) for name, crd in document["crds"].items()}


def _definition(name: str, crd: dict[str, Any]) -> CustomResourceDefinition:
    columns = []
    for column in crd.get("additionalPrinterColumns") or []:
        if column["type"] not in COLUMN_TYPES:
            raise ValueError(f"{CRD_FILE}: column {column['name']!r} of {name} has type {column['type']!r}; "
                             f"valid types: {', '.join(COLUMN_TYPES)}")
        try:
            path = parse(column["jsonPath"])
        except JsonPathError as error:
            raise ValueError(f"{CRD_FILE}: column {column['name']!r} of {name}: {error}") from error
        columns.append(PrinterColumn(name=column["name"], type=column["type"], description=column.get("description")
                                     or f"Custom resource definition column (in JSONPath format): "
                                     f"{column['jsonPath']}", path=path, priority=int(column.get("priority", 0)),
                                     format=column.get("format", "")))
    return CustomResourceDefinition(columns=tuple(columns), schema=crd["schema"])
