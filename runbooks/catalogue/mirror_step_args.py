"""The typed arguments of the MirrorMaker 2 runbook's five step kinds (``mirror-preflight``,
``create-mirror``, ``await-mirror``, ``mirror-canary``, ``verify-checkpoints``).

They live apart from ``runbooks.catalogue.mirror``, which plans the steps, to keep that module
within the project's size limit: the plan and its refusals stay together there, and the step
catalogue (``runbooks.catalogue.steps``) and the executors (``handlers.steps``) import the models
from here. Field names are the ones stored runs have always used: a stored record's arguments read
straight into these models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from runbooks.catalogue.mirror_security import SecretNeed
from runbooks.engine.models import StepArgs

CANARY_RECORDS = 50


class MirrorPreflightArgs(StepArgs):
    kind: Literal["mirror-preflight"] = "mirror-preflight"
    source: str
    name: str
    secrets: tuple[SecretNeed, ...] = ()  # checked again: they must still be in the target's namespace
    kubectl: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # per cluster, for the copy commands


class CreateMirrorArgs(StepArgs):
    kind: Literal["create-mirror"] = "create-mirror"
    source: str
    name: str
    canary_topic: str
    spec: dict[str, Any]
    canary_group: str = ""  # committed at 0 before the resource, so the checkpoint connector knows it from its start


class AwaitMirrorArgs(StepArgs):
    kind: Literal["await-mirror"] = "await-mirror"
    name: str
    connectors: tuple[str, ...]


class MirrorCanaryArgs(StepArgs):
    kind: Literal["mirror-canary"] = "mirror-canary"
    source: str
    canary_topic: str
    remote_topic: str
    records: int = CANARY_RECORDS
    wait_s: float = 120.0


class VerifyCheckpointsArgs(StepArgs):
    kind: Literal["verify-checkpoints"] = "verify-checkpoints"
    source: str
    source_alias: str
    group: str
    canary_topic: str
    remote_topic: str
