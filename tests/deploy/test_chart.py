"""deploy/helm/kafka-chatops: `helm lint` and `helm template` for the default values and each option,
every rendered object valid against the Kubernetes schemas, and the chart fitting the bot as it is
(its settings, its clusters file, its probe paths, its Slack transports)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bot.config.settings import Settings, load_clusters
from tests.deploy.helm_chart import CHART, NAMESPACE, OPTIONS, helm, of_kind, render, set_args

pytestmark = pytest.mark.timeout(120)

KUBERNETES_VERSION = kubernetes_validate.latest_version()
# Kinds of the Prometheus Operator: their CRDs' schemas are not Kubernetes', checked field by field below.
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}


@pytest.mark.parametrize("option", OPTIONS)
def test_helm_lint_passes(option: str) -> None:
    """`helm lint --strict`: no error and no warning, for the defaults and each option."""
    result = helm("lint", "--strict", str(CHART), *set_args(OPTIONS[option]), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("option", OPTIONS)
def test_every_rendered_object_is_valid_kubernetes(option: str) -> None:
    """Strict schema validation (unknown fields refused) of every object `helm template` renders."""
    objects = render(OPTIONS[option])
    assert objects
    for obj in objects:
        if obj["kind"] in OPERATOR_KINDS:
            assert obj["apiVersion"] == "monitoring.coreos.com/v1"
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = of_kind(objects, "Deployment")
    return found


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = deployment(objects)["spec"]["template"]["spec"]["containers"]
    return found


def test_defaults_two_replicas_spread_probed_and_limited() -> None:
    """Two replicas, preferring different nodes; readiness on /readyz and liveness on /healthz, both on the
    port the bot serves them on (KAFKA_CHATOPS_HTTP_PORT); requests and a memory limit; non-root; a
    rolling update that starts the new pod before it stops an old one (the README's upgrade note)."""
    objects = render()
    spec = deployment(objects)["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    anti = spec["template"]["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert anti[0]["podAffinityTerm"]["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]
    main = container(objects)
    env = {e["name"]: e for e in main["env"]}
    metrics_port = next(p for p in main["ports"] if p["name"] == "metrics")["containerPort"]
    assert env["KAFKA_CHATOPS_HTTP_PORT"]["value"] == str(metrics_port)
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert main["resources"]["requests"] and main["resources"]["limits"]["memory"]
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    assert "args" not in main  # Socket Mode: the image's `kafka-chatops run` as it is
    (pdb,) = of_kind(objects, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1


def test_the_probe_paths_are_the_bots() -> None:
    """The paths the probes call are the routes bot/observability/http.py serves."""
    source = (Path(__file__).resolve().parents[2] / "bot" / "observability" / "http.py").read_text()
    for path in ("/readyz", "/healthz", "/metrics"):
        assert f'add_get("{path}"' in source, path


def test_every_environment_variable_is_a_bot_setting() -> None:
    """The chart sets only variables the bot reads (a typo would be ignored silently by pydantic-settings)."""
    for option in ("default", "http-with-ingress", "redis-sentinel", "redis-bundled"):
        names = {e["name"] for e in container(render(OPTIONS[option]))["env"]}
        unknown = {n for n in names if n.lower() not in Settings.model_fields}
        assert not unknown, f"{option}: {unknown}"


def test_secrets_are_referenced_never_inline() -> None:
    """Slack tokens and the Redis URL (or, with Sentinel, the Redis password) come from existing Secrets by
    name; the chart renders no Secret."""
    for option, values in OPTIONS.items():
        objects = render(values)
        assert not of_kind(objects, "Secret"), option
        env = {e["name"]: e for e in container(objects)["env"]}
        by_parts = option.startswith(("redis-sentinel", "redis-bundled"))
        secret_vars = ("SLACK_BOT_TOKEN",) if by_parts else ("SLACK_BOT_TOKEN", "REDIS_URL")
        for name in secret_vars:
            assert set(env[name]) == {"name", "valueFrom"}, (option, name)
            assert env[name]["valueFrom"]["secretKeyRef"]["name"], (option, name)
        if by_parts:  # hosts and master name only; the password is a mounted Secret file
            assert "@" not in env["REDIS_URL"]["value"] and "REDIS_PASSWORD_FILE" in env


def test_socket_mode_and_http_mode_get_their_own_secrets_and_ports() -> None:
    """Socket Mode: the app token, no Slack port, no `--http`; HTTP: the signing secret, `--http --port`,
    the port on the Service, and the Ingress sends only /slack/events to it."""
    socket = render()
    env = {e["name"] for e in container(socket)["env"]}
    assert "SLACK_APP_TOKEN" in env and "SLACK_SIGNING_SECRET" not in env
    (service,) = of_kind(socket, "Service")
    assert [p["name"] for p in service["spec"]["ports"]] == ["metrics"]
    assert not of_kind(socket, "Ingress")

    http = render(OPTIONS["http-with-ingress"])
    main = container(http)
    assert "SLACK_SIGNING_SECRET" in {e["name"] for e in main["env"]}
    assert "SLACK_APP_TOKEN" not in {e["name"] for e in main["env"]}
    assert main["args"] == ["--http", "--port", "3000"]
    (service,) = of_kind(http, "Service")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"metrics": 9090, "slack": 3000}
    (ingress,) = of_kind(http, "Ingress")
    (path,) = ingress["spec"]["rules"][0]["http"]["paths"]
    assert path["path"] == "/slack/events" and path["backend"]["service"]["port"] == {"name": "slack"}


def test_the_rendered_clusters_file_is_one_the_bot_loads(tmp_path: Path) -> None:
    """The ConfigMap holds a clusters file the bot's own loader accepts, mounted where KAFKA_CHATOPS_CONFIG
    points."""
    objects = render()
    (configmap,) = of_kind(objects, "ConfigMap")
    path = tmp_path / "clusters.yaml"
    path.write_text(configmap["data"]["clusters.yaml"])
    clusters = load_clusters(path)
    assert list(clusters) == ["my-cluster"] and clusters["my-cluster"].ref.namespace == "kafka"
    main = container(objects)
    config = next(e["value"] for e in main["env"] if e["name"] == "KAFKA_CHATOPS_CONFIG")
    mount = next(m for m in main["volumeMounts"] if m["name"] == "clusters")
    assert config == f"{mount['mountPath']}/clusters.yaml"


def test_prometheus_rules_name_only_metrics_the_bot_exports() -> None:
    """Each alert's expression uses `up` or series from bot/observability/metrics.py, scoped to this
    release's job; the ServiceMonitor scrapes the Service's metrics port."""
    metrics_source = (Path(__file__).resolve().parents[2] / "bot" / "observability" / "metrics.py").read_text()
    exported = set(re.findall(r'"(kafka_chatops_[a-z_]+)"', metrics_source))
    assert "kafka_chatops_monitor_leader" in exported
    objects = render(OPTIONS["prometheus"])
    (rule,) = of_kind(objects, "PrometheusRule")
    rules = rule["spec"]["groups"][0]["rules"]
    assert {r["alert"] for r in rules} == {"KafkaChatopsDown", "KafkaChatopsNoMonitorLeader",
                                           "KafkaChatopsRunPausedLong", "KafkaChatopsAlertsNotPosted"}
    for r in rules:
        names = set(re.findall(r"\b([a-z_]+)\{", r["expr"]))
        assert names and names <= exported | {"up"}, (r["alert"], names)
        assert 'job="kafka-chatops"' in r["expr"] and f'namespace="{NAMESPACE}"' in r["expr"]
    (monitor,) = of_kind(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]


def test_network_policy_admits_only_the_ports_the_mode_serves() -> None:
    """Ingress only (egress stays open for Slack, Kubernetes, Kafka, Redis); the Slack port only in HTTP mode."""
    (socket,) = of_kind(render(OPTIONS["network-policy-socket"]), "NetworkPolicy")
    assert socket["spec"]["policyTypes"] == ["Ingress"]
    assert [r["ports"][0]["port"] for r in socket["spec"]["ingress"]] == ["metrics"]
    assert socket["spec"]["ingress"][0]["from"] == [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    (http,) = of_kind(render(OPTIONS["network-policy-http"]), "NetworkPolicy")
    assert [r["ports"][0]["port"] for r in http["spec"]["ingress"]] == ["metrics", "slack"]


@pytest.mark.parametrize(("values", "message"), [
    ({"slack.mode": "websocket"}, 'slack.mode is "websocket": give socket (Socket Mode) or http'),
    ({"slack.existingSecret": ""}, "slack.existingSecret is empty"),
    ({"redis.existingSecret": ""}, "redis.existingSecret is empty"),
    ({"redis.sentinel.enabled": "true"}, "redis.sentinel.hosts is empty: give the Sentinels' addresses"),
    ({"redis.sentinel.enabled": "true", "redis.sentinel.hosts[0]": "a:26379", "redis.sentinel.masterName": "my master"},
     'redis.sentinel.masterName is "my master": give the name the Sentinels monitor'),
    ({"redis.sentinel.enabled": "true", "redis.sentinel.hosts[0]": "redis://a:26379"},
     'redis.sentinel.hosts has "redis://a:26379": give host or host:port'),
    ({"redis.waitReplicas": "11"}, "redis.waitReplicas is 11: give 0 (do not wait) to 10"),
    ({"ingress.enabled": "true"}, "ingress.enabled needs slack.mode=http"),
    ({"clusters": "null"}, "clusters is empty"),
    ({"podAntiAffinity": "hard"}, 'podAntiAffinity is "hard": give soft, required or none'),
    ({"metrics.port": "3000", "slack.mode": "http"}, "metrics.port and slack.port are the same port"),
    ({"serviceAccount.create": "false"}, "serviceAccount.name: give the ServiceAccount"),
])
def test_values_the_bot_cannot_run_with_are_refused_by_name(values: dict[str, str], message: str) -> None:
    """`helm template` stops, naming the value and what is valid, instead of rendering a bot that cannot start."""
    result = helm("template", "kafka-chatops", str(CHART), *set_args(values), check=False)
    assert result.returncode != 0, result.stdout
    assert message in result.stderr


def test_values_yaml_holds_no_secret() -> None:
    """Nothing in values.yaml looks like a Slack token or a Redis URL with a password."""
    text = (CHART / "values.yaml").read_text()
    assert not re.search(r"xox[abp]-|xapp-|redis(s)?://[^\s]*@", text)
    assert yaml.safe_load(text)["slack"]["existingSecret"]
