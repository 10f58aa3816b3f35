"""Settings (environment, pydantic-settings) and the clusters file (YAML, ``KAFKA_CHATOPS_CONFIG``).

The clusters file is refused at start, naming the cluster and the key, when it could only mislead:
empty, a key written twice (YAML would keep the later silently), nobody who could approve, more
approvals required than approvers, a namespace Kubernetes would not accept.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.config.access import AccessConfig
from bot.config.alert_rules import AlertsConfig
from bot.config.durations import parse_duration
from bot.config.kafka_security import (
    AuthenticationConfig,
    KafkaSecurityConfig,
    TlsConfig,
    check_listener,
    check_security,
)
from bot.config.kube_targets import ClusterKube
from bot.config.operator_versions import OperatorConfig, check_supported_versions
from bot.config.yaml_files import YamlFileError, kind_of, read_yaml
from handlers.clusters import KafkaClientKeys, ManagedCluster
from handlers.ports import ClusterRef
from runbooks.engine.models import ApprovalPolicy
from runbooks.rules.config_keys import class_key_problem

_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_KEY_LIKE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
CLUSTERS_FILE = "the clusters YAML file: a `clusters:` mapping of cluster names to their settings"
MAX_PROBLEMS = 8


class ConfigError(Exception):
    """The bot cannot start: a setting, the clusters file, or what a setting points at is wrong or
    does not answer. The message names the setting, what was wrong and what is valid."""

    @classmethod
    def of(cls, problems: list[str]) -> ConfigError:
        if len(problems) == 1:
            return cls(problems[0])
        return cls(f"{len(problems)} problems:\n  - " + "\n  - ".join(problems))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    slack_bot_token: str | None = None
    slack_app_token: str | None = None
    slack_signing_secret: str | None = None
    # The same three as files, as Kubernetes mounts a Secret (bot.slack.run.check_settings reads them).
    slack_bot_token_file: str | None = None
    slack_app_token_file: str | None = None
    slack_signing_secret_file: str | None = None
    slack_api_url: str | None = None
    redis_url: str = "redis://127.0.0.1:6379/0"
    # Secrets as Kubernetes mounts them: the Redis servers' password, and the Sentinels' own if they
    # require one (bot.store.sentinel_url).
    redis_password_file: str | None = None
    redis_sentinel_password_file: str | None = None
    # Replicas that must confirm each run write (WAIT) before the bot acts on it; 0: do not wait.
    redis_wait_replicas: int = Field(default=0, ge=0, le=10)
    redis_wait_timeout_ms: int = Field(default=500, ge=1, le=60_000)
    kubeconfig: str | None = None
    kafka_chatops_config: str | None = None
    # How long a replica's claim on a run lasts without renewal: the takeover delay after a crash.
    kafka_chatops_lease_ttl: float = Field(default=10.0, gt=0.5, le=3600, allow_inf_nan=False)
    kafka_chatops_poll_interval: float = Field(default=0.5, gt=0, le=60, allow_inf_nan=False)
    # How often the KafkaRebalance cards look at the resources (bot.monitors.rebalances).
    kafka_chatops_rebalance_poll_interval: float = Field(default=10.0, ge=1, le=300, allow_inf_nan=False)
    # The alert monitors (health and lag polls, Kubernetes watches) and the HTTP server for
    # /healthz, /readyz and /metrics (no port: no server; 0: any free port).
    kafka_chatops_monitors: bool = True
    # Committed offsets streamed from __consumer_offsets (false: the admin API only; bot.kafka.lag_stream).
    kafka_chatops_lag_stream: bool = True
    kafka_chatops_http_port: int | None = Field(default=None, ge=0, le=65535)
    kafka_chatops_http_host: str = "0.0.0.0"
    # Seconds a watch stream lasts before it resumes.
    kafka_chatops_watch_timeout: int = Field(default=60, ge=1, le=3600)
    # Logs: text (the default) or json, one object per line (bot.observability.logs).
    kafka_chatops_log_format: str = "text"
    log_level: str = "INFO"


class ClusterConfig(AccessConfig):
    # The access keys (requesters, runbooks, viewers, channels) come from AccessConfig.
    model_config = ConfigDict(extra="forbid")

    namespace: str = "kafka"
    kafka: str | None = None  # the Kafka resource's name; defaults to the cluster's name
    bootstrap: str | None = None
    # Kafka security (bot.config.kafka_security): the listener by its spec name, whom to trust, who to be.
    listener: str | None = None
    tls: TlsConfig | None = None
    authentication: AuthenticationConfig | None = None
    channel: str | None = None
    approvers: list[str] = Field(default_factory=list)
    approver_groups: list[str] = Field(default_factory=list)
    four_eyes: bool = True
    approvals_required: int = Field(default=1, ge=1)
    approval_timeout: str | int | float = "30m"
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    allowed_class_keys: list[str] = Field(default_factory=list)  # plugin keys the config runbook may change
    # The cluster's Kubernetes API (bot.config.kube_targets): default KUBECONFIG's current context,
    # or the pod's service account.
    kubeconfig: str | None = Field(default=None, min_length=1)
    context: str | None = Field(default=None, min_length=1)
    # The Strimzi operator's Deployment (the Kafka versions it supports), and an override of its list.
    operator: OperatorConfig = Field(default_factory=OperatorConfig)
    supported_kafka_versions: list[str] | None = None

    @field_validator("supported_kafka_versions", mode="before")
    @classmethod
    def _supported_versions(cls, value: Any) -> list[str] | None:
        return check_supported_versions(value)

    @field_validator("listener")
    @classmethod
    def _listener(cls, value: str | None) -> str | None:
        return check_listener(value)

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
        if parse_duration(value) <= 0:
            raise ValueError("0 would expire every approval as it is asked: give a duration like 30m")
        return value

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if len(value) > 63 or not _DNS_LABEL.match(value):
            raise ValueError(f"{_shown(value)} is not a Kubernetes namespace: a DNS-1123 label is lowercase "
                             "letters, digits and '-', starting and ending with a letter or digit, at most 63 "
                             "characters")
        return value

    @field_validator("approvals_required")
    @classmethod
    def _approvals_possible(cls, value: int, info: ValidationInfo) -> int:
        # Members of approver_groups are known only to Slack, at run time: with groups the file
        # cannot count the approvers, and the number is taken as written.
        people = len(set(info.data.get("approvers") or ()))
        if people and not info.data.get("approver_groups") and value > people:
            raise ValueError(
                f"{value} approvals from {people} approver{'s' if people > 1 else ''} can never be given: "
                f"give at most {people}, or add approvers (or approver_groups)")
        return value

    @model_validator(mode="after")
    def _security(self) -> ClusterConfig:
        check_security(self.listener, self.tls, self.authentication)
        return self

    def security(self) -> KafkaSecurityConfig:
        return KafkaSecurityConfig(listener=self.listener, tls=self.tls, authentication=self.authentication)

    @model_validator(mode="after")
    def _someone_approves(self) -> ClusterConfig:
        if not self.approvers and not self.approver_groups:
            raise ValueError("nobody could approve a step of any run: list Slack member ids (U…) in approvers "
                             "or user-group ids (S…) in approver_groups")
        return self

    @model_validator(mode="after")
    def _cards_where_commands_are_taken(self) -> ClusterConfig:
        # A card's buttons count as pressed in the card's channel: posted outside `channels`, its
        # Approve would be refused and no run could ever go on.
        if self.channel is not None and self.channels is not None and self.channel not in self.channels:
            raise ValueError(f"channel {self.channel} (where run cards and alerts are posted) is not in channels "
                             f"{self.channels}: their buttons would be refused there; add {self.channel} to "
                             "channels, or post the cards in one of them")
        return self


class FileConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clusters: dict[str, ClusterConfig] = Field(default_factory=dict)

    @field_validator("clusters")
    @classmethod
    def _names(cls, clusters: dict[str, ClusterConfig]) -> dict[str, ClusterConfig]:
        for name in clusters:
            if not _K8S_NAME.match(name):
                raise ValueError(f"cluster name {_shown(name)} is not a valid Kubernetes name: lowercase letters, "
                                 "digits, '-' and '.', starting and ending with a letter or digit")
        return clusters


def load_clusters(path: str | Path) -> dict[str, ManagedCluster]:
    return load_clusters_file(path)[0]


def load_clusters_file(path: str | Path) -> tuple[dict[str, ManagedCluster], dict[str, ClusterKube]]:
    """The managed clusters, and what each says about its Kubernetes API (resolved by
    bot.config.kube_targets, which reads the kubeconfigs)."""
    clusters, kube, _ = load_clusters_config(path)
    return clusters, kube


def load_clusters_config(path: str | Path) -> tuple[dict[str, ManagedCluster], dict[str, ClusterKube],
                                                     dict[str, KafkaSecurityConfig]]:
    """``load_clusters_file``, and each cluster's Kafka security keys (for bot.kafka.security)."""
    name = f"the clusters file {path} (KAFKA_CHATOPS_CONFIG)"
    try:
        raw: Any = read_yaml(Path(path), name=name, valid=CLUSTERS_FILE)
    except YamlFileError as exc:
        raise ConfigError(str(exc)) from None
    if raw is None:
        raise ConfigError(f"{name} is empty: it needs a `clusters:` mapping with at least one cluster")
    if not isinstance(raw, dict):
        raise ConfigError(f"{name} is not a YAML mapping with a `clusters:` key (its top level is {kind_of(raw)}): "
                          "the only top-level key is `clusters`")
    others = [key for key in raw if key != "clusters"]
    if others:  # not echoed unless it looks like a key: a file of another kind may hold secrets
        shown = ", ".join(k for k in others if isinstance(k, str) and _KEY_LIKE.match(k)) or f"{len(others)} of them"
        raise ConfigError(f"{name} has top-level keys other than `clusters` ({shown}): the only top-level key is "
                          "`clusters`, a mapping of cluster names to their settings")
    if not raw.get("clusters"):
        raise ConfigError(f"{name} names no cluster: list at least one cluster under `clusters:`")
    try:
        parsed = FileConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{name} is invalid: {_problems(exc)}") from None
    return ({name: managed_cluster(name, c) for name, c in parsed.clusters.items()},
            {name: ClusterKube(kubeconfig=c.kubeconfig, context=c.context) for name, c in parsed.clusters.items()},
            {name: c.security() for name, c in parsed.clusters.items()})


