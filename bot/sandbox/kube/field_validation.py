"""Server-side field validation (``?fieldValidation=Strict|Warn|Ignore``), what ``kubectl apply`` relies on.

kubectl (1.27+) validates nothing itself when the server's OpenAPI says it takes ``fieldValidation``
on PATCH (``openapi.py`` says so); it sends ``fieldValidation=Strict`` by default. Unknown fields are
what is checked, against the CRD's schema (``strimzi-crds.yaml``): under Strict they are refused
with 400 and the API server's wording (``strict decoding error: unknown field "spec.x"``), under Warn
accepted with a ``Warning`` header each, under Ignore accepted. Built-in types have no schema here
and are not checked. The schemas are trimmed copies that leave most objects open
(``x-kubernetes-preserve-unknown-fields``): an unknown field inside such an object is accepted.

A merge patch is checked as the partial object it is; JSON patches are not checked.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from bot.sandbox.kube.api_errors import bad_request
from bot.sandbox.kube.crds import definition_for
from bot.sandbox.kube.resources import ResourceType

MODES = ("Strict", "Warn", "Ignore")


def field_validation_mode(query: Any) -> str:
    """The ``fieldValidation`` asked for (default Warn, as the API server's default)."""
    mode = query.get("fieldValidation") or "Warn"
    if mode not in MODES:
        raise bad_request(f'fieldValidation: Unsupported value: "{mode}": supported values: '
                          + ", ".join(f'"{value}"' for value in MODES))
    return mode


def check_fields(rtype: ResourceType, version: str, body: Any, mode: str) -> list[str]:
    """Warnings to send back for ``body``; under Strict a 400 instead, naming every unknown field."""
    crd = definition_for(rtype)
    if mode == "Ignore" or crd is None or not isinstance(body, dict):
        return []
    fields = {key: value for key, value in body.items() if key not in ("apiVersion", "kind", "metadata")}
    unknown = [f'unknown field "{path}"' for path in _unknown_fields(fields, crd.schema, "")]
    if unknown and mode == "Strict":
        listed = unknown[0] if len(unknown) == 1 else "[" + ", ".join(unknown) + "]"
        raise bad_request(f'{rtype.kind} in version "{version}" cannot be handled as a {rtype.kind}: '
                          f"strict decoding error: {listed}")
    return unknown


def _unknown_fields(value: Any, schema: dict[str, Any], path: str) -> Iterator[str]:
    if isinstance(value, dict):
        properties = schema.get("properties")
        open_object = schema.get("x-kubernetes-preserve-unknown-fields") or "additionalProperties" in schema
        for key, child in value.items():
            child_path = f"{path}.{key}" if path else key
            if properties is not None and key in properties:
                yield from _unknown_fields(child, properties[key], child_path)
            elif properties is not None and not open_object:
                yield child_path
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from _unknown_fields(item, schema["items"], f"{path}[{index}]")


def warning_headers(warnings: list[str]) -> list[tuple[str, str]]:
    """``Warning: 299 - "<text>"`` headers, as the API server sends them (kubectl prints each)."""
    return [("Warning", '299 - "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"') for text in warnings]
