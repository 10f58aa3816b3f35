"""The clusters file's keys about a cluster's Strimzi operator: where its Deployment is (``operator:``)
and the Kafka versions an upgrade may target when the Deployment should not be believed
(``supported_kafka_versions:``). How the bot resolves the list: runbooks.rules.strimzi_releases."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from handlers.operator_deployment import DEFAULT_OPERATOR_DEPLOYMENT, OperatorLocation
from runbooks.rules.versions import VersionError, parse_version

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
MAX_VERSIONS = 50


class OperatorConfig(BaseModel):
    """``operator: {namespace: strimzi, deployment: strimzi-cluster-operator}``; the namespace defaults
    to the cluster's, the Deployment to Strimzi's own name."""

    model_config = ConfigDict(extra="forbid")

    namespace: str | None = None
    deployment: str = DEFAULT_OPERATOR_DEPLOYMENT

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 63 or not _DNS_LABEL.match(value)):
            raise ValueError(f"{value[:70]!r} is not a Kubernetes namespace: lowercase letters, digits and '-', "
                             "starting and ending with a letter or digit, at most 63 characters")
        return value

    @field_validator("deployment")
    @classmethod
    def _deployment(cls, value: str) -> str:
        if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
            raise ValueError(f"{value[:70]!r} is not a Deployment name: lowercase letters, digits, '-' and '.', "
                             f"starting and ending with a letter or digit (Strimzi's is {DEFAULT_OPERATOR_DEPLOYMENT})")
        return value

    def location(self) -> OperatorLocation:
        return OperatorLocation(namespace=self.namespace, deployment=self.deployment)


def check_supported_versions(value: Any) -> list[str] | None:
    """``supported_kafka_versions``: a non-empty list of distinct Kafka versions like 4.3.1. YAML reads
    an unquoted 4.3 as a number, so items are judged as text and the message shows what was written."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise ValueError("give a list of Kafka versions, e.g. [4.2.2, 4.3.1]")
    if not value:
        raise ValueError("an empty list would refuse every upgrade: list the versions the operator supports, "
                         "e.g. [4.2.2, 4.3.1], or leave the key out to read them from the operator's Deployment")
    if len(value) > MAX_VERSIONS:
        raise ValueError(f"{len(value)} versions: at most {MAX_VERSIONS}")
    versions: list[str] = []
    for item in value:
        text = str(item).strip()
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise ValueError(f"{str(item)[:40]!r} is not a Kafka version: write each like 4.3.1")
        try:
            parse_version(text)
        except VersionError:
            raise ValueError(f"{text[:40]!r} is not a Kafka version: write each as major.minor.patch, "
                             "like 4.3.1") from None
        if text in versions:
            raise ValueError(f"{text} is listed twice")
        versions.append(text)
    return versions
