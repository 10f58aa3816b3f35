"""Conformance of the Kubernetes API emulator, proven through the unmodified ``kubernetes`` client.

Every HTTP test goes through a kubeconfig written by ``write_kubeconfig`` and loaded by
``kubernetes.config.load_kube_config``, as the bot does against a real cluster. Watches and the
in-process ``ObjectStore`` have their own modules (test_emulator_watch.py, test_object_store.py).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from bot.sandbox.kube.kubeconfig import write_kubeconfig
from tests.sandbox.conftest import RunningEmulator
from tests.sandbox.emulator_helpers import JSON_PATCH, STRIMZI, kafka_body, pod_body, raw_request, status_of

# CRUD, versions and errors


def test_kafka_crud_in_both_versions(custom: client.CustomObjectsApi, namespace: str) -> None:
    """A Kafka created in v1beta2 is read, listed, replaced and deleted in v1 and v1beta2 alike."""
    created = custom.create_namespaced_custom_object(
        STRIMZI, "v1beta2", namespace, "kafkas", kafka_body("prod", api_version="kafka.strimzi.io/v1beta2")
    )
    assert created["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert created["metadata"]["generation"] == 1
    assert created["metadata"]["creationTimestamp"].endswith("Z")

    as_v1 = custom.get_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", "prod")
    as_v1beta2 = custom.get_namespaced_custom_object(STRIMZI, "v1beta2", namespace, "kafkas", "prod")
    assert as_v1["apiVersion"] == "kafka.strimzi.io/v1"
    assert as_v1beta2["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert as_v1["metadata"] == as_v1beta2["metadata"] == created["metadata"]

    listed = custom.list_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas")
    assert listed["kind"] == "KafkaList"
    assert [item["apiVersion"] for item in listed["items"]] == ["kafka.strimzi.io/v1"]
    assert int(listed["metadata"]["resourceVersion"]) >= int(created["metadata"]["resourceVersion"])

    as_v1["spec"]["kafka"]["version"] = "4.3.1"
    replaced = custom.replace_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", "prod", as_v1)
    assert replaced["metadata"]["uid"] == created["metadata"]["uid"]
    assert replaced["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"]
    assert int(replaced["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])

    deleted = custom.delete_namespaced_custom_object(STRIMZI, "v1beta2", namespace, "kafkas", "prod")
    assert deleted["metadata"]["uid"] == created["metadata"]["uid"]
    with pytest.raises(ApiException) as missing:
        custom.get_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", "prod")
    assert missing.value.status == 404


def test_create_twice_is_409_already_exists(custom: client.CustomObjectsApi, namespace: str) -> None:
    """Creating a name that exists answers 409 with reason AlreadyExists."""
    custom.create_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", kafka_body("prod"))
    with pytest.raises(ApiException) as error:
        custom.create_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", kafka_body("prod"))
    assert error.value.status == 409
    assert status_of(error.value)["reason"] == "AlreadyExists"


def test_missing_object_and_unknown_resource_are_404_status(
    kube_emulator: RunningEmulator, core: client.CoreV1Api, namespace: str
) -> None:
    """A missing object and an unknown resource both answer 404 with a complete Status object."""
    with pytest.raises(ApiException) as error:
        core.read_namespaced_pod("nope", namespace)
    assert error.value.status == 404
    assert status_of(error.value) | {"details": None} == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'pods "nope" not found', "reason": "NotFound", "code": 404, "details": None,
    }
    code, status = raw_request(kube_emulator.url, "GET", f"/apis/{STRIMZI}/v1/namespaces/{namespace}/widgets")
    assert (code, status["kind"], status["reason"], status["code"]) == (404, "Status", "NotFound", 404)


def test_invalid_json_is_400(kube_emulator: RunningEmulator, namespace: str) -> None:
    """A body that is not JSON answers 400 BadRequest."""
    code, status = raw_request(kube_emulator.url, "POST", f"/api/v1/namespaces/{namespace}/configmaps", b"{nope")
    assert (code, status["reason"]) == (400, "BadRequest")


def test_stale_replace_is_409_and_custom_resources_need_a_version(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    """Replacing with a stale resourceVersion is 409 Conflict; a CR replace without one is 422."""
    first = custom.create_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", kafka_body("prod"))
    custom.patch_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", "prod", {"spec": {"x": 1}})
    with pytest.raises(ApiException) as stale:
        custom.replace_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", "prod", first)
    assert stale.value.status == 409
    assert status_of(stale.value)["reason"] == "Conflict"
    assert "the object has been modified" in status_of(stale.value)["message"]

    del first["metadata"]["resourceVersion"]
    with pytest.raises(ApiException) as unversioned:
        custom.replace_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", "prod", first)
    assert unversioned.value.status == 422


# Selectors


def test_label_selector_operators_on_pods(core: client.CoreV1Api, namespace: str) -> None:
    """Every label selector operator, a field selector and an all-namespaces list select the right pods."""
    core.create_namespaced_pod(namespace, pod_body("broker-0", {"role": "broker", "pool": "a"}))
    core.create_namespaced_pod(namespace, pod_body("broker-1", {"role": "broker", "pool": "b"}))
    core.create_namespaced_pod(namespace, pod_body("controller-2", {"role": "controller"}))
    core.create_namespaced_pod(namespace, pod_body("bare-3", {}))

    def names(label_selector: str = "", field_selector: str = "") -> list[str]:
        pods = core.list_namespaced_pod(namespace, label_selector=label_selector, field_selector=field_selector)
        return sorted(pod.metadata.name for pod in pods.items)

    assert names("role=broker") == ["broker-0", "broker-1"]
    assert names("role==controller") == ["controller-2"]
    assert names("role!=broker") == ["bare-3", "controller-2"]
    assert names("pool") == ["broker-0", "broker-1"]
    assert names("!pool") == ["bare-3", "controller-2"]
    assert names("role in (broker, controller),pool notin (a)") == ["broker-1", "controller-2"]
    assert names("pool notin (a)") == ["bare-3", "broker-1", "controller-2"]
    assert names(field_selector="metadata.name=bare-3") == ["bare-3"]
    assert names("role=broker", field_selector="metadata.name!=broker-0") == ["broker-1"]

    everywhere = core.list_pod_for_all_namespaces(label_selector="role=controller")
    assert [(pod.metadata.namespace, pod.metadata.name) for pod in everywhere.items] == [
        (namespace, "controller-2")
    ]
    with pytest.raises(ApiException) as malformed:
        core.list_namespaced_pod(namespace, label_selector="role in broker")
    assert malformed.value.status == 400


# Generation and status


def test_generation_bumps_on_spec_changes_only(custom: client.CustomObjectsApi, namespace: str) -> None:
    """metadata.generation grows on spec changes, not on labels, annotations or status."""
    def generation_after(patch: dict[str, Any], subresource: str = "") -> int:
        if subresource:
            obj = custom.patch_namespaced_custom_object_status(STRIMZI, "v1", namespace, "kafkas", "prod", patch)
        else:
            obj = custom.patch_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", "prod", patch)
        generation: int = obj["metadata"]["generation"]
        return generation

    custom.create_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", kafka_body("prod"))
    assert generation_after({"metadata": {"labels": {"tier": "gold"}}}) == 1
    assert generation_after({"metadata": {"annotations": {"strimzi.io/manual-rolling-update": "true"}}}) == 1
    assert generation_after({"status": {"observedGeneration": 1}}, subresource="status") == 1
    assert generation_after({"spec": {"kafka": {"version": "4.3.1"}}}) == 2
    assert generation_after({"spec": {"kafka": {"version": "4.3.1"}}}) == 2  # no change, no bump
    assert generation_after({"spec": {"cruiseControl": {}}}) == 3


def test_status_subresource_semantics(custom: client.CustomObjectsApi, namespace: str) -> None:
    """The main endpoint ignores status (also on create); /status changes status and nothing else."""
    body = kafka_body("prod") | {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    created = custom.create_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", body)
    assert "status" not in created

    created["status"] = {"observedGeneration": 1}
    created["spec"]["kafka"]["version"] = "4.3.1"
    updated = custom.replace_namespaced_custom_object_status(STRIMZI, "v1", namespace, "kafkas", "prod", created)
    assert updated["status"] == {"observedGeneration": 1}
    assert updated["spec"]["kafka"]["version"] == "4.2.0"
    assert updated["metadata"]["generation"] == 1

    through_main = custom.patch_namespaced_custom_object(
        STRIMZI, "v1", namespace, "kafkas", "prod", {"status": {"observedGeneration": 99}, "spec": {"x": 1}}
    )
    assert through_main["status"] == {"observedGeneration": 1}
    assert through_main["metadata"]["generation"] == 2


# Patching


def test_merge_patch_and_json_patch(custom: client.CustomObjectsApi, core: client.CoreV1Api, namespace: str) -> None:
    """Merge patch merges and deletes with null; JSON patch applies ops; a failed test op is 422."""
    custom.create_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", kafka_body("prod", image="x"))
    merged = custom.patch_namespaced_custom_object(
        STRIMZI, "v1", namespace, "kafkas", "prod", {"spec": {"kafka": {"image": None, "config": {"a": "1"}}}}
    )
    assert merged["spec"]["kafka"] == {"version": "4.2.0", "config": {"a": "1"}}

    version = merged["metadata"]["resourceVersion"]
    patched = custom.patch_namespaced_custom_object(
        STRIMZI, "v1", namespace, "kafkas", "prod",
        [
            {"op": "test", "path": "/metadata/resourceVersion", "value": version},
            {"op": "replace", "path": "/spec/kafka/version", "value": "4.3.1"},
            {"op": "add", "path": "/metadata/annotations", "value": {"a~b/c": "1"}},
            {"op": "remove", "path": "/spec/kafka/config/a"},
        ],
        _content_type=JSON_PATCH,
    )
    assert patched["spec"]["kafka"] == {"version": "4.3.1", "config": {}}
    assert patched["metadata"]["annotations"] == {"a~b/c": "1"}

    with pytest.raises(ApiException) as failed_test:
        custom.patch_namespaced_custom_object(
            STRIMZI, "v1", namespace, "kafkas", "prod",
            [{"op": "test", "path": "/metadata/resourceVersion", "value": version},
             {"op": "replace", "path": "/spec/kafka/version", "value": "9.9.9"}],
            _content_type=JSON_PATCH,
        )
    assert (failed_test.value.status, status_of(failed_test.value)["reason"]) == (422, "Invalid")
    core.create_namespaced_pod(namespace, pod_body("p", {}))
    with pytest.raises(ApiException) as malformed:
        core.patch_namespaced_pod("p", namespace, [{"op": "jump", "path": "/spec"}])
    assert malformed.value.status == 400
    assert custom.get_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", "prod")["spec"]["kafka"][
        "version"] == "4.3.1"


def test_patch_preconditions_on_uid_and_resource_version(
    kube_emulator: RunningEmulator, custom: client.CustomObjectsApi, namespace: str
) -> None:
    """A merge patch naming another uid or a stale resourceVersion is 409; CRs refuse strategic merge."""
    created = custom.create_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", kafka_body("prod"))
    with pytest.raises(ApiException) as wrong_uid:
        custom.patch_namespaced_custom_object(
            STRIMZI, "v1", namespace, "kafkas", "prod", {"metadata": {"uid": "someone-else"}, "spec": {"x": 1}}
        )
    assert wrong_uid.value.status == 409
    assert "Precondition failed: UID in precondition: someone-else" in status_of(wrong_uid.value)["message"]

    metadata = created["metadata"]
    current = {"metadata": {"uid": metadata["uid"], "resourceVersion": metadata["resourceVersion"]}}
    custom.patch_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", "prod", current | {"spec": {"x": 1}})
    with pytest.raises(ApiException) as stale:
        custom.patch_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", "prod", current | {"spec": {"x": 2}})
    assert stale.value.status == 409

    code, _ = raw_request(kube_emulator.url, "PATCH", f"/apis/{STRIMZI}/v1/namespaces/{namespace}/kafkas/prod",
                          b'{"spec": {"x": 3}}', "application/strategic-merge-patch+json")
    assert code == 415


def test_scale_subresource_of_a_node_pool(custom: client.CustomObjectsApi, namespace: str) -> None:
    """A KafkaNodePool's /scale reads and writes spec.replicas as an autoscaling/v1 Scale."""
    pool = {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaNodePool",
            "metadata": {"name": "brokers"}, "spec": {"replicas": 3, "roles": ["broker"]}}
    custom.create_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkanodepools", pool)
    scale = custom.get_namespaced_custom_object_scale(STRIMZI, "v1", namespace, "kafkanodepools", "brokers")
    assert (scale["kind"], scale["spec"]["replicas"]) == ("Scale", 3)
    custom.patch_namespaced_custom_object_scale(
        STRIMZI, "v1", namespace, "kafkanodepools", "brokers", {"spec": {"replicas": 4}}
    )
    pool = custom.get_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkanodepools", "brokers")
    assert (pool["spec"]["replicas"], pool["metadata"]["generation"]) == (4, 2)