def _shown(value: object, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


def _problems(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part)[:40] for part in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            keys = _keys_at(error["loc"][:-1])
            message = "unknown key" + (f" (valid here: {', '.join(keys)})" if keys else "")
        problems.append(f"{where}: {message}")
    more = len(problems) - MAX_PROBLEMS
    return "; ".join(problems[:MAX_PROBLEMS]) + (f"; and {more} more" if more > 0 else "")


def _keys_at(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the file may have at ``loc`` (e.g. ``clusters.prod``), for "unknown key" messages."""
    model: type[BaseModel] = FileConfig
    parts = list(loc)
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        target = _model_in(field.annotation) if field is not None else None
        if target is None:
            return []
        if typing.get_origin(field.annotation if field else None) is dict:
            parts = parts[1:]  # the cluster's name
        model = target
    return [f.alias or n for n, f in model.model_fields.items()]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (dict, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def managed_cluster(name: str, c: ClusterConfig) -> ManagedCluster:
    return ManagedCluster(
        ref=ClusterRef(name=name, namespace=c.namespace, kafka=c.kafka or name, bootstrap_servers=c.bootstrap,
                       listener=c.listener),
        policy=ApprovalPolicy(
            approvers=tuple(c.approvers), approver_groups=tuple(c.approver_groups), four_eyes=c.four_eyes,
            approvals_required=c.approvals_required, approval_timeout_s=parse_duration(c.approval_timeout),
        ),
        channel=c.channel,
        access=c.access_policy(),
        alerts=c.alerts.rules(),
        allowed_class_keys=frozenset(c.allowed_class_keys),
        operator=c.operator.location(),
        supported_kafka_versions=tuple(c.supported_kafka_versions) if c.supported_kafka_versions is not None
        else None,
        kafka_client=KafkaClientKeys(
            tls=c.tls is not None, ca_secret=c.tls.ca_secret if c.tls is not None else None,
            authentication=c.authentication.type if c.authentication is not None else None,
            kafka_user=c.authentication.kafka_user if c.authentication is not None else None),
        kubectl_flags=(*(("--kubeconfig", c.kubeconfig) if c.kubeconfig else ()),
                       *(("--context", c.context) if c.context else ())),
    )
