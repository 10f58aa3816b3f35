"""Faults a test injects into the twin, to see what the bot does when a change breaks a broker.

``start-failure``: while a node's rendered config contains ``KEY=VALUE``, every start of that node
(operator roll or kubelet container restart) also gets ``metric.reporters`` naming a class that does
not exist. Kafka accepts the setting when it parses its config (it is a list of names) and dies
when it instantiates the reporters during start-up, so the JVM really exits (code 1) a few seconds
after it was launched, and the kubelet crash-loops it: the harm of "a change that passes validation
but keeps a broker from starting". The setting is added to that start only: the pod's recorded
config, the operator's config diff and the config check never see it. A node already running
with ``KEY=VALUE`` is untouched until its next start; once its config no longer matches, it starts
normally again.

``mirror-task-fail``: while in force for a MirrorMaker 2 connector (``--when <connector name>``, e.g.
``east->west.MirrorSourceConnector``), every start of that connector's tasks fails: the twin hands
each Mirror connector's source consumer an ``interceptor.classes`` value through Connect's ``file``
config provider, which Connect reads again at every task start; the fault makes it a class that does
not exist, and the tasks are restarted once so it takes effect. Kafka's consumer then refuses to be
built and the task is FAILED with the real stack trace in the Connect status. Clearing the fault
empties the value again but restarts nothing: the FAILED task stays FAILED until something restarts
it (the ``strimzi.io/restart-connector(-task)`` annotations, or ``autoRestart``), as with a real
outage that has since been fixed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.sandbox.errors import SandboxError

START_FAILURE = "start-failure"
MIRROR_TASK_FAIL = "mirror-task-fail"
KINDS = (START_FAILURE, MIRROR_TASK_FAIL)
# Named so that the broker's log says what happened: "Class ... cannot be found".
MISSING_REPORTER = "kafka.chatops.sandbox.InjectedStartFailure"
MISSING_INTERCEPTOR = "kafka.chatops.sandbox.InjectedTaskFailure"
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Strimzi's Mirror connector names: <source alias>-><target alias>.Mirror{Source,Checkpoint}Connector.
_CONNECTOR_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*->[A-Za-z0-9][A-Za-z0-9._-]*\."
                           r"Mirror(Source|Checkpoint)Connector$")


@dataclass(frozen=True)
class StartFailure:
    key: str
    value: str

    def to_json(self) -> dict[str, str]:
        return {"kind": START_FAILURE, "key": self.key, "value": self.value}


def parse_condition(text: str) -> StartFailure:
    """``KEY=VALUE`` (split at the first ``=``) into a rule, or a SandboxError saying what is valid."""
    key, sep, value = str(text).partition("=")
    key = key.strip()
    if not sep or not key or not value:
        raise SandboxError(f"--when {text!r} is not KEY=VALUE: give a broker config key and the value that "
                           "makes the broker fail, e.g. --when auto.create.topics.enable=true")
    if not _KEY_RE.match(key):
        raise SandboxError(f"--when: {key!r} is not a broker config key (letters, digits, '.', '_' and '-')")
    if "\n" in value or "\r" in value:
        raise SandboxError("--when: the value must be one line")
    return StartFailure(key, value)


@dataclass(frozen=True)
class MirrorTaskFailure:
    connector: str

    def to_json(self) -> dict[str, str]:
        return {"kind": MIRROR_TASK_FAIL, "connector": self.connector}


def parse_connector(text: str) -> MirrorTaskFailure:
    """A Mirror connector name into a rule, or a SandboxError saying what is valid."""
    name = str(text).strip()
    if not _CONNECTOR_RE.match(name):
        raise SandboxError(f"--when {text!r} is not a MirrorMaker 2 connector name: give "
                           "<source alias>-><target alias>.MirrorSourceConnector (or .MirrorCheckpointConnector), "
                           "as listed in the KafkaMirrorMaker2's status.connectors, e.g. "
                           "--when 'east->west.MirrorSourceConnector'")
    return MirrorTaskFailure(name)


def parse_rule(kind: str, text: str) -> StartFailure | MirrorTaskFailure:
    if kind == MIRROR_TASK_FAIL:
        return parse_connector(text)
    if kind == START_FAILURE:
        return parse_condition(text)
    raise SandboxError(f"unknown fault kind {kind!r}; valid: {', '.join(KINDS)}")


class FaultRules:
    """The faults in force in one sandbox (shared by every cluster's pods and MirrorMaker 2 workers)."""

    def __init__(self) -> None:
        self._start_failures: list[StartFailure] = []
        self._mirror_failures: list[MirrorTaskFailure] = []

    def add(self, rule: StartFailure | MirrorTaskFailure) -> None:
        if isinstance(rule, MirrorTaskFailure):
            if rule not in self._mirror_failures:
                self._mirror_failures.append(rule)
        elif rule not in self._start_failures:
            self._start_failures.append(rule)

    def clear(self, kind: str = START_FAILURE) -> int:
        if kind == MIRROR_TASK_FAIL:
            count, self._mirror_failures = len(self._mirror_failures), []
        else:
            count, self._start_failures = len(self._start_failures), []
        return count

    def to_json(self) -> list[dict[str, str]]:
        return [*(r.to_json() for r in self._start_failures), *(r.to_json() for r in self._mirror_failures)]

    def failing_connectors(self) -> set[str]:
        """Mirror connectors whose tasks must fail at every start."""
        return {r.connector for r in self._mirror_failures}

    def matching(self, rendered: Mapping[str, str]) -> StartFailure | None:
        """The first start-failure rule this node config triggers (values compared as rendered)."""
        return next((r for r in self._start_failures if rendered.get(r.key) == r.value), None)

    def start_overrides(self, rendered: Mapping[str, str]) -> dict[str, str]:
        """What to add to this one start of a node whose rendered config is ``rendered``."""
        if self.matching(rendered) is None:
            return {}
        reporters = [r for r in (rendered.get("metric.reporters") or "").split(",") if r.strip()]
        return {"metric.reporters": ",".join([*reporters, MISSING_REPORTER])}