# Discovery and kubeconfig


def test_dynamic_client_discovers_and_gets_kafka_and_pod(
    kube_api: client.ApiClient, custom: client.CustomObjectsApi, core: client.CoreV1Api,
    namespace: str, tmp_path: Path,
) -> None:
    """kubernetes.dynamic discovers Kafka (preferring v1) and Pod, with subresources, and gets both."""
    custom.create_namespaced_custom_object(STRIMZI, "v1", namespace, "kafkas", kafka_body("prod"))
    core.create_namespaced_pod(namespace, pod_body("prod-brokers-0", {"strimzi.io/cluster": "prod"}))
    dynamic = DynamicClient(kube_api, cache_file=str(tmp_path / "discovery.json"))

    kafkas = dynamic.resources.get(group=STRIMZI, kind="Kafka", preferred=True)
    assert (kafkas.api_version, set(kafkas.subresources)) == ("v1", {"status"})
    assert dynamic.resources.get(api_version=f"{STRIMZI}/v1beta2", kind="Kafka").api_version == "v1beta2"
    assert kafkas.get(name="prod", namespace=namespace).spec.kafka.version == "4.2.0"
    pools = dynamic.resources.get(api_version=f"{STRIMZI}/v1", kind="KafkaNodePool")
    assert set(pools.subresources) == {"status", "scale"}

    pods = dynamic.resources.get(api_version="v1", kind="Pod")
    assert "status" in pods.subresources
    assert pods.get(name="prod-brokers-0", namespace=namespace).metadata.labels["strimzi.io/cluster"] == "prod"
    listed = pods.get(namespace=namespace, label_selector="strimzi.io/cluster=prod")
    assert [pod.metadata.name for pod in listed.items] == ["prod-brokers-0"]


