"""The emulator's RBAC for ServiceAccount tokens: rules matched as the API server's RBAC authorizer
matches them, a token minted through the TokenRequest subresource, 403 Forbidden with the API
server's wording for what no binding grants, 401 for a token it did not mint, and full access, as
before, for the sandbox's own kubeconfig. No JVM: the store and an in-process emulator only."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bot.sandbox.kube.kubeconfig import write_kubeconfig
from bot.sandbox.kube.rbac import Identity, RequestAttributes, authorized, request_attributes, rule_allows
from bot.sandbox.kube.store import ObjectStore
from tests.fixtures.sandbox import kube_api_client
from tests.sandbox.conftest import RunningEmulator

pytestmark = pytest.mark.timeout(20)

RBAC = "rbac.authorization.k8s.io"
BOT = Identity.service_account("ops", "bot")


def pods(verb: str, name: str = "", namespace: str = "kafka", subresource: str = "") -> RequestAttributes:
    return RequestAttributes(verb, "", "pods", subresource, namespace, name)


def test_request_attributes_are_read_from_the_url_as_the_api_server_reads_them() -> None:
    """Verb from method (list/watch/deletecollection for collections), group, namespace, name, and
    subresource: the exec the emulator does not even serve is described, so it can be refused."""
    assert request_attributes("POST", "/api/v1/namespaces/kafka/pods/p-0/exec", {}) == RequestAttributes(
        "create", "", "pods", "exec", "kafka", "p-0", "/api/v1/namespaces/kafka/pods/p-0/exec")
    watch = request_attributes("GET", "/apis/kafka.strimzi.io/v1/namespaces/kafka/kafkas",
                               {"watch": "true", "fieldSelector": "metadata.name=my-cluster"})
    assert (watch.verb, watch.api_group, watch.resource, watch.name) == ("watch", "kafka.strimzi.io", "kafkas",
                                                                         "my-cluster")
    assert request_attributes("GET", "/api/v1/namespaces/kafka/pods", {}).verb == "list"
    assert request_attributes("DELETE", "/api/v1/namespaces/kafka/pods", {}).verb == "deletecollection"
    assert request_attributes("DELETE", "/api/v1/namespaces/kafka/persistentvolumeclaims/d-0", {}).verb == "delete"
    namespace = request_attributes("GET", "/api/v1/namespaces/kafka", {})
    assert (namespace.resource, namespace.name, namespace.namespace) == ("namespaces", "kafka", "kafka")
    cluster_role = request_attributes("PUT", "/apis/rbac.authorization.k8s.io/v1/clusterroles/x", {})
    assert (cluster_role.verb, cluster_role.namespace, cluster_role.name) == ("update", "", "x")
    assert request_attributes("GET", "/apis/kafka.strimzi.io", {}).resource == ""  # discovery: no resource


def test_rules_match_verbs_groups_subresources_wildcards_and_resource_names() -> None:
    """`pods` does not cover pods/exec or pods/log; `*/scale` covers any resource's scale; `*` covers
    everything; resourceNames allows those names only and never a request without a name."""
    rule = {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}
    assert rule_allows(rule, pods("get", "p-0")) and rule_allows(rule, pods("patch", "p-0"))
    assert not rule_allows(rule, pods("delete", "p-0"))
    assert not rule_allows(rule, pods("create", "p-0", subresource="exec"))
    assert not rule_allows(rule, pods("get", "p-0", subresource="log"))
    assert not rule_allows(rule, RequestAttributes("get", "apps", "pods", "", "kafka", "p-0"))
    assert rule_allows({**rule, "resources": ["pods/log"]}, pods("get", "p-0", subresource="log"))
    scale = {"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["patch"]}
    assert rule_allows(scale, RequestAttributes("patch", "kafka.strimzi.io", "kafkanodepools", "scale", "k", "b"))
    assert not rule_allows(scale, RequestAttributes("patch", "kafka.strimzi.io", "kafkanodepools", "", "k", "b"))
    everything = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}
    assert rule_allows(everything, pods("create", "p-0", subresource="exec"))
    named = {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["ca-cert"], "verbs": ["get", "list"]}
    secret = RequestAttributes("get", "", "secrets", "", "kafka", "ca-cert")
    assert rule_allows(named, secret)
    assert not rule_allows(named, RequestAttributes("get", "", "secrets", "", "kafka", "user-password"))
    assert not rule_allows(named, RequestAttributes("list", "", "secrets", "", "kafka", ""))


def _bind(store: ObjectStore, kind: str, namespace: str | None, name: str, role_kind: str, role: str,
          subject: dict[str, str]) -> None:
    plural = "rolebindings" if kind == "RoleBinding" else "clusterrolebindings"
    store.create(RBAC, plural, namespace, {"metadata": {"name": name}, "subjects": [subject],
                                          "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role}})


def test_bindings_grant_in_their_namespace_and_cluster_role_bindings_everywhere() -> None:
    """A RoleBinding to a Role grants in its namespace only; a RoleBinding to a ClusterRole grants that
    ClusterRole's rules in the binding's namespace only; a ClusterRoleBinding grants in every namespace;
    a binding to another account, or to a Role that does not exist, grants nothing."""
    store = ObjectStore()
    read_pods = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    store.create(RBAC, "roles", "kafka", {"metadata": {"name": "pods"}, "rules": read_pods})
    store.create(RBAC, "clusterroles", None, {"metadata": {"name": "events"},
                                              "rules": [{"apiGroups": [""], "resources": ["events"],
                                                         "verbs": ["list"]}]})
    account = {"kind": "ServiceAccount", "name": "bot", "namespace": "ops"}
    assert not authorized(store, BOT, pods("get", "p-0"))
    _bind(store, "RoleBinding", "kafka", "pods", "Role", "pods", account)
    assert authorized(store, BOT, pods("get", "p-0"))
    assert not authorized(store, BOT, pods("get", "p-0", namespace="other"))
    assert not authorized(store, Identity.service_account("ops", "someone-else"), pods("get", "p-0"))

    events = RequestAttributes("list", "", "events", "", "kafka")
    _bind(store, "RoleBinding", "kafka", "events", "ClusterRole", "events", account)
    assert authorized(store, BOT, events)
    assert not authorized(store, BOT, RequestAttributes("list", "", "events", "", "other"))
    _bind(store, "ClusterRoleBinding", None, "events", "ClusterRole", "events", account)
    assert authorized(store, BOT, RequestAttributes("list", "", "events", "", "other"))

    _bind(store, "RoleBinding", "kafka", "ghost", "Role", "does-not-exist", account)
    assert not authorized(store, BOT, pods("delete", "p-0"))
    # A ServiceAccount subject without a namespace is the binding's own namespace's account.
    _bind(store, "RoleBinding", "kafka", "local", "Role", "pods", {"kind": "ServiceAccount", "name": "runner"})
    assert authorized(store, Identity.service_account("kafka", "runner"), pods("get", "p-0"))
    assert not authorized(store, Identity.service_account("ops", "runner"), pods("get", "p-0"))


def _request(url: str, method: str, path: str, token: str, body: Any = None) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_minted_token_is_held_to_its_bindings_and_the_sandbox_kubeconfig_is_not(
    kube_emulator: RunningEmulator, tmp_path: Path,
) -> None:
    """The TokenRequest subresource mints a token for an existing ServiceAccount (404 for a missing one,
    422 below 600 s, 415 for a protobuf body). With it, what the Role grants succeeds and the rest is 403
    with the API server's Status; a token the emulator did not mint is 401; the admin kubeconfig can still
    do anything."""
    admin_client = kube_emulator.api_client(tmp_path)
    admin = client.CoreV1Api(admin_client)
    rbac = client.RbacAuthorizationV1Api(admin_client)
    admin.create_namespaced_service_account("ops", {"metadata": {"name": "bot"}})
    rbac.create_namespaced_role("kafka", {"metadata": {"name": "bot"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]})
    rbac.create_namespaced_role_binding("kafka", {
        "metadata": {"name": "bot"}, "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "bot"},
        "subjects": [{"kind": "ServiceAccount", "name": "bot", "namespace": "ops"}]})
    admin.create_namespaced_pod("kafka", {"metadata": {"name": "p-0"}, "spec": {"containers": []}})

    with pytest.raises(ApiException) as missing:
        admin.create_namespaced_service_account_token("nobody", "ops", {"spec": {}})
    assert missing.value.status == 404
    with pytest.raises(ApiException) as short:
        admin.create_namespaced_service_account_token("bot", "ops", {"spec": {"expirationSeconds": 60}})
    assert short.value.status == 422
    protobuf = urllib.request.Request(kube_emulator.url + "/api/v1/namespaces/ops/serviceaccounts/bot/token",
                                      data=b"k8s\x00", method="POST",
                                      headers={"Content-Type": "application/vnd.kubernetes.protobuf"})
    with pytest.raises(urllib.error.HTTPError) as unreadable:  # kubectl create token's body: say so, 415
        urllib.request.urlopen(protobuf, timeout=5)
    assert unreadable.value.code == 415
    minted = admin.create_namespaced_service_account_token("bot", "ops", {"spec": {"expirationSeconds": 1200}})
    token = minted.status.token
    assert minted.status.expiration_timestamp is not None

    kubeconfig = write_kubeconfig(tmp_path / "bot.kubeconfig", kube_emulator.url, namespace="kafka",
                                  context_name="bot", token=token)
    as_bot = client.CoreV1Api(kube_api_client(kubeconfig))
    assert as_bot.read_namespaced_pod("p-0", "kafka").metadata.name == "p-0"
    assert [p.metadata.name for p in as_bot.list_namespaced_pod("kafka").items] == ["p-0"]
    with pytest.raises(ApiException) as refused:
        as_bot.delete_namespaced_pod("p-0", "kafka")
    assert refused.value.status == 403
    assert json.loads(refused.value.body) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Forbidden", "code": 403,
        "message": 'pods "p-0" is forbidden: User "system:serviceaccount:ops:bot" cannot delete resource "pods" '
                   'in API group "" in the namespace "kafka"',
        "details": {"name": "p-0", "kind": "pods"}}
    status, body = _request(kube_emulator.url, "GET", "/apis/apps/v1/namespaces/other/deployments", token)
    assert status == 403 and body["message"] == (
        'deployments.apps is forbidden: User "system:serviceaccount:ops:bot" cannot list resource "deployments" '
        'in API group "apps" in the namespace "other"')
    status, body = _request(kube_emulator.url, "POST", "/api/v1/namespaces/kafka/pods/p-0/exec", token, {})
    assert status == 403 and 'cannot create resource "pods/exec"' in body["message"]
    status, _ = _request(kube_emulator.url, "GET", "/apis/kafka.strimzi.io", token)  # discovery is open
    assert status == 200
    status, body = _request(kube_emulator.url, "GET", "/api/v1/namespaces/kafka/pods", "sandbox-sa.forged")
    assert (status, body["reason"]) == (401, "Unauthorized")

    admin.delete_namespaced_pod("p-0", "kafka")  # the sandbox's own kubeconfig: full access, as before
    admin.delete_namespaced_service_account("bot", "ops")  # deleting the account revokes its tokens
    status, _ = _request(kube_emulator.url, "GET", "/api/v1/namespaces/kafka/pods", token)
    assert status == 401
