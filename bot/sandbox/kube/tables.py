"""Server-side printing: ``meta.k8s.io`` Tables, what ``kubectl get`` asks for and prints.

kubectl sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io, ..., application/json`` and
prints the columns the server chose, hiding those with ``priority > 0`` unless ``-o wide``. The
API server always fills every column (its printers run with ``Wide: true``), and each row carries
the object as ``includeObject`` asks: ``Metadata`` (the default, a PartialObjectMetadata), ``Object``
or ``None``. Which columns a type has:

- custom resources: ``Name`` plus the CRD's ``additionalPrinterColumns``, cells computed the way
  ``apiextensions-apiserver``'s tableconvertor does (first JSONPath result; ``date`` cells become
  ages; integers as numbers; lists and maps printed as compact JSON);
- built-in types the sandbox serves: the columns of ``pkg/printers/internalversion`` (``printers.py``);
- anything else: ``Name`` and ``Created At``, the API server's default table convertor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.sandbox.kube import printers
from bot.sandbox.kube.api_errors import ApiError, bad_request
from bot.sandbox.kube.crds import CustomResourceDefinition, PrinterColumn, definition_for
from bot.sandbox.kube.jsonpath import render
from bot.sandbox.kube.resources import ResourceType

TABLE_GROUP = "meta.k8s.io"
TABLE_VERSIONS = ("v1", "v1beta1")
INCLUDE_OBJECT = ("None", "Metadata", "Object")
JSON = "application/json"


@dataclass(frozen=True)
class TableRequest:
    """A list or get answered as a Table: which Table version and what each row carries."""

    version: str
    include_object: str

    @property
    def api_version(self) -> str:
        return f"{TABLE_GROUP}/{self.version}"


def table_request(accept: str, query: Any) -> TableRequest | None:
    """The Table the Accept header asks for before plain JSON, or None; 406 if it accepts neither."""
    offered = [part.strip() for part in accept.split(",") if part.strip()]
    for media_range in offered:
        mime, _, parameter_text = media_range.partition(";")
        parameters = dict(_parameter(p) for p in parameter_text.split(";") if "=" in p)
        if mime.strip() not in (JSON, "application/*", "*/*"):
            continue
        wanted = parameters.get("as")
        if wanted is None:
            return None
        if wanted == "Table" and parameters.get("g") == TABLE_GROUP and parameters.get("v") in TABLE_VERSIONS:
            include = query.get("includeObject") or "Metadata"
            if include not in INCLUDE_OBJECT:
                raise bad_request(f'includeObject: Unsupported value: "{include}": supported values: '
                                  + ", ".join(f'"{value}"' for value in INCLUDE_OBJECT))
            return TableRequest(parameters["v"], include)
    if offered:
        raise ApiError(406, "NotAcceptable", "only the following media types are accepted: application/json, "
                       "application/json;as=Table;v=v1;g=meta.k8s.io, application/json;as=Table;v=v1beta1;"
                       "g=meta.k8s.io")
    return None


def to_table(
    request: TableRequest,
    rtype: ResourceType,
    api_version: str,
    items: list[dict[str, Any]],
    resource_version: str | None,
    *,
    with_columns: bool = True,
) -> dict[str, Any]:
    """The Table of ``items`` (objects read through ``api_version``)."""
    crd = definition_for(rtype)
    columns = _crd_columns(crd) if crd is not None else printers.columns_for(rtype)
    table: dict[str, Any] = {"kind": "Table", "apiVersion": request.api_version, "metadata": {}}
    if resource_version is not None:
        table["metadata"]["resourceVersion"] = resource_version
    table["columnDefinitions"] = columns if with_columns else []
    rows = []
    for item in items:
        cells = _crd_cells(crd, item) if crd is not None else printers.cells_for(rtype, item)
        row: dict[str, Any] = {"cells": cells}
        if request.include_object == "Metadata":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": request.api_version,
                             "metadata": item.get("metadata", {})}
        elif request.include_object == "Object":
            row["object"] = {**item, "apiVersion": api_version}
        rows.append(row)
    table["rows"] = rows
    return table


def _crd_columns(crd: CustomResourceDefinition) -> list[dict[str, Any]]:
    name = printers.column("Name", "Name must be unique within a namespace.", format="name")
    return [name] + [printers.column(c.name, c.description, type=c.type, format=c.format, priority=c.priority)
                     for c in crd.columns]


def _crd_cells(crd: CustomResourceDefinition, item: dict[str, Any]) -> list[Any]:
    return [item["metadata"]["name"]] + [_crd_cell(column, item) for column in crd.columns]


def _crd_cell(column: PrinterColumn, item: dict[str, Any]) -> Any:
    found = column.path.find(item)
    if not found or found[0] is None:
        return None
    value = found[0]
    if column.type == "string":
        return render(value)
    if column.type == "integer":
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if column.type == "number":
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if column.type == "boolean":
        return value if isinstance(value, bool) else None
    if column.type == "date":
        return printers.age(value) if isinstance(value, str) else None
    return None


def _parameter(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    return key.strip(), value.strip().strip('"')
