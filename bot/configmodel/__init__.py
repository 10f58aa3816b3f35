"""Kafka's broker config model, generated from the Kafka jars themselves (``make config-model``).

The config runbook judges every value the way a broker would (``runbooks.rules.config_values``), from a
model of Kafka's own ``ConfigDef``: each key's type, default, validator and whether the brokers
apply it live. That model is data committed per Kafka version in ``runbooks/rules/config_model/``; this
package writes it, by running ``BrokerConfigModel.java`` (a single-file Java program, no build) on
the jars the sandbox fetches (``bot.sandbox.jars``), so the rules come from Kafka and not from a
table someone typed. The same program also answers, with Kafka's own classes, whether a value
parses and passes its validator (``check_values``) and whether a whole broker config passes the
checks a broker makes at start (``start_verdicts``): the tests hold the Python judge to both.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from bot.sandbox import jars
from bot.sandbox.errors import SandboxError

PROGRAM = "BrokerConfigModel.java"
_TIMEOUT_S = 300.0


class ModelError(Exception):
    """The generator could not run (no jars, no java, Kafka's classes refused): the message says why."""


def model_dir() -> Path:
    """Where the committed models live: ``runbooks/config_model`` of this checkout."""
    return Path(str(resources.files("runbooks.rules.config_model")))


def model_path(version: str) -> Path:
    jars.validate_version_string(version)
    return model_dir() / f"kafka-{version}.json"


def _program() -> Path:
    with resources.as_file(resources.files("bot.configmodel").joinpath(PROGRAM)) as path:
        return Path(path)


def _java(version: str, *args: str) -> None:
    """Run the program on Kafka ``version``'s jars; ModelError with Java's own words if it fails."""
    if not jars.is_fetched(version):
        raise ModelError(f"the Kafka {version} jars are not fetched: run `make fetch` or "
                         f"`python -m bot sandbox fetch --kafka-version {version}`")
    try:
        java = jars.require_java()
    except SandboxError as exc:
        raise ModelError(str(exc)) from None
    classpath = f"{jars.libs_dir(version)}/*"
    proc = subprocess.run([java, "-cp", classpath, str(_program()), *args], capture_output=True, text=True,
                          timeout=_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise ModelError(f"{PROGRAM} on Kafka {version} exited {proc.returncode}:\n{tail}")


def generate(version: str) -> dict[str, Any]:
    """The model of Kafka ``version``, read from its jars."""
    with tempfile.TemporaryDirectory(prefix="config-model-") as tmp:
        out = Path(tmp) / "model.json"
        _java(version, "model", str(out))
        model: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    if model.get("kafka_version") != version:
        raise ModelError(f"the jars of {version} report Kafka {model.get('kafka_version')}: refetch them")
    return model


def render(model: Mapping[str, Any]) -> str:
    """The committed form: stable key order and indentation, so a regenerated file diffs cleanly."""
    return json.dumps(model, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write(version: str) -> Path:
    path = model_path(version)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(generate(version)), encoding="utf-8")
    return path


def stale(version: str) -> bool:
    """Whether the committed model differs from what the jars say now."""
    path = model_path(version)
    return not path.exists() or path.read_text(encoding="utf-8") != render(generate(version))


def check_values(version: str, pairs: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """Kafka's verdict on each (key, value): ConfigDef.parseType and the key's validator, as a broker
    runs them. Each result has ``error`` (Kafka's message, None if accepted) and ``parsed``."""
    with tempfile.TemporaryDirectory(prefix="config-check-") as tmp:
        given, out = Path(tmp) / "in.tsv", Path(tmp) / "out.jsonl"
        given.write_text("".join(f"{k}\t{v}\n" for k, v in pairs), encoding="utf-8")
        _java(version, "check", str(given), str(out))
        return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line]


def start_verdicts(version: str, base: Mapping[str, str],
                   cases: Sequence[Mapping[str, str | None]]) -> list[str | None]:
    """For each case (keys to set, or with None to remove, on top of ``base``): the error
    KafkaConfig.fromProps raises on that broker config ("Type: message"), or None if a broker
    would start with it."""
    with tempfile.TemporaryDirectory(prefix="config-start-") as tmp:
        base_file, cases_file, out = Path(tmp) / "base.properties", Path(tmp) / "cases.jsonl", Path(tmp) / "out"
        base_file.write_text("".join(f"{k}={v}\n" for k, v in base.items()), encoding="utf-8")
        cases_file.write_text("".join(json.dumps(dict(c)) + "\n" for c in cases), encoding="utf-8")
        _java(version, "start", str(base_file), str(cases_file), str(out))
        return [json.loads(line)["error"] for line in out.read_text(encoding="utf-8").splitlines() if line]
