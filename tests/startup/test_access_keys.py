"""The clusters file's access keys (requesters, requester_groups, runbooks, viewers, viewer_groups,
channels): what a valid file means, and each malformed key refused naming the cluster, the key and
what is valid (bot.config.access)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.settings import ConfigError, load_clusters
from runbooks.engine.access import AccessPolicy, People

pytestmark = pytest.mark.timeout(10)

HEAD = "clusters:\n  prod:\n    approvers: [U0APP]\n"


def loaded(tmp_path: Path, keys: str) -> AccessPolicy:
    path = tmp_path / "clusters.yaml"
    path.write_text(HEAD + keys)
    return load_clusters(path)["prod"].access


def refusal(tmp_path: Path, keys: str) -> str:
    with pytest.raises(ConfigError) as caught:
        loaded(tmp_path, keys)
    return str(caught.value)


def test_a_file_without_access_keys_keeps_the_safe_defaults(tmp_path: Path) -> None:
    """No requesters: the approvers start runs; no viewers: anyone looks; no channels: anywhere."""
    assert loaded(tmp_path, "") == AccessPolicy(requesters=None, runbooks={}, viewers=None, channels=None)


def test_every_key_is_read_into_the_clusters_policy(tmp_path: Path) -> None:
    access = loaded(tmp_path, (
        "    requesters: [U0ONC]\n    requester_groups: [S0ONCALL]\n"
        "    runbooks:\n      upgrade: {requester_groups: [S0KAFKA]}\n      scale: {requesters: []}\n"
        "    viewers: [U0SRE]\n    viewer_groups: [S0SRE]\n    channels: [C0PROD, console]\n"))
    assert access == AccessPolicy(
        requesters=People(users=("U0ONC",), groups=("S0ONCALL",)),
        runbooks={"upgrade": People(groups=("S0KAFKA",)), "scale": People()},
        viewers=People(users=("U0SRE",), groups=("S0SRE",)), channels=("C0PROD", "console"))


def test_requester_groups_alone_name_the_requesters(tmp_path: Path) -> None:
    assert loaded(tmp_path, "    requester_groups: [S0ONCALL]\n").requesters == People(groups=("S0ONCALL",))


@pytest.mark.parametrize(("keys", "expected"), [
    ("    channels: 5\n", "clusters.prod.channels: 5 is not a list of channel ids"),
    ("    channels: []\n", "clusters.prod.channels: an empty list takes commands nowhere"),
    ("    channels: ['#kafka-prod']\n", "clusters.prod.channels: '#kafka-prod' is not a channel id: give Slack "
                                       "channel ids (C0123ABCD"),
    ("    requester_groups: ['@kafka-team']\n", "clusters.prod.requester_groups: '@kafka-team' is not a "
                                              "user-group id"),
    ("    viewer_groups: [kafka]\n", "clusters.prod.viewer_groups: 'kafka' is not a user-group id"),
    ("    runbooks: {upgrad: {requesters: [U1]}}\n", "clusters.prod.runbooks: 'upgrad': no such runbook; the "
                                                     "runbooks are config, mirror, mirror-restart, replace-broker, "
                                                     "restart, scale, upgrade"),
    ("    runbooks: [upgrade]\n", "clusters.prod.runbooks: ['upgrade'] is not a mapping"),
    ("    runbooks: {upgrade: {}}\n", "clusters.prod.runbooks.upgrade: names nobody: give requesters and/or "
                                    "requester_groups"),
    ("    runbooks: {upgrade: {viewers: [U1]}}\n", "clusters.prod.runbooks.upgrade.viewers: unknown key (valid "
                                                 "here: requesters, requester_groups)"),
    ("    requesters: U0ONC\n", "clusters.prod.requesters"),
    ("    channel: C0OPS\n    channels: [C0PROD]\n", "clusters.prod: channel C0OPS (where run cards and alerts "
                                                    "are posted) is not in channels ['C0PROD']: their buttons "
                                                    "would be refused there"),
])
def test_a_malformed_access_key_is_refused_naming_it_and_what_is_valid(tmp_path: Path, keys: str,
                                                                       expected: str) -> None:
    message = refusal(tmp_path, keys)
    assert expected in message, message
    assert "KAFKA_CHATOPS_CONFIG" in message


def test_the_readmes_access_example_loads_as_it_says(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    blocks = [b.split("```", 1)[0] for b in readme.split("```yaml\n")[1:]]
    example = next(b for b in blocks if "requester_groups:" in b)
    path = tmp_path / "clusters.yaml"
    path.write_text(example)
    access = load_clusters(path)["prod-east"].access
    assert access.requesters == People(users=("U03CARL",), groups=("S0ONCALL",))
    assert access.runbooks == {"upgrade": People(groups=("S0KAFKATEAM",)), "scale": People()}
    assert access.channels == ("C0KAFKAPROD", "console")
