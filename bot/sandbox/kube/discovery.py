"""Discovery documents: what ``kubectl``, ``kubernetes.dynamic`` and friends ask before they act.

``kubernetes.dynamic`` (``dynamic/discovery.py``) reads ``/version``, ``/apis`` and then, lazily,
``/api/v1`` or ``/apis/<group>/<version>`` for the resource it looks up; it sends no aggregated
discovery Accept header and never reads ``/openapi/v2``, so the legacy documents are all it needs.
It picks the preferred version by comparing each ``versions`` entry with ``preferredVersion`` as
whole dicts, so both are built by the same function.
"""

from __future__ import annotations

from typing import Any

from bot.sandbox.kube.resources import (
    ALL_VERBS,
    CORE_GROUP,
    SUBRESOURCE_VERBS,
    ResourceType,
    resource_types_in,
    served_groups,
)

EMULATED_KUBERNETES_VERSION = ("1", "33")


def version_info() -> dict[str, Any]:
    major, minor = EMULATED_KUBERNETES_VERSION
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{major}.{minor}.0-kafka-chatops-sandbox",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.24",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def core_api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_version(group: str, version: str) -> dict[str, str]:
    return {"groupVersion": f"{group}/{version}", "version": version}


def api_group(group: str) -> dict[str, Any] | None:
    versions = served_groups().get(group)
    if versions is None:
        return None
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [_group_version(group, version) for version in versions],
        "preferredVersion": _group_version(group, versions[0]),
    }


def api_group_list() -> dict[str, Any]:
    groups = []
    for name in served_groups():
        group = api_group(name)
        if group is not None:
            groups.append({key: value for key, value in group.items() if key not in ("kind", "apiVersion")})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    rtypes = list(resource_types_in(group, version))
    if not rtypes:
        return None
    resources: list[dict[str, Any]] = []
    for rtype in rtypes:
        resources.append(_api_resource(rtype))
        resources.extend(_api_subresource(rtype, name) for name in rtype.subresources)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": version if group == CORE_GROUP else f"{group}/{version}",
        "resources": resources,
    }


def _api_resource(rtype: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": rtype.plural,
        "singularName": rtype.singular,
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": list(ALL_VERBS),
    }
    if rtype.short_names:
        entry["shortNames"] = list(rtype.short_names)
    if rtype.categories:
        entry["categories"] = list(rtype.categories)
    return entry


def _api_subresource(rtype: ResourceType, subresource: str) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": f"{rtype.plural}/{subresource}",
        "singularName": "",
        "namespaced": rtype.namespaced,
        "kind": rtype.kind,
        "verbs": ["get"] if subresource in rtype.readonly_subresources else list(SUBRESOURCE_VERBS),
    }
    if subresource == "scale":
        entry.update(group="autoscaling", version="v1", kind="Scale")
    return entry
