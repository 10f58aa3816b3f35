"""The generator, and the bot's judge held to Kafka's own classes, on the jars the sandbox fetches.

Each test starts a JVM (no broker): mark ``jvm``, run under the sandbox lock
(``flock /tmp/kc-sandbox.lock python -m pytest -q tests/configmodel``).

- The committed models are exactly what the generator reads from the jars now.
- For thousands of (key, value) pairs, ``runbooks.config_values.judge`` agrees with Kafka's
  ``ConfigDef.parseType`` + validator: same verdict, same message, same parsed value; it differs
  only where it is stricter on purpose (NaN and infinities).
- Every start-time rule of ``runbooks.config_checks`` fires exactly when ``KafkaConfig.fromProps``
  refuses the same broker config, with Kafka's message.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.configmodel import check_values, render, stale, start_verdicts
from bot.configmodel import generate as generate_model
from bot.sandbox.jars import KNOWN_GOOD_VERSIONS, is_fetched
from runbooks.config_checks import START_RULES, Effective
from runbooks.config_model import KeySpec, load_model
from runbooks.config_values import ValueRefused, java_text, judge

pytestmark = [pytest.mark.jvm, pytest.mark.timeout(300)]
PROJECT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", params=KNOWN_GOOD_VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    version: str = request.param
    assert is_fetched(version), f"Kafka {version}'s jars are not fetched: run `make fetch`"
    return version


def test_the_committed_model_is_what_the_jars_say(version: str) -> None:
    """Regenerating from the jars changes nothing: the data the planner uses is Kafka's, not edited."""
    generated = generate_model(version)
    committed = load_model(version)
    assert sorted(generated["keys"]) == sorted(committed.keys)
    assert not stale(version), "runbooks/config_model differs from the jars: run `make config-model`"
    assert render(generated).startswith("{\n")


