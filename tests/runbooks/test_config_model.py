"""The committed config models (runbooks/rules/config_model/kafka-*.json) and the judge read each other (pure).

Kafka validates every default when it defines a key, so a judge that refuses one of Kafka's own
defaults has misread a type or a validator: every default of every key of every model must pass.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbooks.rules.config_checks import BOT_RULES, START_RULES
from runbooks.rules.config_keys import denial
from runbooks.rules.config_model import available, load_model, model_for
from runbooks.rules.config_values import ValueRefused, evaluable, judge
from runbooks.rules.versions import KRAFT_SUPPORTED, ZOOKEEPER_SUPPORTED

pytestmark = pytest.mark.timeout(20)


def test_every_version_the_sandbox_fetches_has_a_model() -> None:
    """4.2.2 and 4.3.1 (the versions `make fetch` gets) have models; each says which Kafka it came from."""
    assert {"4.2.2", "4.3.1"} <= set(available())
    for version in available():
        model = load_model(version)
        assert model.kafka_version == version and len(model.keys) > 300
        assert model_for(version) == (model, "")


@pytest.mark.parametrize("version", [*ZOOKEEPER_SUPPORTED, *KRAFT_SUPPORTED])
def test_every_version_the_upgrade_runbook_supports_has_its_lines_model(version: str) -> None:
    """A cluster on any Kafka the bot supports (Strimzi 0.45's 3.8/3.9, ZooKeeper or KRaft, and 1.2's 4.2/4.3)
    can change config, judged by a model of its own release line."""
    model, _ = model_for(version)
    assert model.kafka_version.split(".")[:2] == version.split(".")[:2]


@pytest.mark.parametrize("version", available())
def test_the_judge_accepts_every_kafka_default(version: str) -> None:
    """Each key's default parses as its type and passes its validator, as it did when Kafka defined it (over
    300 keys: every type and validator kind the models hold)."""
    refused = {}
    for key, spec in load_model(version).keys.items():
        if spec.default is None or spec.type == "PASSWORD" or (spec.validator and not evaluable(spec.validator)):
            continue  # unevaluable validators: see the next test
        try:
            judge(key, spec.default, spec)
        except ValueRefused as exc:
            refused[key] = str(exc)
    assert refused == {}


@pytest.mark.parametrize("version", available())
def test_a_validator_the_judge_cannot_evaluate_lets_no_value_through(version: str) -> None:
    """A validator the judge cannot evaluate sits on a key the runbook never changes (the controller quorum's,
    Strimzi's to set; 3.x's protocol versions, the upgrade's), or every value of the key is refused, saying
    the bot cannot judge it: never a value passed unjudged."""
    unknown = {key: spec for key, spec in load_model(version).keys.items()
               if spec.validator is not None and not evaluable(spec.validator)}
    assert unknown
    for key, spec in unknown.items():
        if denial(key) is None:
            unjudged = re.escape(f"{key} is checked by Kafka with a rule this bot cannot evaluate")
            with pytest.raises(ValueRefused, match=unjudged):
                judge(key, spec.default or "1", spec)


@pytest.mark.parametrize("key", ["remote.log.manager.copier.thread.pool.size",
                                 "remote.log.manager.expiration.thread.pool.size"])
def test_a_lambda_validator_without_its_rule_is_not_guessed(key: str) -> None:
    """3.9 checks these with a LambdaValidator whose text is the key's documentation, not its rule (-1 or
    above 0): the bot refuses to judge them there and says to change them by hand. 4.3 checks a Range,
    which it judges."""
    with pytest.raises(ValueRefused, match=r"cannot evaluate .*: change it by hand"):
        judge(key, "5", load_model("3.9.0").keys[key])
    assert judge(key, "5", load_model("4.3.1").keys[key]) == 5


def test_gzip_level_is_the_lambda_kafka_describes() -> None:
    """compression.gzip.level's LambdaValidator ('[1,...,9] or -1') is evaluated from its text."""
    spec = load_model("4.3.1").keys["compression.gzip.level"]
    assert judge("compression.gzip.level", "9", spec) == 9 and judge("compression.gzip.level", "-1", spec) == -1
    with pytest.raises(ValueRefused, match="Value must be between 1 and 9 or equal to -1"):
        judge("compression.gzip.level", "0", spec)


def test_every_key_a_rule_across_keys_reads_is_a_broker_key() -> None:
    """A misspelt key would silently switch its rule off (rules skip keys a model lacks)."""
    known = set().union(*(load_model(v).keys for v in available()))
    named = {k for rule in (*START_RULES, *BOT_RULES) for k in rule.keys}
    assert named - known == set()


_MODEL = load_model("4.3.1")


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(sorted(_MODEL.keys)),
       value=st.one_of(st.text(max_size=40), st.from_regex(r"[+-]?[0-9.eExXpP,a-f ]{0,30}", fullmatch=True)))
def test_the_judge_answers_every_text_with_a_verdict(key: str, value: str) -> None:
    """Whatever is typed, the judge parses it or refuses it in words: never another exception."""
    try:
        judge(key, value, _MODEL.keys[key])
    except ValueRefused as refused:
        assert str(refused)
