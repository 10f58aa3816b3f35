"""The generator, and the bot's judge held to Kafka's own classes, on the jars the sandbox fetches.

Each test starts a JVM (no broker): mark ``jvm``, run under the sandbox lock
(``flock /tmp/kc-sandbox.lock python -m pytest -q tests/configmodel``).

- The committed models are exactly what the generator reads from the jars now.
- For thousands of (key, value) pairs, ``runbooks.rules.config_values.judge`` agrees with Kafka's
  ``ConfigDef.parseType`` + validator: same verdict, same message, same parsed value; it differs
  only where it is stricter on purpose (NaN and infinities).
- Every start-time rule of ``runbooks.rules.config_checks`` fires exactly when ``KafkaConfig.fromProps``
  refuses the same broker config, with Kafka's message (ZooKeeper and KRaft brokers for 3.x).

Every committed model is tested. CI fetches only the jars of ``KNOWN_GOOD_VERSIONS`` (``make
fetch``); those must be there. The models of the ZooKeeper-era lines (3.8, 3.9) come from jars
fetched by hand (docs/config-validation.md): where those jars are present the tests hold the model
and the judge to them like the others; where they are not, a test checks what the committed model
alone can show, and warns that Kafka's classes were not asked (``KafkaNotAsked``), so a run without
them never reads as a comparison that passed. tests/runbooks pins the 3.x verdicts that differ
from 4.x, taken from those jars.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from bot.configmodel import check_values, model_path, render, stale, start_verdicts
from bot.configmodel import generate as generate_model
from bot.sandbox.jars import KNOWN_GOOD_VERSIONS, is_fetched
from runbooks.rules.config_checks import START_RULES, Effective
from runbooks.rules.config_model import BrokerConfigModel, KeySpec, available, load_model
from runbooks.rules.config_values import ValueRefused, evaluable, java_text, judge
from runbooks.rules.versions import parse_version

pytestmark = [pytest.mark.jvm, pytest.mark.timeout(300)]
PROJECT = Path(__file__).resolve().parents[2]


class KafkaNotAsked(UserWarning):
    """A model's Kafka jars are not fetched here, so only the committed model was checked."""


@pytest.fixture(scope="module", params=available())
def version(request: pytest.FixtureRequest) -> str:
    version: str = request.param
    if version in KNOWN_GOOD_VERSIONS:
        assert is_fetched(version), f"Kafka {version}'s jars are not fetched: run `make fetch`"
    return version


def _kafka_at_hand(version: str) -> bool:
    """Whether Kafka ``version``'s classes can be asked; if not, says so (a warning in the test report)."""
    if is_fetched(version):
        return True
    warnings.warn(KafkaNotAsked(
        f"Kafka {version}'s jars are not fetched (`make fetch` gets {', '.join(KNOWN_GOOD_VERSIONS)}): only its "
        f"committed model was checked; `python -m bot sandbox fetch --kafka-version {version}` to compare with "
        "Kafka's classes"), stacklevel=2)
    return False


def test_the_committed_model_is_what_the_jars_say(version: str) -> None:
    """Regenerating from the jars changes nothing: the data the planner uses is Kafka's, not edited.
    Without the jars: the file is in the generator's own form and says it is that version's."""
    committed = load_model(version)
    if not _kafka_at_hand(version):
        text = model_path(version).read_text(encoding="utf-8")
        assert render(json.loads(text)) == text, "a committed model was edited by hand: regenerate it"
        assert committed.kafka_version == version and len(committed.keys) > 300
        return
    generated = generate_model(version)
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


def _pairs(model: BrokerConfigModel) -> list[tuple[str, str]]:
    """Every key but class-valued ones (whose check is the brokers' classpath) and those whose validator
    the judge cannot evaluate (it refuses every value of them), with values of every shape."""
    return [(k, v) for k, spec in model.keys.items() if spec.type not in ("CLASS", "PASSWORD")
            and (spec.validator is None or evaluable(spec.validator)) for v in _probes(spec)]


def test_the_judge_gives_kafkas_verdict_and_words(version: str) -> None:
    """The judge refuses what ConfigDef refuses with ConfigDef's message, and parses what it takes to the
    same value; where it differs it is stricter, and only for NaN or infinity. Without the jars: every
    value gets a verdict, and every refusal is worded the way Kafka words one."""
    model = load_model(version)
    pairs = _pairs(model)
    if not _kafka_at_hand(version):
        verdicts = [_mine(key, value, model.keys[key]) for key, value in pairs]
        worded = [m for m, _ in verdicts if m is not None and m.startswith(("Invalid value ", "Configuration '"))]
        assert len(pairs) > 5000 and len(worded) == sum(m is not None for m, _ in verdicts) > 1000
        return
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


