"""The clusters file's optional `alerts:` block: defaults when absent, durations, and errors named."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.settings import ConfigError, load_clusters
from runbooks.alerting.lifecycle import AlertRules


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "clusters.yaml"
    path.write_text(text)
    return path


def test_a_cluster_without_an_alerts_block_gets_the_defaults(tmp_path: Path) -> None:
    """Existing files stay valid: no alerts block, the default rules."""
    clusters = load_clusters(write(tmp_path, "clusters:\n  prod: {namespace: kafka, approvers: [U01ANA]}\n"))
    assert clusters["prod"].alerts == AlertRules()


def test_rules_and_durations_are_read(tmp_path: Path) -> None:
    """Durations like 2s, 1m and 10m; lag thresholds; growth off; a condition disabled."""
    clusters = load_clusters(write(tmp_path, """
clusters:
  prod:
    approvers: [U01ANA]
    alerts:
      health_poll: 2s
      lag_poll: 10
      under_replicated: {for: 1m, cooldown: 10m}
      strimzi_restart: {enabled: false}
      consumer_lag: {max_lag: 500, max_lag_seconds: 2m, growth: {enabled: false}, exclude_groups: "test-.*"}
"""))
    rules = clusters["prod"].alerts
    assert (rules.health_poll_s, rules.lag_poll_s) == (2.0, 10.0)
    assert (rules.under_replicated.for_s, rules.under_replicated.cooldown_s) == (60.0, 600.0)
    assert not rules.strimzi_restart.enabled
    lag = rules.consumer_lag
    assert (lag.max_lag, lag.max_lag_seconds, lag.growth_min_increase) == (500, 120.0, None)
    assert lag.exclude_groups == "test-.*"


@pytest.mark.parametrize(("block", "fragment"), [
    ("alerts: {health_poll: soon}", "is not a duration"),
    ("alerts: {lag_poll: 0}", "greater than 0"),
    ("alerts: {under_replicated: {for: 1m, after: 2m}}", "after"),
    ("alerts: {paging: true}", "paging"),
])
def test_mistakes_in_the_alerts_block_are_named(tmp_path: Path, block: str, fragment: str) -> None:
    """A wrong key or value stops the start with the file and the problem named."""
    with pytest.raises(ConfigError, match=fragment):
        load_clusters(write(tmp_path, f"clusters:\n  prod:\n    {block}\n"))


def test_durations_in_the_file_are_written_as_in_slack_or_as_seconds(tmp_path: Path) -> None:
    """One duration syntax everywhere: 90s, 30m, 1h30m, 1d as typed in Slack (0s where waiting is optional),
    or plain seconds (90, "90")."""
    clusters = load_clusters(write(tmp_path, """
clusters:
  prod:
    approvers: [U01ANA]
    approval_timeout: 1h30m
    alerts:
      health_poll: 90
      lag_poll: "45"
      under_replicated: {for: 1m 30s, cooldown: 1d}
      broker_down: {for: 0s}
"""))
    prod = clusters["prod"]
    assert prod.policy.approval_timeout_s == 5400.0
    assert (prod.alerts.health_poll_s, prod.alerts.lag_poll_s) == (90.0, 45.0)
    assert (prod.alerts.under_replicated.for_s, prod.alerts.under_replicated.cooldown_s) == (90.0, 86400.0)
    assert prod.alerts.broker_down.for_s == 0.0
    for bad in ("-5m", "5 minutes", "1.5h", "1h30"):
        with pytest.raises(ConfigError, match="is not a duration"):
            load_clusters(write(tmp_path, f"clusters:\n  prod:\n    approval_timeout: {bad}\n"))
