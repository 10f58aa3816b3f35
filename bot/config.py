"""Settings (environment, pydantic-settings) and the clusters file (YAML, ``KAFKA_CHATOPS_CONFIG``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.alert_config import AlertsConfig
from handlers.clusters import ManagedCluster
from handlers.ports import ClusterRef
from handlers.values import span
from runbooks.config_rules import class_key_problem
from runbooks.models import ApprovalPolicy

_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class ConfigError(Exception):
    """The settings or the clusters file are wrong; the message names each problem."""


def parse_duration(value: str | int | float) -> float:
    """Seconds, from a number (YAML's 90) or a duration as typed in Slack (0s, 90s, 30m, 1h30m, 1d)."""
    if isinstance(value, int | float):
        return float(value)
    text = value.replace(" ", "")
    if text.isascii() and text.isdigit():
        return float(text)
    seconds = span(text)
    if seconds is None:
        raise ValueError(f"{value!r} is not a duration: write it like 90s, 30m, 2h, 1d or 1h30m, or in seconds")
    return seconds.total_seconds()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    slack_bot_token: str | None = None
    slack_app_token: str | None = None
    slack_signing_secret: str | None = None
    slack_api_url: str | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    kubeconfig: str | None = None
    kafka_chatops_config: str | None = None
    # How long a replica's claim on a run lasts without renewal: the takeover delay after a crash.
    kafka_chatops_lease_ttl: float = Field(default=10.0, gt=0.5)
    kafka_chatops_poll_interval: float = Field(default=0.5, gt=0)
    # The alert monitors (health and lag polls, Kubernetes watches) and the HTTP server for
    # /healthz, /readyz and /metrics (no port: no server; 0: any free port).
    kafka_chatops_monitors: bool = True
    kafka_chatops_http_port: int | None = Field(default=None, ge=0, le=65535)
    kafka_chatops_http_host: str = "0.0.0.0"
    kafka_chatops_watch_timeout: int = Field(default=60, ge=1)  # seconds a watch stream lasts before it resumes


class ClusterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    namespace: str = "kafka"
    kafka: str | None = None  # the Kafka resource's name; defaults to the cluster's name
    bootstrap: str | None = None
    channel: str | None = None
    approvers: list[str] = Field(default_factory=list)
    approver_groups: list[str] = Field(default_factory=list)
    four_eyes: bool = True
    approvals_required: int = Field(default=1, ge=1)
    approval_timeout: str | int | float = "30m"
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    allowed_class_keys: list[str] = Field(default_factory=list)  # plugin keys the config runbook may change

    @field_validator("allowed_class_keys")
    @classmethod
    def _class_keys(cls, keys: list[str]) -> list[str]:
        problems = [p for k in keys if (p := class_key_problem(k))]
        if problems:
            raise ValueError("; ".join(problems))
        return keys

    @field_validator("approval_timeout")
    @classmethod
    def _duration(cls, value: str | int | float) -> str | int | float:
        parse_duration(value)
        return value


class FileConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clusters: dict[str, ClusterConfig] = Field(default_factory=dict)

    @field_validator("clusters")
    @classmethod
    def _names(cls, clusters: dict[str, ClusterConfig]) -> dict[str, ClusterConfig]:
        for name in clusters:
            if not _K8S_NAME.match(name):
                raise ValueError(f"cluster name {name!r} is not a valid Kubernetes name")
        return clusters


def load_clusters(path: str | Path) -> dict[str, ManagedCluster]:
    try:
        raw: Any = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"the clusters file {path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"the clusters file {path} is not valid YAML: {exc}") from exc
    try:
        parsed = FileConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"the clusters file {path} is invalid: {problems}") from exc
    return {name: managed_cluster(name, c) for name, c in parsed.clusters.items()}


def managed_cluster(name: str, c: ClusterConfig) -> ManagedCluster:
    return ManagedCluster(
        ref=ClusterRef(name=name, namespace=c.namespace, kafka=c.kafka or name, bootstrap_servers=c.bootstrap),
        policy=ApprovalPolicy(
            approvers=tuple(c.approvers), approver_groups=tuple(c.approver_groups), four_eyes=c.four_eyes,
            approvals_required=c.approvals_required, approval_timeout_s=parse_duration(c.approval_timeout),
        ),
        channel=c.channel,
        alerts=c.alerts.rules(),
        allowed_class_keys=frozenset(c.allowed_class_keys),
    )
