"""Which metadata version a reconciliation uses while the Kafka version changes (pure).

Strimzi's ``KRaftVersionChangeCreator``: the from/to versions come from the pods'
``strimzi.io/kafka-version`` annotations (lowest/highest), so an interrupted upgrade resumes. During
an upgrade or downgrade the metadata version stays where it is; only once every pod runs the target
version does the desired (or, when unset, the version's default) metadata version apply: that is
the "bump after the roll" of an unpinned cluster (docs/strimzi.md §4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.operator import status as st
from bot.sandbox.operator.versions import default_metadata_version, metadata_level, version_key


@dataclass(frozen=True)
class VersionChange:
    from_version: str
    to_version: str
    metadata_version: str  # the metadata version this reconciliation drives the cluster to
    warnings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_change(self) -> bool:
        return self.from_version != self.to_version


def plan_version_change(
    pod_versions: list[str], desired_version: str, desired_metadata: str | None, current_metadata: str | None,
) -> VersionChange:
    if not pod_versions:
        return VersionChange(desired_version, desired_version,
                             _without_change(desired_version, desired_metadata, None, []), [])
    lowest = min(pod_versions, key=version_key)
    highest = max(pod_versions, key=version_key)
    warnings: list[dict[str, Any]] = []
    if version_key(highest) > version_key(desired_version):
        from_v, to_v = highest, desired_version
        md = _keep_current(current_metadata, to_v, "we are downgrading to")
    elif version_key(lowest) < version_key(desired_version):
        from_v, to_v = lowest, desired_version
        md = _keep_current(current_metadata, from_v, "we upgrade from")
    else:
        from_v = to_v = desired_version
        md = _without_change(desired_version, desired_metadata, current_metadata, warnings)
    return VersionChange(from_v, to_v, md, warnings)


def _keep_current(current: str | None, version: str, role: str) -> str:
    if current is None:
        return default_metadata_version(version)
    if metadata_level(current) > metadata_level(default_metadata_version(version)):
        raise st.ReconcileFailure(
            "KafkaUpgradeException",
            f"The current metadata version ({current}) has to be lower or equal to the Kafka broker "
            f"version {role} ({version})",
        )
    return current


def _without_change(version: str, desired: str | None, current: str | None,
                    warnings: list[dict[str, Any]]) -> str:
    default = default_metadata_version(version)
    if desired is None:
        return default
    if metadata_level(desired) <= metadata_level(default):
        return desired
    keep = current or default
    # Strimzi only logs this and keeps the current level; the twin also says it in the status, so
    # that a refused metadataVersion is visible where the bot looks.
    warnings.append(st.warning(
        "KafkaMetadataVersion",
        f"Desired metadata version ({desired}) is newer than the used Kafka version ({version}). "
        f"The cluster will continue to use the current metadata version ({keep}).",
    ))
    return keep