# Broker configs that start: the bases every case changes. A KRaft broker (3.8 knows its controllers
# only from the static voters), and for the 3.x lines, which Strimzi 0.45 runs either way, a ZooKeeper one.
KRAFT = {"process.roles": "broker", "node.id": "1", "controller.quorum.bootstrap.servers": "localhost:9093",
         "controller.listener.names": "CONTROLLER", "listeners": "PLAINTEXT://:9092",
         "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT", "log.dirs": "/tmp/unused"}
KRAFT_3 = {**KRAFT, "controller.quorum.voters": "2@localhost:9093"}
ZOOKEEPER = {"zookeeper.connect": "localhost:2181", "broker.id": "1", "listeners": "PLAINTEXT://:9092",
             "log.dirs": "/tmp/unused"}


def _bases(version: str) -> dict[str, dict[str, str]]:
    return {"KRaft": KRAFT_3, "ZooKeeper": ZOOKEEPER} if parse_version(version) < (4, 0, 0) else {"KRaft": KRAFT}


def _pair_cases(model: BrokerConfigModel) -> list[dict[str, str]]:
    """For each 'a <relation> b' rule: a value of a just across b's default, and one on the boundary."""
    cases: list[dict[str, str]] = []
    for rule in START_RULES:
        if len(rule.keys) != 2 or not rule.applies_to(model):
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
    # 3.x only (the key went with 4.0): at least -1, at most the offsets topic's replication factor.
    {"offsets.commit.required.acks": "-2"},
    {"offsets.commit.required.acks": "2", "offsets.topic.replication.factor": "1"},
    # 4.x checks heartbeat < session; 3.x does not.
    {"group.consumer.max.heartbeat.interval.ms": "60000", "group.consumer.heartbeat.interval.ms": "45000"},
    {"group.consumer.max.heartbeat.interval.ms": "60000", "group.consumer.heartbeat.interval.ms": "44999"},
    {"group.share.max.heartbeat.interval.ms": "60000", "group.share.heartbeat.interval.ms": "45000"},
]


def _start_problems(model: BrokerConfigModel, base: dict[str, str], change: dict[str, str | None]) -> list[str]:
    """What the bot's start rules say of ``change`` on a broker running ``base`` (as runbooks.rules.config_checks
    selects them: a rule that reads a changed key and that this version checks)."""
    eff = Effective(model, spec={}, reported=base, change=change)
    return [p for rule in START_RULES if any(k in change for k in rule.keys)
            and rule.applies_to(model) and (p := rule.check(eff, None))]


def test_each_start_rule_fires_exactly_when_kafkaconfig_refuses(version: str) -> None:
    """KafkaConfig.fromProps on a real broker config with each case: the bot's start rules refuse the same
    cases, with Kafka's message, and pass the others (boundaries included). Without the jars: every rule
    that judges this version reads keys of its model, and each refusal names what it read."""
    model = load_model(version)
    cases = [*_CASES, *_pair_cases(model)]
    if not _kafka_at_hand(version):
        judged = [rule for rule in START_RULES if rule.applies_to(model)]
        assert len(judged) > 10 and all(k in model.keys for rule in judged for k in rule.keys)
        said = [p for base in _bases(version).values() for case in cases for p in _start_problems(model, base, case)]
        assert len(said) > 20 and all(p.startswith("the brokers would not start: ") for p in said)
        return
    refusals = 0
    for name, base in _bases(version).items():
        verdicts = start_verdicts(version, base, cases)
        wrong = []
        for case, theirs in zip(cases, verdicts, strict=True):
            mine = _start_problems(model, base, dict(case))
            expected = None if theirs is None else theirs.split(": ", 1)[1].removeprefix("requirement failed: ")
            if expected is None and not mine:
                continue
            if expected is not None and mine and expected.split(" (")[0] in mine[0]:
                continue
            wrong.append((case, theirs, mine))
        assert wrong == [], f"{name} broker of Kafka {version}"
        refusals += sum(v is not None for v in verdicts)
    assert refusals > 20