def test_discovery_documents(kube_emulator: RunningEmulator) -> None:
    """/version, /api/v1 (with subresources) and /apis (v1 preferred for Strimzi) are served."""
    assert raw_request(kube_emulator.url, "GET", "/version")[1]["major"] == "1"
    resources = {entry["name"] for entry in raw_request(kube_emulator.url, "GET", "/api/v1")[1]["resources"]}
    assert {"pods", "pods/status", "persistentvolumeclaims", "configmaps", "events", "namespaces"} <= resources
    groups = {group["name"]: group for group in raw_request(kube_emulator.url, "GET", "/apis")[1]["groups"]}
    assert groups[STRIMZI]["preferredVersion"] == {"groupVersion": f"{STRIMZI}/v1", "version": "v1"}
    assert {"core.strimzi.io", "events.k8s.io"} <= set(groups)


def test_write_kubeconfig_gives_a_loadable_private_file(kube_emulator: RunningEmulator, tmp_path: Path) -> None:
    """write_kubeconfig writes a 0600 file whose context names the server and default namespace."""
    path = write_kubeconfig(tmp_path / "nested" / "config", kube_emulator.url, namespace="kafka",
                            context_name="sandbox-demo")
    assert path.stat().st_mode & 0o777 == 0o600
    _, active = config.list_kube_config_contexts(config_file=str(path))
    assert active["name"] == "sandbox-demo" and active["context"]["namespace"] == "kafka"
    api_client = config.new_client_from_config(config_file=str(path))
    try:
        assert client.VersionApi(api_client).get_code().git_version.startswith("v1.")
    finally:
        api_client.close()
    assert not [name for name in os.listdir(path.parent) if name != "config"]

