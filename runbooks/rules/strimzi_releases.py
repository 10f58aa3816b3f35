"""Which Kafka versions the Strimzi operator running a cluster supports, and how the bot knows (pure).

Each Strimzi release supports a fixed list of Kafka versions (its ``kafka-versions.yaml``) and refuses
any other ``spec.kafka.version`` (docs/strimzi.md §0, §4). The cluster operator's Deployment names every
one of them in its ``STRIMZI_KAFKA_IMAGES`` environment variable (``<version>=<image>`` pairs), so
reading that Deployment tells the truth about the operator actually installed, patch releases and
custom builds included. Where the bot may not read it, a shipped table of releases stands in, chosen
by the operator's version (its image tag, or ``status.operatorLastSuccessfulVersion``). A clusters-file
override beats both. Every answer carries where it came from, so a refusal can say what it judged by.

The table holds the list each release shipped with (its ``.0``, plus the patch releases known to add
a version). Sources: the releases' notes and container image lists on GitHub and strimzi.io/downloads;
releases whose list could not be confirmed (0.51) are left out and fall back to the newest known.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from runbooks.rules.versions import (
    KRAFT_SUPPORTED,
    ZOOKEEPER_SUPPORTED,
    ClusterMode,
    VersionError,
    parse_version,
)

# Strimzi release -> the Kafka versions it supports. "0.45" is the last with ZooKeeper.
STRIMZI_RELEASES: dict[str, tuple[str, ...]] = {
    "0.45": ZOOKEEPER_SUPPORTED,
    "0.45.1": (*ZOOKEEPER_SUPPORTED, "3.9.1"),
    "0.46": ("3.9.0", "4.0.0"),
    "0.47": ("3.9.0", "3.9.1", "4.0.0"),
    "0.48": ("4.0.0", "4.1.0"),
    "0.49": ("4.0.0", "4.0.1", "4.1.0", "4.1.1"),
    "0.50": ("4.0.0", "4.0.1", "4.1.0", "4.1.1"),
    "1.0": ("4.1.0", "4.1.1", "4.1.2", "4.2.0"),
    "1.1": ("4.2.0", "4.2.1", "4.3.0"),
    "1.2": KRAFT_SUPPORTED,
}
NEWEST_KNOWN = "1.2"
LAST_WITH_ZOOKEEPER = "0.45"
KAFKA_IMAGES_ENV = "STRIMZI_KAFKA_IMAGES"

_OPERATOR_TAG = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:[-+.].*)?")


class VersionsSource(StrEnum):
    CLUSTERS_FILE = "clusters-file"
    DEPLOYMENT = "deployment"
    TABLE = "table"  # the shipped table, by the operator's known version
    NEWEST = "newest"  # the shipped table's newest (or last ZooKeeper) release: the version is unknown


class SupportedKafkaVersions(BaseModel):
    """The versions an upgrade may target on one cluster, and what they were judged by."""

    model_config = ConfigDict(frozen=True)

    versions: tuple[str, ...]
    source: VersionsSource
    operator_version: str | None = None  # "0.49.0", when the image tag or the Kafka status says
    release: str | None = None  # the table's key used ("0.49"), for TABLE and NEWEST
    deployment: str = ""  # "kafka/strimzi-cluster-operator"
    unread: str = ""  # why the Deployment did not give the list (TABLE and NEWEST)

    def supports(self, version: str) -> bool:
        return version in self.versions

    def judged_by(self) -> str:
        """'(from its Deployment kafka/strimzi-cluster-operator)' and the like."""
        if self.source is VersionsSource.CLUSTERS_FILE:
            return "(from the clusters file: supported_kafka_versions)"
        if self.source is VersionsSource.DEPLOYMENT:
            return f"(from its Deployment {self.deployment})"
        if self.source is VersionsSource.TABLE:
            return f"(Strimzi {self.release}'s list: {self.unread})"
        unknown = (f"the bot has no list for Strimzi {self.operator_version}" if self.operator_version
                   else "the operator's version is unknown")
        return f"(Strimzi {self.release}'s list, as {unknown}: {self.unread})"

    def refusal(self, version: str) -> str:
        if self.source is VersionsSource.CLUSTERS_FILE:
            who = "on this cluster"
        elif self.source is VersionsSource.NEWEST:
            who = f"by Strimzi {self.release}"
        else:
            who = ("by the Strimzi operator" + (f" {self.operator_version}" if self.operator_version else "")
                   + " running this cluster")
        return f"Kafka {version} is not supported {who} {self.judged_by()}: supported {', '.join(self.versions)}"


def parse_kafka_images(value: str) -> tuple[str, ...]:
    """The Kafka versions of a ``STRIMZI_KAFKA_IMAGES`` value (newline- or comma-separated
    ``<version>=<image>``), sorted oldest first; VersionError naming the entry that is not one."""
    versions: set[str] = set()
    for raw in re.split(r"[\n,]", value):
        entry = raw.strip()
        if not entry:
            continue
        version, sep, image = entry.partition("=")
        if not sep or not image.strip():
            raise VersionError(f"{entry[:60]!r} is not <version>=<image>")
        try:
            parse_version(version)
        except VersionError:
            raise VersionError(f"{version.strip()[:40]!r} in {entry[:60]!r} is not a Kafka version like 4.3.1") \
                from None
        versions.add(version.strip())
    if not versions:
        raise VersionError("it names no <version>=<image> pair")
    return tuple(sorted(versions, key=parse_version))


def operator_version_from_image(image: str | None) -> str | None:
    """'quay.io/strimzi/operator:0.49.0' -> '0.49.0'; None for a digest, 'latest' or no tag."""
    if not image:
        return None
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" not in last:
        return None
    match = _OPERATOR_TAG.fullmatch(last.rsplit(":", 1)[1])
    return ".".join(match.group(i) for i in (1, 2, 3)) if match else None


def release_key(operator_version: str) -> str | None:
    """The table's key for an operator version: the exact release if listed, else its minor line."""
    match = _OPERATOR_TAG.fullmatch(operator_version.strip())
    if match is None:
        return None
    major, minor, patch = match.group(1), match.group(2), match.group(3)
    exact = f"{major}.{minor}.{patch}"
    if exact in STRIMZI_RELEASES:
        return exact
    line = f"{major}.{minor}"
    return line if line in STRIMZI_RELEASES else None


