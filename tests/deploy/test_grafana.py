"""deploy/grafana: the two dashboards parse, and every query names series the bot really exports,
with labels those series really carry (a renamed metric or label breaks a panel silently otherwise)."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.observability.metrics import Exposition, add_alerts, add_lag_report, add_runs
from runbooks.alerting.lifecycle import AlertKey, AlertState, Condition, Phase
from tests.alerts.test_http_metrics import NOW, report
from tests.runbooks.builders import started

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana").glob("*.json"))
# Prometheus's own series and the labels its scrape adds to every series.
PROMETHEUS_SERIES = {"up": {"job", "instance", "namespace"}}
SCRAPE_LABELS = {"job", "instance", "namespace", "pod", "service", "endpoint"}
PROMQL_WORDS = {"sum", "max", "min", "avg", "count", "by", "without", "rate", "irate", "increase",
                "label_values", "topk", "bottomk", "absent", "on", "ignoring", "offset"}


def exported_labels() -> dict[str, set[str]]:
    """The label names of every series, from a real exposition of a lag report, a run waiting for
    approval and an alert, plus the per-cluster monitor series /metrics adds (bot/observability/http.py)."""
    out = Exposition()
    add_lag_report(out, report())
    driver = started(3)
    add_runs(out, [driver.run], now=driver.clock.now + timedelta(seconds=5))
    key = AlertKey(cluster="prod", condition=Condition.CONSUMER_LAG, subject="group:x")
    add_alerts(out, [AlertState(key=key, phase=Phase.FIRING, since=NOW)], ["prod"], now=NOW)
    found: dict[str, set[str]] = {}
    for line in out.text().splitlines():
        if match := re.match(r"([a-z_]+)\{(.*)\} ", line):
            found.setdefault(match[1], set()).update(re.findall(r'([a-z_]+)="', match[2]))
    http_source = (ROOT / "bot" / "observability" / "http.py").read_text()
    for name, labels in re.findall(r'out\.add\("([a-z_]+)", \{([^}]*)\}', http_source):
        found.setdefault(name, set()).update(re.findall(r'"([a-z_]+)":', labels))
    return found


def queries(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


def test_there_is_a_dashboard_for_the_bot_and_one_for_lag() -> None:
    assert [d.name for d in DASHBOARDS] == ["kafka-chatops-bot.json", "kafka-chatops-lag.json"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_a_dashboard_parses_and_each_panel_has_a_unique_id_and_a_query(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] == path.stem and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        assert p["targets"] and all(t["expr"].strip() for t in p["targets"]), p["title"]
        assert p["datasource"]["uid"] == "${datasource}", "the datasource is a variable, not one installation's"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_query_names_exported_series_and_their_labels(path: Path) -> None:
    series = {**exported_labels(), **PROMETHEUS_SERIES}
    for expr in queries(json.loads(path.read_text())):
        names = {n for n in re.findall(r"\b([a-z_]+)\s*(?:\{|\[|\)|,|$)", expr)
                 if n not in PROMQL_WORDS and (n in series or n.startswith("kafka_"))}
        used = set(re.findall(r"\b([a-z_]+)\s*(?:=~|!=|!~|=)\s*\"", expr))
        for group in re.findall(r"by \(([^)]*)\)", expr):
            used |= {label.strip() for label in group.split(",")}
        used |= set(re.findall(r"label_values\([^,]+,\s*([a-z_]+)\)", expr))
        assert names, f"no series in {expr!r}"
        for name in names:
            assert name in series, f"{path.name}: {name} is not a series the bot exports ({expr!r})"
            assert used <= series[name] | SCRAPE_LABELS, \
                f"{path.name}: {sorted(used - series[name] - SCRAPE_LABELS)} not labels of {name} ({expr!r})"
