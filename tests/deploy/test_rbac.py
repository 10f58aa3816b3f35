"""The chart's RBAC is least privilege (issue 16 §2): namespaced Roles only, in the namespaces the
clusters file names, granting nothing outside ALLOWED; and every Kubernetes call the bot makes at
run time is granted by the default Role."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.helm_chart import NAMESPACE, OPTIONS, of_kind, render

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
STRIMZI = "kafka.strimzi.io"
ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    (STRIMZI, "kafkas"): frozenset({"get", "list", "watch", "patch"}),
    (STRIMZI, "kafkanodepools"): frozenset({"get", "list", "watch", "patch"}),
    # create/delete: /kafka mirror creates its KafkaMirrorMaker2, `mirror remove` deletes it (opt-in)
    (STRIMZI, "kafkamirrormaker2s"): frozenset({"get", "list", "watch", "patch", "create", "delete"}),
    # create: the runbooks' --engine cruise-control creates its own KafkaRebalance (never deletes one)
    (STRIMZI, "kafkarebalances"): frozenset({"get", "list", "watch", "patch", "create"}),
    ("", "pods"): frozenset({"get", "list", "watch", "patch"}),
    ("", "configmaps"): frozenset({"get"}),  # the rebalance progress ConfigMap (with rbac.rebalance)
    ("", "secrets"): frozenset({"get"}),
    ("", "events"): frozenset({"list", "watch"}),
    ("events.k8s.io", "events"): frozenset({"list", "watch"}),
    # the Strimzi operator's Deployment, by name: the Kafka versions it supports
    ("apps", "deployments"): frozenset({"get"}),
}
BY_NAME_ONLY = {"secrets", "deployments"}  # never granted without resourceNames
# Only by value: granted when rbac.mirrorMaker2 is on (the mirror runbook). rbac.rebalance is on by
# default (the rebalance cards use it) and can be turned off.
OPT_IN = {(STRIMZI, "kafkamirrormaker2s")}


def grants(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(group, resource, verb) of every rule; a rule with no resourceNames on secrets is reported as such."""
    out = set()
    for rule in role["rules"]:
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule.get("verbs", []):
                    out.add((group, resource, verb))
        assert not rule.get("nonResourceURLs"), rule
    return out


@pytest.mark.parametrize("option", OPTIONS)
def test_roles_grant_nothing_outside_the_allowed_list(option: str) -> None:
    """Whatever the values: no ClusterRole, no wildcard, no pods/exec, no create or delete but of
    KafkaRebalances (create) and KafkaMirrorMaker2s (create, delete: opt-in), nothing on a resource not in
    ALLOWED, and Secrets only by name."""
    objects = render(OPTIONS[option])
    assert not of_kind(objects, "ClusterRole") and not of_kind(objects, "ClusterRoleBinding")
    for role in of_kind(objects, "Role"):
        for group, resource, verb in grants(role):
            assert (group, resource) in ALLOWED, f"{role['metadata']['namespace']}: {group}/{resource}"
            assert verb in ALLOWED[(group, resource)], f"{verb} on {group}/{resource}"
        for rule in role["rules"]:
            if BY_NAME_ONLY & set(rule["resources"]):
                assert rule.get("resourceNames"), f"{rule['resources']} granted without resourceNames"


def test_default_role_is_exactly_the_base_set() -> None:
    """With default values: every allowed grant except Secrets and the opt-in resources, in the one managed
    namespace, bound to the chart's ServiceAccount in the release namespace."""
    objects = render()
    (role,) = of_kind(objects, "Role")
    expected = {(g, r, v) for (g, r), verbs in ALLOWED.items() if (g, r) not in OPT_IN and r != "secrets"
                for v in verbs}
    assert grants(role) == expected
    assert role["metadata"]["namespace"] == "kafka"
    (binding,) = of_kind(objects, "RoleBinding")
    (account,) = of_kind(objects, "ServiceAccount")
    assert binding["metadata"]["namespace"] == "kafka"
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": NAMESPACE}]


