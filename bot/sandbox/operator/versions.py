"""Kafka versions the twin supports and KRaft metadata levels (docs/kafka-from-maven.md §6).

Strimzi 1.2.0 supports the 4.2.x and 4.3.x lines (``kafka-versions.yaml``); the twin additionally
needs the jars on disk, so "supported" = a release of those lines whose jars are fetched.
Admin ``describeFeatures`` returns the short level (29, 30): the table maps it to the name Strimzi
writes in ``status.kafkaMetadataVersion`` (``MetadataVersion.toString()``, e.g. "4.2-IV1").
"""

from __future__ import annotations

import re

from bot.sandbox import jars
from bot.sandbox.errors import SandboxError

DEFAULT_KAFKA_VERSION = "4.3.1"
SUPPORTED_LINES = ("4.2", "4.3")  # Strimzi 1.2.0

# MetadataVersion.java (feature level of every IBP since KRaft's minimum, 3.3-IV3 = 7).
METADATA_LEVELS: dict[str, int] = {
    "3.3-IV3": 7, "3.4-IV0": 8, "3.5-IV0": 9, "3.5-IV1": 10, "3.5-IV2": 11, "3.6-IV0": 12,
    "3.6-IV1": 13, "3.6-IV2": 14, "3.7-IV0": 15, "3.7-IV1": 16, "3.7-IV2": 17, "3.7-IV3": 18,
    "3.7-IV4": 19, "3.8-IV0": 20, "3.9-IV0": 21, "4.0-IV0": 22, "4.0-IV1": 23, "4.0-IV2": 24,
    "4.0-IV3": 25, "4.1-IV0": 26, "4.1-IV1": 27, "4.2-IV0": 28, "4.2-IV1": 29, "4.3-IV0": 30,
}
_LEVEL_NAMES = {level: name for name, level in METADATA_LEVELS.items()}
# LATEST_PRODUCTION of each release line = the metadata version a fresh cluster of it formats with
# and what Strimzi bumps to when spec.kafka.metadataVersion is unset.
DEFAULT_METADATA_BY_LINE = {"4.0": "4.0-IV3", "4.1": "4.1-IV1", "4.2": "4.2-IV1", "4.3": "4.3-IV0"}

_METADATA_RE = re.compile(r"^(\d+)\.(\d+)(?:-IV(\d+))?$")


class UnsupportedKafkaVersion(SandboxError):
    """``spec.kafka.version`` names no supported release (Strimzi's UnsupportedKafkaVersionException)."""

    strimzi_reason = "UnsupportedKafkaVersionException"


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def release_line(version: str) -> str:
    """"4.3.1" -> "4.3"."""
    return ".".join(version.split(".")[:2])


def supported_versions() -> list[str]:
    """Releases of the supported lines whose jars are in the cache, oldest first."""
    root = jars.cache_root()
    found = []
    if root.is_dir():
        for d in root.iterdir():
            name = d.name
            try:
                jars.validate_version_string(name)
            except SandboxError:
                continue
            if release_line(name) in SUPPORTED_LINES and jars.is_fetched(name):
                found.append(name)
    return sorted(found, key=version_key)


def check_supported(version: str) -> None:
    """Raise UnsupportedKafkaVersion with Strimzi's wording (plus how to fetch, the twin's addition)."""
    supported = supported_versions()
    if version in supported:
        return
    hint = ""
    try:
        jars.validate_version_string(version)
        if release_line(version) in SUPPORTED_LINES:
            hint = f" (fetch its jars first: kafka-chatops sandbox fetch --kafka-version {version})"
    except SandboxError:
        pass
    raise UnsupportedKafkaVersion(
        f"Unsupported Kafka.spec.kafka.version: {version}. Supported versions are: [{', '.join(supported)}]{hint}"
    )


def default_metadata_version(kafka_version: str) -> str:
    line = release_line(kafka_version)
    try:
        return DEFAULT_METADATA_BY_LINE[line]
    except KeyError:
        raise UnsupportedKafkaVersion(f"No known default metadata version for Kafka {kafka_version}") from None


def metadata_level(name: str) -> int:
    """Level of "4.3-IV0", or of a short "4.3" (= the latest IV of that line, as Kafka parses it)."""
    name = str(name).strip()
    m = _METADATA_RE.match(name)
    if not m:
        raise ValueError(f"{name!r} is not a metadata version like 4.3-IV0")
    if m.group(3) is None:
        candidates = [lvl for n, lvl in METADATA_LEVELS.items() if n.startswith(f"{m.group(1)}.{m.group(2)}-")]
        if not candidates:
            raise ValueError(f"unknown metadata version {name!r}")
        return max(candidates)
    if name not in METADATA_LEVELS:
        raise ValueError(f"unknown metadata version {name!r}")
    return METADATA_LEVELS[name]


def metadata_name(level: int) -> str:
    """"4.2-IV1" for 29; an unknown (future) level is shown as its number."""
    return _LEVEL_NAMES.get(int(level), str(level))


def metadata_line(name: str) -> str:
    """"4.2-IV1" -> "4.2"."""
    return name.split("-", 1)[0]
