"""RBAC for requests made with a ServiceAccount's token: Roles, RoleBindings, ClusterRoles and
ClusterRoleBindings (rbac.authorization.k8s.io/v1) read from the store, matched the way the API
server's RBAC authorizer matches them (``plugin/pkg/auth/authorizer/rbac``).

A request is first described from its URL alone (``request_attributes``, as the API server's
``RequestInfoFactory`` does): verb, API group, resource, subresource, namespace, name. Authorizing
before routing is what makes ``pods/exec`` answer 403 to an identity without that right even though
the emulator serves no exec at all, as on a real cluster.

Rules match on ``apiGroups`` (or ``*``), ``resources`` (``*``, the exact ``resource/subresource``,
or ``*/subresource``), ``verbs`` (or ``*``) and, when set, ``resourceNames`` (which a request
without a name, a list or a create, never matches). A RoleBinding grants in its own namespace only,
whether it refers to a Role there or to a ClusterRole; a ClusterRoleBinding grants everywhere.

Not emulated: aggregated ClusterRoles (``aggregationRule``), the escalation check on writes of
Roles, and the default roles of a real cluster (``system:discovery`` and the like). Non-resource
URLs (discovery, ``/version``, OpenAPI, health) are open to every identity, as those default roles
make them on a real cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.sandbox.kube.api_errors import ApiError
from bot.sandbox.kube.resources import RBAC_GROUP

SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
_VERB_OF_METHOD = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True)
class Identity:
    """Who a request is from: a user name and the groups it belongs to."""

    user: str
    groups: tuple[str, ...] = ()

    @classmethod
    def service_account(cls, namespace: str, name: str) -> Identity:
        return cls(f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}",
                   ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"))


@dataclass(frozen=True)
class RequestAttributes:
    """What a request asks to do, read from its URL; ``resource`` is empty for a non-resource URL."""

    verb: str
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @property
    def combined_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def request_attributes(method: str, path: str, query: Mapping[str, str]) -> RequestAttributes:
    """The request's verb and target, from its method, path and query, before any routing."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, rest = parts[1], parts[3:]
    else:
        return RequestAttributes(verb=method.lower(), path=path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 2:
        # /namespaces/x[/status|/finalize] is the Namespace x itself, and (as on the API server) in x.
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in ("status", "finalize"):
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = "/".join(rest[2:])
    if method == "GET" and not name:
        verb = "watch" if query.get("watch", "").lower() in ("true", "1") else "list"
        # A list or watch of one object by field selector is a request for that name (RequestInfoFactory),
        # so that a rule with resourceNames can allow it.
        selector = query.get("fieldSelector", "")
        if selector.startswith("metadata.name=") and "," not in selector:
            name = selector.removeprefix("metadata.name=")
    elif method == "GET":
        verb = "get"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = _VERB_OF_METHOD.get(method, method.lower())
    return RequestAttributes(verb, group, resource, subresource, namespace, name, path)


class ObjectSource(Protocol):
    """The part of ``ObjectStore`` the authorizer reads."""

    def list(self, group: str, plural: str, namespace: str | None = None) -> tuple[list[dict[str, Any]], str]: ...

    def get(self, group: str, plural: str, namespace: str | None, name: str) -> dict[str, Any]: ...


def rule_allows(rule: Mapping[str, Any], request: RequestAttributes) -> bool:
    """One PolicyRule against one resource request (rbac/v1 ``RuleAllows``)."""
    verbs, groups = rule.get("verbs") or [], rule.get("apiGroups") or []
    if "*" not in verbs and request.verb not in verbs:
        return False
    if "*" not in groups and request.api_group not in groups:
        return False
    if not _resource_matches(rule.get("resources") or [], request):
        return False
    names = rule.get("resourceNames") or []
    return not names or request.name in names


def _resource_matches(resources: Iterable[str], request: RequestAttributes) -> bool:
    for resource in resources:
        if resource in ("*", request.combined_resource):
            return True
        if request.subresource and resource == f"*/{request.subresource}":
            return True
    return False


def _subject_is(subject: Mapping[str, Any], identity: Identity, binding_namespace: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "ServiceAccount":
        # A RoleBinding's ServiceAccount subject without a namespace means the binding's own.
        namespace = subject.get("namespace") or binding_namespace
        return identity.user == f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"
    if kind == "User":
        return identity.user == name
    if kind == "Group":
        return name in identity.groups
    return False


def _rules_of(store: ObjectSource, role_ref: Mapping[str, Any], namespace: str) -> list[dict[str, Any]]:
    kind, name = role_ref.get("kind"), role_ref.get("name") or ""
    if role_ref.get("apiGroup") != RBAC_GROUP or kind not in ("Role", "ClusterRole"):
        return []
    try:
        role = (store.get(RBAC_GROUP, "roles", namespace, name) if kind == "Role"
                else store.get(RBAC_GROUP, "clusterroles", None, name))
    except ApiError:  # a binding to a role that does not exist grants nothing
        return []
    return [rule for rule in role.get("rules") or [] if isinstance(rule, dict)]


def authorized(store: ObjectSource, identity: Identity, request: RequestAttributes) -> bool:
    """True when a binding of ``identity`` grants ``request``; non-resource requests always are."""
    if not request.resource:
        return True
    bindings = [(binding, "") for binding in store.list(RBAC_GROUP, "clusterrolebindings")[0]]
    if request.namespace:
        bindings += [(binding, request.namespace)
                     for binding in store.list(RBAC_GROUP, "rolebindings", request.namespace)[0]]
    for binding, namespace in bindings:
        if not any(_subject_is(s, identity, namespace) for s in binding.get("subjects") or []):
            continue
        if namespace == "" and (binding.get("roleRef") or {}).get("kind") != "ClusterRole":
            continue  # a ClusterRoleBinding can only refer to a ClusterRole
        if any(rule_allows(rule, request) for rule in _rules_of(store, binding.get("roleRef") or {}, namespace)):
            return True
    return False


def forbidden(identity: Identity, request: RequestAttributes) -> ApiError:
    """403 Forbidden with the API server's wording (``responsewriters.forbiddenMessage``, ``NewForbidden``)."""
    if not request.resource:
        return ApiError(403, "Forbidden", f'forbidden: User "{identity.user}" cannot {request.verb} path '
                        f'"{request.path}"')
    scope = (f'in the namespace "{request.namespace}"' if request.namespace else "at the cluster scope")
    cause = (f'User "{identity.user}" cannot {request.verb} resource "{request.combined_resource}" '
             f'in API group "{request.api_group}" {scope}')
    qualified = f"{request.resource}.{request.api_group}" if request.api_group else request.resource
    target = f'{qualified} "{request.name}"' if request.name else qualified
    details: dict[str, Any] = {"kind": request.resource}
    if request.name:
        details["name"] = request.name
    if request.api_group:
        details["group"] = request.api_group
    return ApiError(403, "Forbidden", f"{target} is forbidden: {cause}", details=details)