def test_opt_in_resources_and_named_secrets_in_every_managed_namespace() -> None:
    """rbac.mirrorMaker2/rebalance add their resource, rbac.secretNames adds get on those names only, and
    each managed namespace (clusters' and rbac.extraNamespaces) gets its own Role and RoleBinding."""
    objects = render(OPTIONS["rbac-everything"])
    roles = {r["metadata"]["namespace"]: r for r in of_kind(objects, "Role")}
    assert sorted(roles) == ["kafka", "kafka-east", "kafka-west"]
    assert sorted(b["metadata"]["namespace"] for b in of_kind(objects, "RoleBinding")) == sorted(roles)
    for namespace, role in roles.items():
        # the operator's Deployment is read where a cluster's operator runs: kafka, my-cluster's namespace
        operator = set() if namespace == "kafka" else {("apps", "deployments")}
        assert {(g, r) for g, r, _ in grants(role)} == set(ALLOWED) - operator, namespace
        (secrets,) = [rule for rule in role["rules"] if rule["resources"] == ["secrets"]]
        assert secrets["resourceNames"] == ["my-cluster-cluster-ca-cert"] and secrets["verbs"] == ["get"]


SECURED = {"clusters.my-cluster.listener": "tls", "clusters.my-cluster.authentication.kafka_user": "kafka-chatops"}


def test_the_secrets_the_clusters_kafka_settings_name_are_readable_by_name_in_their_namespace() -> None:
    """Default: no Secret at all. A cluster with `listener`: its cluster CA Secret and its KafkaUser's;
    `tls.ca_secret` and `password_secret` by their names; `tls.ca_file` reads no CA Secret; each in the
    cluster's own namespace, with rbac.secretNames added everywhere."""
    (role,) = of_kind(render(), "Role")
    assert not [r for r in role["rules"] if r["resources"] == ["secrets"]]

    def secrets(values: dict[str, str]) -> dict[str, list[str]]:
        return {r["metadata"]["namespace"]: rule["resourceNames"] for r in of_kind(render(values), "Role")
                for rule in r["rules"] if rule["resources"] == ["secrets"] and rule["verbs"] == ["get"]}

    assert secrets(SECURED) == {"kafka": ["kafka-chatops", "my-cluster-cluster-ca-cert"]}
    assert secrets({**SECURED, "clusters.my-cluster.kafka": "prod", "clusters.my-cluster.tls.ca_secret": "prod-ca",
                    "rbac.secretNames[0]": "extra"}) == {"kafka": ["extra", "kafka-chatops", "prod-ca"]}
    assert secrets({"clusters.west.namespace": "kafka-west", "clusters.west.approvers[0]": "U1",
                    "clusters.west.tls.ca_file": "/etc/ca.crt", "clusters.west.authentication.type": "plain",
                    "clusters.west.authentication.username": "bot",
                    "clusters.west.authentication.password_secret.name": "bot-password"}) == {
        "kafka-west": ["bot-password"]}


def test_the_operator_deployment_is_readable_by_name_only_where_each_operator_runs() -> None:
    """Default: get on strimzi-cluster-operator in the cluster's namespace. An operator elsewhere (the
    clusters file's `operator:` block) gets a Role of its own there granting that get alone."""
    (role,) = of_kind(render(), "Role")
    (rule,) = [r for r in role["rules"] if r["resources"] == ["deployments"]]
    assert rule == {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["strimzi-cluster-operator"],
                    "verbs": ["get"]}
    objects = render({"clusters.my-cluster.operator.namespace": "strimzi",
                      "clusters.my-cluster.operator.deployment": "cluster-operator"})
    roles = {r["metadata"]["namespace"]: r for r in of_kind(objects, "Role")}
    assert sorted(roles) == ["kafka", "strimzi"]
    assert ("apps", "deployments", "get") not in grants(roles["kafka"])
    assert roles["strimzi"]["rules"] == [{"apiGroups": ["apps"], "resources": ["deployments"],
                                          "resourceNames": ["cluster-operator"], "verbs": ["get"]}]
    bindings = {b["metadata"]["namespace"]: b for b in of_kind(objects, "RoleBinding")}
    assert bindings["strimzi"]["roleRef"]["name"] == roles["strimzi"]["metadata"]["name"]
    assert bindings["strimzi"]["subjects"][0]["namespace"] == NAMESPACE


