"""Kubernetes Secrets the operator writes (CA certificates, KafkaUser credentials) in the emulated API.

Secret ``data`` values are base64, as the Kubernetes API serves them; these helpers take and give
plain text. A Secret is only rewritten when its data or labels change, so watchers (the bot
re-reads credentials when a Secret changes) see a change only when there is one.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Mapping
from typing import Any

from bot.sandbox.kube.store import ApiError, ObjectStore
from bot.sandbox.operator import names


def encode(data: Mapping[str, str | bytes]) -> dict[str, str]:
    return {k: base64.b64encode(v if isinstance(v, bytes) else v.encode("utf-8")).decode("ascii")
            for k, v in data.items()}


def decode(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's data as text (binary values, such as a ``.p12``, are decoded as latin-1)."""
    out = {}
    for key, value in (secret.get("data") or {}).items():
        raw = base64.b64decode(value)
        try:
            out[key] = raw.decode("utf-8")
        except UnicodeDecodeError:
            out[key] = raw.decode("latin-1")
    return out


def secret_body(name: str, namespace: str, data: Mapping[str, str | bytes], *, labels: Mapping[str, str],
                annotations: Mapping[str, str] | None = None,
                owner: Mapping[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels)}
    if annotations:
        meta["annotations"] = dict(annotations)
    if owner:
        meta["ownerReferences"] = [dict(owner)]
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "data": encode(data)}


def read(store: ObjectStore, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return store.get(names.CORE_GROUP, names.SECRETS, namespace, name)
    except ApiError as e:
        if e.status != 404:
            raise
        return None


def apply(store: ObjectStore, body: dict[str, Any]) -> bool:
    """Create the Secret, or replace it when its data or labels differ; True when something was written."""
    meta = body["metadata"]
    current = read(store, meta["namespace"], meta["name"])
    if current is None:
        store.create(names.CORE_GROUP, names.SECRETS, meta["namespace"], body)
        return True
    if current.get("data") == body["data"] and (current["metadata"].get("labels") or {}) == meta["labels"]:
        return False
    updated = {**current, "data": body["data"], "type": body.get("type", "Opaque"),
               "metadata": {**current["metadata"], "labels": meta["labels"]}}
    store.replace(names.CORE_GROUP, names.SECRETS, meta["namespace"], meta["name"], updated)
    return True


def delete(store: ObjectStore, namespace: str, name: str) -> None:
    with contextlib.suppress(ApiError):
        store.delete(names.CORE_GROUP, names.SECRETS, namespace, name)
