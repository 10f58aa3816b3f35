"""Which ``kafka.strimzi.io`` version the API server serves.

Strimzi 0.49-0.51 serve ``v1`` next to ``v1beta2``, 1.0+ only ``v1``, and <= 0.48 only
``v1beta2`` (docs/strimzi.md §0), so the bot asks the server instead of assuming. The group discovery
document (``GET /apis/kafka.strimzi.io``) lists the served versions in one small call.
"""

from __future__ import annotations

from typing import Any

GROUP = "kafka.strimzi.io"
PREFERRED_VERSIONS = ("v1", "v1beta2")


class UnsupportedStrimziApi(Exception):
    """The server serves the group, but none of the versions this bot understands."""


def choose_version(discovery: dict[str, Any]) -> str:
    """Pick ``v1`` if served, else ``v1beta2``, from an ``APIGroup`` discovery document."""
    served = [
        str(entry.get("version"))
        for entry in (discovery.get("versions") or [])
        if isinstance(entry, dict) and entry.get("version")
    ]
    for version in PREFERRED_VERSIONS:
        if version in served:
            return version
    raise UnsupportedStrimziApi(
        f"{GROUP} serves {', '.join(served) or 'no versions'}; this bot needs one of "
        f"{', '.join(PREFERRED_VERSIONS)} (Strimzi >= 0.22)"
    )