def test_no_rbac_when_turned_off() -> None:
    objects = render(OPTIONS["no-rbac-existing-service-account"])
    assert not of_kind(objects, "Role") and not of_kind(objects, "RoleBinding")
    assert not of_kind(objects, "ServiceAccount")
    (deployment,) = of_kind(objects, "Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "platform-bot"


# The Kubernetes client methods the bot's run-time adapters call, as the API requests they make.
# A watch is the list method with watch=True: both verbs.
CLIENT_CALLS: dict[str, tuple[str, str, frozenset[str]]] = {
    "read_namespaced_pod": ("", "pods", frozenset({"get"})),
    "list_namespaced_pod": ("", "pods", frozenset({"list", "watch"})),
    "patch_namespaced_pod": ("", "pods", frozenset({"patch"})),
    "list_namespaced_event": ("events.k8s.io", "events", frozenset({"list", "watch"})),
    "get_namespaced_custom_object": (STRIMZI, "kafkas", frozenset({"get"})),
    "list_namespaced_custom_object": (STRIMZI, "kafkas", frozenset({"list", "watch"})),
    "patch_namespaced_custom_object": (STRIMZI, "kafkas", frozenset({"patch"})),
    "read_namespaced_config_map": ("", "configmaps", frozenset({"get"})),
    "read_namespaced_deployment": ("apps", "deployments", frozenset({"get"})),
    # the Kafka client's CA and credentials (bot.kafka.security), granted by name once a cluster has them
    "read_namespaced_secret": ("", "secrets", frozenset({"get"})),
    # the one create: a run's KafkaRebalance (--engine cruise-control); no other resource is created
    "create_namespaced_custom_object": (STRIMZI, "kafkarebalances", frozenset({"create"})),
    # the one delete: `mirror remove` deletes the KafkaMirrorMaker2 it names (rbac.mirrorMaker2)
    "delete_namespaced_custom_object": (STRIMZI, "kafkamirrormaker2s", frozenset({"delete"})),
}
# The custom resources the adapters name besides kafkas; each custom-object call on them is granted too.
OTHER_PLURALS = {"kafkanodepools", "kafkarebalances", "kafkamirrormaker2s"}  # scale reads and patches pools
RUNTIME_ADAPTERS = [ROOT / "bot" / "kube", ROOT / "bot" / "monitors"]


def test_every_call_the_bot_makes_is_granted_by_the_default_role() -> None:
    """Each `*_namespaced_*` client call in the bot's Kubernetes adapters (bot/kube, bot/monitors) is a
    request the default Role allows; a call not in CLIENT_CALLS fails here until it is mapped (and the
    Role, if need be, widened on purpose). The custom-object calls name kafkas, or a plural of
    OTHER_PLURALS whose every verb the calls use is granted too (checked below). The cluster has Kafka
    security keys: without them the bot reads no Secret and none is granted."""
    (role,) = of_kind(render(SECURED), "Role")
    granted = grants(role)
    # The mirror runbook's calls are granted once rbac.mirrorMaker2 is on (opt-in, as the docs say).
    (mirror_role,) = of_kind(render({**SECURED, "rbac.mirrorMaker2": "true"}), "Role")
    granted |= {g for g in grants(mirror_role) if g[1] == "kafkamirrormaker2s"}
    assert {(STRIMZI, "kafkamirrormaker2s", v) for v in ("create", "delete")} <= granted
    sources = [p for folder in RUNTIME_ADAPTERS for p in sorted(folder.rglob("*.py"))]
    used = {m for p in sources for m in re.findall(r"\.(\w+_namespaced_\w+)\b", p.read_text())}
    assert used, "no Kubernetes call found: the adapters moved, update RUNTIME_ADAPTERS"
    unmapped = used - set(CLIENT_CALLS)
    assert not unmapped, f"calls not mapped to an API request: {unmapped}"
    for method in used:
        group, resource, verbs = CLIENT_CALLS[method]
        for verb in verbs:
            assert (group, resource, verb) in granted, f"{method}: {verb} {group}/{resource} is not granted"
    plurals = {m for p in sources for m in re.findall(r'plural\s*=\s*"(\w+)"|"(kafka\w+s)"', p.read_text())
               for m in m if m}
    assert plurals <= {"kafkas"} | OTHER_PLURALS, plurals
    custom_verbs = {v for m in used if m.endswith("_custom_object") and CLIENT_CALLS[m][1] == "kafkas"
                    for v in CLIENT_CALLS[m][2]}  # the generic calls; create is KafkaRebalances' alone
    for plural in plurals - {"kafkas"}:
        for verb in custom_verbs:
            assert (STRIMZI, plural, verb) in granted, f"{verb} {STRIMZI}/{plural} is not granted"
