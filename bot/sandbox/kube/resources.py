"""The resource types the emulator serves, and what each one's write rules are.

One table drives storage, routing and discovery, so a resource added here is at once storable,
reachable over HTTP and discoverable by ``kubernetes.dynamic``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

CORE_GROUP = ""
STRIMZI_GROUP = "kafka.strimzi.io"
STRIMZI_CORE_GROUP = "core.strimzi.io"
EVENTS_GROUP = "events.k8s.io"
APPS_GROUP = "apps"
RBAC_GROUP = "rbac.authorization.k8s.io"

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class ScalePaths:
    """Where a resource keeps what its ``/scale`` subresource shows (the CRD's ``scale`` stanza)."""

    spec_replicas: tuple[str, ...] = ("spec", "replicas")
    status_replicas: tuple[str, ...] = ("status", "replicas")
    label_selector: tuple[str, ...] = ("status", "labelSelector")


@dataclass(frozen=True)
class ResourceType:
    """One served resource: its names, versions and the write rules that differ between types."""

    group: str
    plural: str
    kind: str
    singular: str
    # The first version is the preferred (and storage) one.
    versions: tuple[str, ...] = ("v1",)
    namespaced: bool = True
    has_status_subresource: bool = False
    scale: ScalePaths | None = None
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # Custom resources refuse a PUT without metadata.resourceVersion and strategic merge patches;
    # built-in types accept both.
    is_custom: bool = False
    # DELETE answers with the object (pods, custom resources) or with a Status (configmaps, events).
    returns_deleted_object: bool = True
    # What the API server sets on create when the status subresource wipes the client's status.
    initial_status: dict[str, Any] | None = field(default=None, hash=False)
    # Read-only subresources served by a handler of their own (a pod's ``log``).
    readonly_subresources: tuple[str, ...] = ()
    # (group, plural) of the type whose storage this one is a view of (``views.py``), if any.
    stored_as: tuple[str, str] | None = None

    @property
    def storage_key(self) -> tuple[str, str]:
        """Where the objects live: types that are views of another share its storage."""
        return self.stored_as or (self.group, self.plural)

    @property
    def preferred_version(self) -> str:
        return self.versions[0]

    @property
    def qualified_name(self) -> str:
        """``kafkas.kafka.strimzi.io`` or ``pods``: how API error messages name the resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def api_version(self, version: str | None = None) -> str:
        version = version or self.preferred_version
        return f"{self.group}/{version}" if self.group else version

    @property
    def subresources(self) -> tuple[str, ...]:
        names = []
        if self.has_status_subresource:
            names.append("status")
        if self.scale is not None:
            names.append("scale")
        return tuple(names) + self.readonly_subresources


def _strimzi(plural: str, kind: str, short: str, *, scale: bool = False) -> ResourceType:
    return ResourceType(
        group=STRIMZI_GROUP,
        plural=plural,
        kind=kind,
        singular=kind.lower(),
        # Strimzi 0.49-0.51 serve both; 1.0 dropped v1beta2. Both share one storage here.
        versions=("v1", "v1beta2"),
        has_status_subresource=True,
        scale=ScalePaths() if scale else None,
        short_names=(short,),
        categories=("strimzi",),
        is_custom=True,
    )


def _rbac(plural: str, kind: str, *, namespaced: bool = True) -> ResourceType:
    return ResourceType(group=RBAC_GROUP, plural=plural, kind=kind, singular=kind.lower(), namespaced=namespaced,
                        returns_deleted_object=False)


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType(
        group=CORE_GROUP, plural="pods", kind="Pod", singular="pod", has_status_subresource=True,
        short_names=("po",), categories=("all",), initial_status={"phase": "Pending"},
        readonly_subresources=("log",),
    ),
    ResourceType(
        group=CORE_GROUP, plural="persistentvolumeclaims", kind="PersistentVolumeClaim",
        singular="persistentvolumeclaim", short_names=("pvc",),
    ),
    ResourceType(
        group=CORE_GROUP, plural="configmaps", kind="ConfigMap", singular="configmap",
        short_names=("cm",), returns_deleted_object=False,
    ),
    # The CA and KafkaUser Secrets the operator writes (the bot reads them for TLS and SASL); a
    # ServiceAccount token may read them only by name (the chart's rbac.secretNames).
    ResourceType(
        group=CORE_GROUP, plural="secrets", kind="Secret", singular="secret", returns_deleted_object=False,
    ),
    ResourceType(
        group=CORE_GROUP, plural="events", kind="Event", singular="event", short_names=("ev",),
        returns_deleted_object=False,
    ),
    ResourceType(
        group=CORE_GROUP, plural="namespaces", kind="Namespace", singular="namespace", namespaced=False,
        has_status_subresource=True, short_names=("ns",), initial_status={"phase": "Active"},
    ),
    # A ServiceAccount's token comes from its TokenRequest subresource (``service_accounts.py``); requests
    # bearing one are authorized by the RBAC objects below (``rbac.py``).
    ResourceType(
        group=CORE_GROUP, plural="serviceaccounts", kind="ServiceAccount", singular="serviceaccount",
        short_names=("sa",), returns_deleted_object=False,
    ),
    _rbac("roles", "Role"),
    _rbac("rolebindings", "RoleBinding"),
    _rbac("clusterroles", "ClusterRole", namespaced=False),
    _rbac("clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    ResourceType(
        group=EVENTS_GROUP, plural="events", kind="Event", singular="event", short_names=("ev",),
        returns_deleted_object=False, stored_as=(CORE_GROUP, "events"),
    ),
    # Only the Strimzi cluster operator's own Deployment lives here (the daemon applies it): nothing
    # reconciles Deployments, the bot reads its STRIMZI_KAFKA_IMAGES.
    ResourceType(
        group=APPS_GROUP, plural="deployments", kind="Deployment", singular="deployment",
        has_status_subresource=True, short_names=("deploy",), categories=("all",),
    ),
    _strimzi("kafkas", "Kafka", "k"),
    _strimzi("kafkanodepools", "KafkaNodePool", "knp", scale=True),
    _strimzi("kafkatopics", "KafkaTopic", "kt"),
    _strimzi("kafkausers", "KafkaUser", "ku"),
    _strimzi("kafkamirrormaker2s", "KafkaMirrorMaker2", "kmm2", scale=True),
    _strimzi("kafkarebalances", "KafkaRebalance", "kr"),
    ResourceType(
        group=STRIMZI_CORE_GROUP, plural="strimzipodsets", kind="StrimziPodSet", singular="strimzipodset",
        has_status_subresource=True, short_names=("sps",), categories=("strimzi",), is_custom=True,
    ),
)

_BY_GROUP_AND_PLURAL = {(rtype.group, rtype.plural): rtype for rtype in RESOURCE_TYPES}


def lookup_resource_type(group: str, plural: str, version: str | None = None) -> ResourceType | None:
    """The resource type served at group/plural (and version, when given), or None."""
    rtype = _BY_GROUP_AND_PLURAL.get((group, plural))
    if rtype is None or (version is not None and version not in rtype.versions):
        return None
    return rtype


def served_groups() -> dict[str, tuple[str, ...]]:
    """Every named API group (not the core group) and its versions, preferred first."""
    groups: dict[str, tuple[str, ...]] = {}
    for rtype in RESOURCE_TYPES:
        if rtype.group and rtype.group not in groups:
            groups[rtype.group] = rtype.versions
    return groups


def resource_types_in(group: str, version: str) -> Iterable[ResourceType]:
    return (rtype for rtype in RESOURCE_TYPES if rtype.group == group and version in rtype.versions)
