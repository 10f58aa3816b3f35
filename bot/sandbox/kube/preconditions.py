"""The preconditions an update must meet before the store looks at what it changes, as the API
server checks them: the object's name and namespace match the URL, and a uid or resourceVersion the
client sends is the stored one (409 otherwise); a custom resource's PUT carries a resourceVersion.
"""

from __future__ import annotations

from typing import Any

from bot.sandbox.kube.addressing import ObjectKey
from bot.sandbox.kube.api_errors import OPTIMISTIC_LOCK_MESSAGE, bad_request, conflict, invalid
from bot.sandbox.kube.resources import ResourceType


def check_update(rtype: ResourceType, key: ObjectKey, current_metadata: dict[str, Any], proposed: dict[str, Any],
                 *, require_version: bool) -> dict[str, Any]:
    """The proposed object's metadata, once every precondition it carries holds; ApiError otherwise."""
    name = key[1]
    proposed_metadata = proposed.get("metadata")
    if not isinstance(proposed_metadata, dict):
        raise bad_request("metadata must be an object")
    if proposed_metadata.get("name", name) != name:
        raise bad_request(
            f"the name of the object ({proposed_metadata['name']}) does not match the name on the URL ({name})"
        )
    if rtype.namespaced and proposed_metadata.get("namespace") not in (None, "", key[0]):
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
    uid = proposed_metadata.get("uid")
    if uid and uid != current_metadata["uid"]:
        raise conflict(rtype, name, f"Precondition failed: UID in precondition: {uid}, "
                       f"UID in object meta: {current_metadata['uid']}")
    resource_version = proposed_metadata.get("resourceVersion")
    if resource_version and resource_version != current_metadata["resourceVersion"]:
        raise conflict(rtype, name, OPTIMISTIC_LOCK_MESSAGE)
    if not resource_version and require_version and rtype.is_custom:
        raise invalid(rtype, name, "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update")
    return proposed_metadata
