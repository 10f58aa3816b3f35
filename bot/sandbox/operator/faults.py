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
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.sandbox.errors import SandboxError

START_FAILURE = "start-failure"
KINDS = (START_FAILURE,)
# Named so that the broker's log says what happened: "Class ... cannot be found".
MISSING_REPORTER = "kafka.chatops.sandbox.InjectedStartFailure"
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


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


class FaultRules:
    """The faults in force in one sandbox (shared by every cluster's pods)."""

    def __init__(self) -> None:
        self._start_failures: list[StartFailure] = []

    def add(self, rule: StartFailure) -> None:
        if rule not in self._start_failures:
            self._start_failures.append(rule)

    def clear(self) -> int:
        count, self._start_failures = len(self._start_failures), []
        return count

    def to_json(self) -> list[dict[str, str]]:
        return [r.to_json() for r in self._start_failures]

    def matching(self, rendered: Mapping[str, str]) -> StartFailure | None:
        """The first start-failure rule this node config triggers (values compared as rendered)."""
        return next((r for r in self._start_failures if rendered.get(r.key) == r.value), None)

    def start_overrides(self, rendered: Mapping[str, str]) -> dict[str, str]:
        """What to add to this one start of a node whose rendered config is ``rendered``."""
        if self.matching(rendered) is None:
            return {}
        reporters = [r for r in (rendered.get("metric.reporters") or "").split(",") if r.strip()]
        return {"metric.reporters": ",".join([*reporters, MISSING_REPORTER])}
