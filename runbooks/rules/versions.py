"""Kafka versions the upgrade runbook accepts, and KRaft metadata levels (pure).

What Strimzi supports is a property of the operator, not of Kafka: each Strimzi release carries a
``kafka-versions.yaml`` and refuses any other ``spec.kafka.version`` (docs/strimzi.md §0, §4). The bot
checks the same list before it patches anything, so a typo or an unsupported release is refused
in the channel with the list, instead of as a NotReady Kafka resource minutes later.

Metadata levels are ``MetadataVersion.java``'s feature levels (docs/kafka-from-maven.md §6): Admin
``describeFeatures`` and ``ApiVersions`` speak the short level (29, 30); Strimzi writes the name
(``4.2-IV1``) in ``status.kafkaMetadataVersion``. A broker advertises, as the highest
``metadata.version`` it supports, its own release's LATEST_PRODUCTION level, which is how the
bot tells which release line a broker process really runs.
"""

from __future__ import annotations

import re
from enum import StrEnum

# Strimzi 1.2.0 (kafka-versions.yaml@1.2.0): the 4.2.x and 4.3.x lines, KRaft only. The other releases,
# and how the bot learns which one runs a cluster: runbooks.rules.strimzi_releases.
KRAFT_SUPPORTED: tuple[str, ...] = ("4.2.0", "4.2.1", "4.2.2", "4.3.0", "4.3.1")
# Strimzi 0.45 (the last release with ZooKeeper, kafka-versions.yaml@0.45.0): the 3.8.x and 3.9.x lines.
ZOOKEEPER_SUPPORTED: tuple[str, ...] = ("3.8.0", "3.8.1", "3.9.0")

# MetadataVersion.java: the feature level of every KRaft metadata version since 3.3-IV3.
METADATA_LEVELS: dict[str, int] = {
    "3.3-IV3": 7, "3.4-IV0": 8, "3.5-IV0": 9, "3.5-IV1": 10, "3.5-IV2": 11, "3.6-IV0": 12,
    "3.6-IV1": 13, "3.6-IV2": 14, "3.7-IV0": 15, "3.7-IV1": 16, "3.7-IV2": 17, "3.7-IV3": 18,
    "3.7-IV4": 19, "3.8-IV0": 20, "3.9-IV0": 21, "4.0-IV0": 22, "4.0-IV1": 23, "4.0-IV2": 24,
    "4.0-IV3": 25, "4.1-IV0": 26, "4.1-IV1": 27, "4.2-IV0": 28, "4.2-IV1": 29, "4.3-IV0": 30,
}
_LEVEL_NAMES = {level: name for name, level in METADATA_LEVELS.items()}
# LATEST_PRODUCTION of each release line: what a fresh cluster formats with, what Strimzi bumps to
# when metadataVersion is unset, and the highest level a broker of that line advertises.
DEFAULT_METADATA: dict[str, str] = {
    "3.7": "3.7-IV4", "3.8": "3.8-IV0", "3.9": "3.9-IV0", "4.0": "4.0-IV3", "4.1": "4.1-IV1",
    "4.2": "4.2-IV1", "4.3": "4.3-IV0",
}

_VERSION = re.compile(r"(\d{1,3})\.(\d{1,3})\.(\d{1,3})")
_METADATA = re.compile(r"(\d{1,3})\.(\d{1,3})(?:-IV(\d{1,2}))?")


class ClusterMode(StrEnum):
    KRAFT = "kraft"
    ZOOKEEPER = "zookeeper"


class VersionError(ValueError):
    """A version string the rules cannot read; the message says what a valid one looks like."""


def parse_version(version: str) -> tuple[int, int, int]:
    match = _VERSION.fullmatch(version.strip())
    if match is None:
        raise VersionError(f"{version!r} is not a Kafka version: write it like 4.3.1")
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def release_line(version: str) -> str:
    """'4.3.1' -> '4.3' (also the inter.broker.protocol.version of that release)."""
    major, minor, _ = parse_version(version)
    return f"{major}.{minor}"


def line_key(line: str) -> tuple[int, int]:
    """'3.9' or '3.9-IV0' -> (3, 9): the release line of a protocol or metadata version."""
    match = _METADATA.fullmatch(str(line).strip())
    if match is None:
        raise VersionError(f"{line!r} is not a release line like 3.9 or 4.2-IV1")
    return int(match.group(1)), int(match.group(2))


def detect_mode(metadata_version: str | None, has_quorum: bool) -> ClusterMode:
    """KRaft when the status carries a metadata version or Kafka answers DescribeQuorum; a
    ZooKeeper cluster (Strimzi <= 0.45) has neither."""
    return ClusterMode.KRAFT if metadata_version or has_quorum else ClusterMode.ZOOKEEPER


def metadata_level(name: str) -> int:
    """The level of '4.3-IV0'; a short '4.3' means that line's latest, as Kafka parses it."""
    text = str(name).strip()
    if text.isdigit():
        return int(text)
    match = _METADATA.fullmatch(text)
    if match is None:
        raise VersionError(f"{name!r} is not a metadata version like 4.3-IV0")
    if match.group(3) is None:
        line = f"{match.group(1)}.{match.group(2)}"
        levels = [lvl for n, lvl in METADATA_LEVELS.items() if n.startswith(line + "-")]
        if not levels:
            raise VersionError(f"no known metadata version of the {line} line")
        return max(levels)
    if text not in METADATA_LEVELS:
        raise VersionError(f"unknown metadata version {name!r}")
    return METADATA_LEVELS[text]


def metadata_name(level: int) -> str:
    """'4.2-IV1' for 29; a level this table does not know is shown as its number."""
    return _LEVEL_NAMES.get(level, str(level))


def default_metadata(version: str) -> str:
    """The metadata version Kafka ``version`` runs by default (its line's LATEST_PRODUCTION)."""
    line = release_line(version)
    if line not in DEFAULT_METADATA:
        raise VersionError(f"no known default metadata version for Kafka {version}")
    return DEFAULT_METADATA[line]


def line_of_level(level: int) -> str | None:
    """The release line whose binaries advertise ``level`` as their highest metadata version."""
    for line, name in DEFAULT_METADATA.items():
        if METADATA_LEVELS[name] == level:
            return line
    return None
