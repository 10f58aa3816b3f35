"""README's "Deploy to Kubernetes" stays true to the chart: every value it names exists in values.yaml,
the Secrets it has users create are the ones the chart reads by default, and the paths it gives exist."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.deploy.helm_chart import CHART, ROOT

pytestmark = pytest.mark.timeout(30)


def section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Deploy to Kubernetes\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def lookup(values: dict[str, Any], dotted: str) -> bool:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def test_every_value_named_exists() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    named = {m.rstrip(".*").removesuffix(".") for m in re.findall(r"`([a-zA-Z0-9]+(?:\.[a-zA-Z0-9*]+)+)`", section())
             if m.split(".")[0] in values}
    assert {"slack.existingSecret", "redis.existingSecret", "rbac.extraNamespaces"} <= named
    missing = sorted(n for n in named if not lookup(values, n))
    assert not missing, f"README names values the chart does not have: {missing}"
    for key in re.findall(r"`([\w.]+): ", section()):  # `key: value` examples
        assert lookup(values, key), key


def test_the_secrets_created_are_the_ones_the_chart_reads() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    text = section()
    slack, redis = values["slack"], values["redis"]
    assert f"create secret generic {slack['existingSecret']}" in text
    assert f"create secret generic {redis['existingSecret']}" in text
    for key in (slack["secretKeys"]["botToken"], slack["secretKeys"]["appToken"],
                slack["secretKeys"]["signingSecret"], redis["secretKey"]):
        assert f"--from-literal={key}=" in text, key


def test_paths_given_exist() -> None:
    for path in re.findall(r"`(deploy/[\w./-]+)`", section()):
        assert (ROOT / path).exists(), path
    assert "helm install kafka-chatops deploy/helm/kafka-chatops" in section()
