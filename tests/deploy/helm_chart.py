"""helm, found or refused, and the chart rendered: shared by the deploy tests.

helm is built from the Go module proxy by `make helm` (.ci/build-helm) into
~/.cache/kafka-chatops/helm/<version>/helm, never into the repository. Under CI (CI=true, which
.ci/run sets) a missing helm fails the tests that need it; elsewhere they skip and say how to get it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "kafka-chatops"
MANIFESTS = ROOT / "deploy" / "kubernetes" / "kafka-chatops.yaml"
HELM_VERSION = (ROOT / ".ci" / "helm" / "VERSION").read_text().strip()
RELEASE = "kafka-chatops"
NAMESPACE = "kafka-chatops"


def helm_binary() -> str:
    """$HELM, else the binary `make helm` caches, else a helm on PATH."""
    cache = Path(os.environ.get("KAFKA_CHATOPS_HELM_CACHE", Path.home() / ".cache" / "kafka-chatops" / "helm"))
    for candidate in (os.environ.get("HELM"), str(cache / HELM_VERSION / "helm"), shutil.which("helm")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    message = (f"helm is not installed: `make helm` builds helm {HELM_VERSION} from the Go module proxy into "
               f"{cache / HELM_VERSION}")
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=60, check=False,
                            env={**os.environ, "HELM_CACHE_HOME": "/tmp/kafka-chatops-helm/cache",
                                 "HELM_CONFIG_HOME": "/tmp/kafka-chatops-helm/config",
                                 "HELM_DATA_HOME": "/tmp/kafka-chatops-helm/data"})
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def set_args(values: dict[str, str]) -> list[str]:
    return [arg for key, value in values.items() for arg in ("--set", f"{key}={value}")]


def template_text(values: dict[str, str] | None = None) -> str:
    return helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *set_args(values or {})).stdout


def render(values: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The chart's objects, rendered with these `--set` values on top of values.yaml."""
    return [doc for doc in yaml.safe_load_all(template_text(values)) if doc]


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


# Each option of values.yaml that changes what is rendered, with the values that turn it on.
OPTIONS: dict[str, dict[str, str]] = {
    "default": {},
    "http-with-ingress": {"slack.mode": "http", "ingress.enabled": "true", "ingress.className": "nginx",
                          "ingress.tls[0].secretName": "kafka-chatops-tls",
                          "ingress.tls[0].hosts[0]": "kafka-chatops.example.com"},
    "http-without-ingress": {"slack.mode": "http"},
    "prometheus": {"metrics.serviceMonitor.enabled": "true", "metrics.prometheusRule.enabled": "true"},
    "network-policy-socket": {"networkPolicy.enabled": "true",
                              "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.name": "monitoring"},
    "network-policy-http": {"networkPolicy.enabled": "true", "slack.mode": "http"},
    "redis-sentinel": {"redis.sentinel.enabled": "true", "redis.existingSecret": "",
                       "redis.sentinel.hosts[0]": "redis-node-0.redis-headless.redis.svc:26379",
                       "redis.sentinel.hosts[1]": "redis-node-1.redis-headless.redis.svc",
                       "redis.sentinel.passwordSecret.name": "redis",
                       "redis.sentinel.sentinelPasswordSecret.name": "redis-sentinel",
                       "redis.sentinel.tls": "true", "redis.waitReplicas": "1"},
    "redis-bundled": {"redis.bundled.enabled": "true", "redis.existingSecret": "",
                      "redis.bundled.auth.existingSecret": "kafka-chatops-redis-auth"},
    "redis-bundled-required-anti-affinity": {"redis.bundled.enabled": "true", "redis.existingSecret": "",
                                             "redis.bundled.auth.existingSecret": "kafka-chatops-redis-auth",
                                             "redis.bundled.podAntiAffinity": "required",
                                             "redis.bundled.persistence.storageClass": "fast-ssd",
                                             "redis.bundled.replicas": "5", "redis.waitReplicas": "2"},
    "rbac-everything": {"rbac.mirrorMaker2": "true", "rbac.rebalance": "true",
                        "rbac.secretNames[0]": "my-cluster-cluster-ca-cert",
                        "rbac.extraNamespaces[0]": "kafka-west", "rbac.extraNamespaces[1]": "kafka-east"},
    "no-rbac-existing-service-account": {"rbac.create": "false", "serviceAccount.create": "false",
                                         "serviceAccount.name": "platform-bot"},
    "required-anti-affinity-one-replica": {"podAntiAffinity": "required", "replicaCount": "1"},
    "no-anti-affinity": {"podAntiAffinity": "none"},
}
