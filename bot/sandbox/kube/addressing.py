"""Where an object lives in the emulated API and what it may be called: its resource type (404 for
one the emulator does not serve), its key (namespace and name, with the scoping rules), valid
names, and generateName.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from bot.sandbox.kube.api_errors import bad_request, invalid, method_not_allowed, unknown_resource
from bot.sandbox.kube.resources import ResourceType, lookup_resource_type

ObjectKey = tuple[str, str]  # (namespace, or "" for cluster-scoped types; name)
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# The alphabet of generateName suffixes (apimachinery's rand.String leaves out look-alikes).
_GENERATED_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def valid_object_name(name: object) -> bool:
    """A lowercase RFC 1123 subdomain of at most 253 characters."""
    return isinstance(name, str) and len(name) <= 253 and bool(_DNS_SUBDOMAIN.match(name))


def generated_name(rtype: ResourceType, metadata: dict[str, Any], *, taken: Callable[[str], bool]) -> str:
    """``metadata.generateName`` plus five random characters, not ``taken`` yet."""
    prefix = metadata.get("generateName")
    if not prefix or not isinstance(prefix, str):
        raise invalid(rtype, "", "metadata.name: Required value: name or generateName is required")
    while True:
        name = prefix + "".join(random.choices(_GENERATED_NAME_ALPHABET, k=5))
        if not taken(name):
            return name


def resource_type(group: str, plural: str) -> ResourceType:
    rtype = lookup_resource_type(group, plural)
    if rtype is None:
        raise unknown_resource(f"{group or 'core'}/{plural}")
    return rtype


def check_subresource(rtype: ResourceType, subresource: str | None) -> None:
    """A subresource the store may write (``status``, ``scale``), else 404 or, for ``log``, 405."""
    if subresource is not None and subresource not in rtype.subresources:
        raise unknown_resource(f"{rtype.qualified_name}/{subresource}")
    if subresource in rtype.readonly_subresources:
        raise method_not_allowed("a write to", f"{rtype.qualified_name}/{subresource}")


def object_key(rtype: ResourceType, namespace: str | None, name: str) -> ObjectKey:
    if rtype.namespaced:
        if not namespace:
            raise bad_request(f"{rtype.qualified_name} is namespaced: a namespace is required")
        return namespace, name
    if namespace:
        raise bad_request(f"{rtype.qualified_name} is cluster-scoped: no namespace may be given")
    return "", name


def namespace_for_create(rtype: ResourceType, namespace: str | None, metadata: dict[str, Any]) -> str | None:
    if not rtype.namespaced:
        return object_key(rtype, namespace, "")[0] or None
    in_body = metadata.get("namespace")
    if namespace and in_body and in_body != namespace:
        raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
    return object_key(rtype, namespace or in_body, "")[0]