def resolve_supported(*, mode: ClusterMode, override: Sequence[str] | None = None, deployment: str = "",
                      operator_image: str | None = None, kafka_images: str | None = None, unread: str = "",
                      status_operator_version: str | None = None) -> SupportedKafkaVersions:
    """The clusters-file ``override`` first; else the Deployment's ``STRIMZI_KAFKA_IMAGES`` (when it was
    read: ``unread`` empty); else the table by the operator's version (image tag, else the Kafka
    status); else the newest release the table knows (the last with ZooKeeper for a ZooKeeper cluster).
    ``unread`` says why the Deployment could not be read."""
    operator_version = operator_version_from_image(operator_image) or status_operator_version
    if override is not None:
        return SupportedKafkaVersions(versions=tuple(override), source=VersionsSource.CLUSTERS_FILE,
                                      operator_version=operator_version)
    if not unread:
        if kafka_images is None:
            unread = f"its Deployment {deployment} sets no {KAFKA_IMAGES_ENV}"
        else:
            try:
                versions = parse_kafka_images(kafka_images)
            except VersionError as exc:
                unread = f"the {KAFKA_IMAGES_ENV} of its Deployment {deployment} cannot be read: {exc}"
            else:
                return SupportedKafkaVersions(versions=versions, source=VersionsSource.DEPLOYMENT,
                                              operator_version=operator_version, deployment=deployment)
    key = release_key(operator_version) if operator_version else None
    if key is not None:
        return SupportedKafkaVersions(versions=STRIMZI_RELEASES[key], source=VersionsSource.TABLE,
                                      operator_version=operator_version, release=key, deployment=deployment,
                                      unread=unread)
    fallback = NEWEST_KNOWN if mode is ClusterMode.KRAFT else LAST_WITH_ZOOKEEPER
    return SupportedKafkaVersions(versions=STRIMZI_RELEASES[fallback], source=VersionsSource.NEWEST,
                                  operator_version=operator_version, release=fallback, deployment=deployment,
                                  unread=unread)
