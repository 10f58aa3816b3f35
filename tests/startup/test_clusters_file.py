"""The clusters file (KAFKA_CHATOPS_CONFIG) is refused at start when it could only lead to runs nobody
can approve or to settings other than the ones written: each refusal names the cluster, the key and
what is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.settings import ConfigError, load_clusters

pytestmark = pytest.mark.timeout(10)


def refusal(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "clusters.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_clusters(path)
    return str(caught.value)


def test_an_empty_file_or_one_without_clusters_is_refused(tmp_path: Path) -> None:
    """An empty file, a comment only, `clusters:` with nothing under it: the bot would manage nothing."""
    for text in ("", "# nothing yet\n", "clusters:\n", "clusters: {}\n"):
        message = refusal(tmp_path, text)
        assert "KAFKA_CHATOPS_CONFIG" in message, text
        assert "at least one cluster" in message, text


def test_a_cluster_written_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    """YAML keeps the later of two equal keys; the first cluster (approvers included) would vanish unseen."""
    message = refusal(tmp_path, """clusters:
  prod:
    namespace: kafka
    approvers: [U01ANA]
  prod:
    namespace: kafka
    approvers: [U09EVE]
""")
    assert "clusters.prod is written twice (lines 2 and 5)" in message
    assert "write each key once" in message
    clusters = load_clusters(_write(tmp_path, """clusters:
  prod-east:
    namespace: kafka
    kafka: prod-east
    bootstrap: null
    channel: C0123456789
    approvers: [U01ANA, U02BEN]
    approver_groups: [S0KAFKAONCALL]
    four_eyes: true
    approvals_required: 1
    approval_timeout: 30m
  prod-west: &west {namespace: kafka, approvers: [U01ANA]}
  dr-west:
    <<: *west
    namespace: kafka-dr
"""))
    assert clusters["prod-east"].policy.approvers == ("U01ANA", "U02BEN"), "the README's example still loads"
    assert clusters["dr-west"].ref.namespace == "kafka-dr", "a `<<:` merge may override what it merges"


def test_a_key_written_twice_inside_a_cluster_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, """clusters:
  prod:
    approvers: [U01ANA]
    namespace: kafka
    approvers: [U09EVE]
""")
    assert "clusters.prod.approvers is written twice (lines 3 and 5)" in message


def test_a_cluster_nobody_could_approve_for_is_refused(tmp_path: Path) -> None:
    """`approvers: []` (or none at all) and no approver_groups: no step of any run could ever be approved."""
    for approvers in ("    approvers: []\n", "", "    approvers: []\n    approver_groups: []\n"):
        message = refusal(tmp_path, f"clusters:\n  prod:\n    namespace: kafka\n{approvers}")
        assert "clusters.prod" in message and "nobody could approve" in message, approvers
        assert "approvers" in message and "approver_groups" in message
    clusters = load_clusters(_write(tmp_path, "clusters:\n  prod:\n    approvers: []\n"
                                              "    approver_groups: [S0ONCALL]\n"))
    assert clusters["prod"].policy.approver_groups == ("S0ONCALL",), "approver_groups alone are enough"


def test_more_approvals_required_than_approvers_is_refused(tmp_path: Path) -> None:
    """2-of-2 is possible; 3 approvals from 2 people never is. A name listed twice counts once. With
    approver_groups the members are known only to Slack, so the file cannot count them: accepted."""
    message = refusal(tmp_path, "clusters:\n  prod:\n    approvers: [U01ANA, U02BEN]\n    approvals_required: 3\n")
    assert "clusters.prod.approvals_required: 3 approvals from 2 approvers can never be given" in message
    assert "give at most 2" in message
    message = refusal(tmp_path, "clusters:\n  prod:\n    approvers: [U01ANA, U01ANA]\n    approvals_required: 2\n")
    assert "clusters.prod.approvals_required: 2 approvals from 1 approver can never" in message
    clusters = load_clusters(_write(tmp_path, "clusters:\n  prod:\n    approvers: [U01ANA, U02BEN]\n"
                                              "    approvals_required: 2\n"))
    assert clusters["prod"].policy.approvals_required == 2
    clusters = load_clusters(_write(tmp_path, "clusters:\n  prod:\n    approvers: [U01ANA]\n"
                                              "    approver_groups: [S0ONCALL]\n    approvals_required: 3\n"))
    assert clusters["prod"].policy.approvals_required == 3


def test_a_namespace_that_is_not_a_dns_label_is_refused(tmp_path: Path) -> None:
    for bad in ("Kafka", "kafka_prod", "-kafka", "kafka-", "kafka.prod", "a" * 64, '""'):
        message = refusal(tmp_path, f"clusters:\n  prod:\n    namespace: {bad}\n    approvers: [U01ANA]\n")
        assert "clusters.prod.namespace" in message, bad
        assert "DNS-1123 label" in message and "at most 63" in message, bad
    clusters = load_clusters(_write(tmp_path, f"clusters:\n  prod:\n    namespace: {'a' * 63}\n"
                                              "    approvers: [U01ANA]\n"))
    assert clusters["prod"].ref.namespace == "a" * 63


def test_a_file_that_cannot_be_read_names_the_setting(tmp_path: Path) -> None:
    """A directory, a binary file, a missing file: no traceback, the setting and the path named."""
    for path, why in ((tmp_path, "is a directory"), (tmp_path / "missing.yaml", "does not exist")):
        with pytest.raises(ConfigError) as caught:
            load_clusters(path)
        assert "KAFKA_CHATOPS_CONFIG" in str(caught.value) and why in str(caught.value)
    assert "is not UTF-8 text" in refusal(tmp_path, b"\x7fELF\x02\x01\x01\x00\xd0\xff")


def test_a_file_that_is_not_a_mapping_is_refused_without_echoing_it(tmp_path: Path) -> None:
    """A YAML list, or a file of some other format: said what it should be; its content is not repeated."""
    assert "a YAML mapping with a `clusters:` key" in refusal(tmp_path, "- prod\n- staging\n")
    lines = "".join(f"user{i}:secret{i}:19000:0:99999:7:::\n" for i in range(40))
    message = refusal(tmp_path, lines)
    assert "secret" not in message and "the only top-level key is `clusters`" in message


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "clusters.yaml"
    path.write_text(text)
    return path