def test_the_generator_runs_from_its_command_line() -> None:
    """`python -m bot.configmodel --check` (what `make config-model` runs, without writing) exits 0."""
    proc = subprocess.run([sys.executable, "-m", "bot.configmodel", "--check"], cwd=PROJECT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr


_PROBES = ("", " ", "abc", "-1", "0", "1", "+7", " 7 ", "2147483647", "2147483648", "-2147483649", "32767", "32768",
           "9223372036854775807", "9223372036854775808", "0.5", "5.", ".5", "1e3", "0x1p-1", "1.5d", "1e400", "NaN",
           "Infinity", "-Infinity", "nan", "inf", "1_000", "TRUE", "false ", "yes", "a,b", "a,,b", "a,a", " , ", "a,",
           "compact,delete", "CreateTime", "zstd", "hello world", "0x1p99999", "-1e99999", "1e-99999", "00012", "-0")


def _probes(spec: KeySpec) -> list[str]:
    values = list(_PROBES)
    validator = spec.validator
    parts = [validator, *(validator.validators if validator else ())]
    for v in parts:
        if v is None:
            continue
        for bound in (v.min, v.max):
            if isinstance(bound, int):
                values += [str(bound - 1), str(bound), str(bound + 1)]
            elif isinstance(bound, float):
                values += [repr(bound), repr(bound + 0.001), repr(bound - 0.001)]
        for allowed in v.values:
            values += [allowed, allowed.upper(), allowed.lower(), f"{allowed},{allowed}", f" {allowed} "]
    if spec.default:
        values.append(spec.default)
    return list(dict.fromkeys(values))


def _mine(key: str, value: str, spec: KeySpec) -> tuple[str | None, Any]:
    try:
        return None, judge(key, value, spec)
    except ValueRefused as refused:
        return str(refused), None


def test_the_judge_gives_kafkas_verdict_and_words(version: str) -> None:
    """Every key (but class-valued ones, whose check is the brokers' classpath) with values of every shape:
    the judge refuses what ConfigDef refuses with ConfigDef's message, and parses what it takes to the same
    value; where it differs it is stricter, and only for NaN or infinity."""
    model = load_model(version)
    pairs = [(k, v) for k, spec in model.keys.items() if spec.type not in ("CLASS", "PASSWORD")
             for v in _probes(spec) if spec.validator is None or spec.validator.kind != "custom"
             or "[" in spec.validator.text]
    kafka = check_values(version, pairs)
    assert len(kafka) == len(pairs) > 5000
    disagreements, stricter, refused = [], 0, 0
    for (key, value), verdict in zip(pairs, kafka, strict=True):
        mine, parsed = _mine(key, value, model.keys[key])
        theirs = verdict["error"]
        if theirs is None and mine is None:
            if java_text(parsed) != verdict["parsed"]:
                disagreements.append((key, value, f"parsed {java_text(parsed)!r}, Kafka {verdict['parsed']!r}"))
        elif theirs is not None and mine is not None and mine.startswith(theirs):
            refused += 1
        elif theirs is None and mine is not None and "not a finite number" in mine:
            stricter += 1
        else:
            disagreements.append((key, value, f"mine: {mine!r}; Kafka: {theirs!r}"))
    assert disagreements == []
    assert refused > 1000 and stricter > 0


# A broker config that starts (KRaft, broker role): the base every case changes.
BASE = {"process.roles": "broker", "node.id": "1", "controller.quorum.bootstrap.servers": "localhost:9093",
        "controller.listener.names": "CONTROLLER", "listeners": "PLAINTEXT://:9092",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT", "log.dirs": "/tmp/unused"}


def _pair_cases(model: Any) -> list[dict[str, str]]:
    """For each 'a <relation> b' rule: a value of a just across b's default, and one on the boundary."""
    cases: list[dict[str, str]] = []
    for rule in START_RULES:
        if len(rule.keys) != 2 or not all(k in model.keys for k in rule.keys):
            continue
        a, b = rule.keys
        other = model.keys[b].default
        if other is None or not other.lstrip("-").isdigit():
            continue
        for delta in (-1, 0, 1):
            value = str(int(other) + delta)
            if _mine(a, value, model.keys[a])[0] is None:
                cases.append({a: value})
    return cases


_CASES: list[dict[str, str | None]] = [
    {}, {"log.roll.ms": "0"}, {"log.roll.ms": "1"}, {"log.roll.hours": "1"}, {"log.roll.jitter.ms": "-1"},
    {"log.roll.jitter.ms": "0"}, {"log.retention.ms": "0"}, {"log.retention.ms": "-5"}, {"log.retention.ms": "1"},
    {"log.retention.minutes": "0"}, {"log.retention.hours": "0"}, {"log.retention.hours": "-1"},
    {"log.retention.ms": "5", "log.retention.hours": "0"}, {"log.cleaner.threads": "0"},
    {"log.cleaner.dedupe.buffer.size": "1048576"}, {"log.cleaner.dedupe.buffer.size": "1048577"},
    {"log.cleaner.dedupe.buffer.size": "4194304", "log.cleaner.threads": "4"},
    {"log.cleaner.dedupe.buffer.size": "4194305", "log.cleaner.threads": "4"},
    {"replica.fetch.wait.max.ms": "30000"}, {"replica.fetch.wait.max.ms": "30001"},
    {"replica.fetch.wait.max.ms": "31000", "replica.socket.timeout.ms": "40000"},
    {"queued.max.request.bytes": "1"}, {"queued.max.request.bytes": "104857600"}, {"queued.max.request.bytes": "0"},
    {"max.connections.per.ip": "0"}, {"max.connections.per.ip": "0", "max.connections.per.ip.overrides": "h:1"},
    {"connection.failed.authentication.delay.ms": "599999"}, {"connection.failed.authentication.delay.ms": "600000"},
    {"connection.failed.authentication.delay.ms": "600000", "connections.max.idle.ms": "-1"},
    {"share.coordinator.snapshot.update.records.per.snapshot": "500"},
]


def test_each_start_rule_fires_exactly_when_kafkaconfig_refuses(version: str) -> None:
    """KafkaConfig.fromProps on a real broker config with each case: the bot's start rules refuse the same
    cases, with Kafka's message, and pass the others (boundaries included)."""
    model = load_model(version)
    cases = [*_CASES, *_pair_cases(model)]
    verdicts = start_verdicts(version, BASE, cases)
    wrong = []
    for case, theirs in zip(cases, verdicts, strict=True):
        change = dict(case)
        eff = Effective(model, spec={}, reported=BASE, change=change)
        mine = [p for rule in START_RULES if any(k in change for k in rule.keys)
                and all(k in model.keys for k in rule.keys) and (p := rule.check(eff, None))]
        expected = None if theirs is None else theirs.split(": ", 1)[1].removeprefix("requirement failed: ")
        if expected is None and not mine:
            continue
        if expected is not None and mine and expected.split(" (")[0] in mine[0]:
            continue
        wrong.append((case, theirs, mine))
    assert wrong == []
    assert sum(v is not None for v in verdicts) > 20
