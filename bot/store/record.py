"""The stored record of a run: the one place that knows how a run is written to Redis and read back.

A run can wait days for an approval, across bot upgrades, so what is stored is a versioned record,
not whatever the run model dumps today: ``{"schema": 1, ...the run's fields}``, flat, because the
store's scripts add the lock's ``fencing_token`` as a top-level field when they create a run.

Reading upgrades an older record step by step to the current schema before the run model sees it,
and refuses a record from a newer bot (a schema this code does not know) instead of guessing:
a field it does not understand could be the one that decides what happens next.

Schemas:
- 0 (no ``schema`` field; the bot before typed step arguments): each step's ``spec.kind`` sat
  beside ``spec.args``; it moves into ``args`` (``{"kind": ..., **args}``), where the catalogue's
  union (``runbooks.catalogue.steps``) reads it as that kind's model.
- 1: the current one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from bot.store.codec import JsonText
from bot.store.errors import StoreError
from runbooks.catalogue.steps import validate_run
from runbooks.engine.models import Run

SCHEMA = 1
SCHEMA_FIELD = "schema"


class UnreadableRecord(StoreError):
    """A stored run this bot cannot read: a newer schema, or a record that does not fit its own."""


def run_record(run: Run, *, exclude: set[str] | None = None) -> JsonText:
    """The record to store for ``run`` (``exclude``: fields the store fills in itself)."""
    body = run.model_dump_json(exclude=exclude)
    return JsonText(f'{{"{SCHEMA_FIELD}":{SCHEMA},{body[1:]}' if body != "{}" else f'{{"{SCHEMA_FIELD}":{SCHEMA}}}')


def _steps_with_kind_in_args(record: dict[str, Any]) -> dict[str, Any]:
    steps = []
    for step in record.get("steps") or []:
        spec = dict(step.get("spec") or {})
        if "kind" in spec:
            spec["args"] = {"kind": spec.pop("kind"), **(spec.get("args") or {})}
        steps.append({**step, "spec": spec})
    return {**record, "steps": steps}


# UPGRADES[n] turns a record of schema n into one of schema n + 1.
UPGRADES: Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    0: _steps_with_kind_in_args,
}


def schema_of(record: Mapping[str, Any]) -> int:
    schema = record.get(SCHEMA_FIELD, 0)
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 0:
        raise UnreadableRecord(f"run {record.get('id', '?')} has schema {schema!r}, which is not a record version")
    return schema


def load_run(record: Mapping[str, Any]) -> Run:
    """The run a stored record holds, whichever schema this bot or an older one wrote it in."""
    schema = schema_of(record)
    run_id = record.get("id", "?")
    if schema > SCHEMA:
        raise UnreadableRecord(f"run {run_id} was stored with record schema {schema} by a newer version of the bot; "
                               f"this one reads schemas up to {SCHEMA}: upgrade the bot to handle this run")
    current = {k: v for k, v in record.items() if k != SCHEMA_FIELD}
    for version in range(schema, SCHEMA):
        current = UPGRADES[version](current)
    try:
        return validate_run(current)
    except ValidationError as exc:
        raise UnreadableRecord(f"run {run_id} (record schema {schema}) does not fit the run model: {exc}") from exc
