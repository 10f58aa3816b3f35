"""The chart's RBAC, applied to the sandbox's Kubernetes API and used as the bot's identity (issue 16 §2).

The chart is rendered with the sandbox's namespace as the managed one; its ServiceAccount, Roles and
RoleBindings are created through the sandbox's admin kubeconfig; a token is minted for the
ServiceAccount (the TokenRequest subresource, as on a real cluster) and every request below is made with
it, so the emulator authorizes each one by the rendered RBAC (docs/sandbox.md, "RBAC"). What a
rolling restart does, the rebalance cards' calls and the operator Deployment read succeed through
the bot's own adapters; exec, deletes of pods and PVCs, Secrets and writes the chart does not grant
answer 403.

What this does not prove: that a real API server agrees (its RBAC is emulated here, rule for rule,
but it is not Kubernetes's code).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bot.kube.errors import KubeError
from bot.kube.gateway import KubeClusterGateway, load_api_client
from bot.kube.rebalances import KubeRebalances
from bot.monitors.kube_watch import ClusterWatches
from bot.sandbox.kube.kubeconfig import write_kubeconfig
from handlers.ports import BrokerPod, ClusterRef
from runbooks.rules.rebalance import RebalanceAction, RebalanceState
from tests.deploy.helm_chart import NAMESPACE, of_kind, render
from tests.fixtures.sandbox import SandboxInfo
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.sandbox, pytest.mark.timeout(420)]

OPERATOR = "strimzi-cluster-operator"  # the sandbox's operator Deployment, the chart's default name
REBALANCE = "rbac-check"
CHECK = "rbac-check"  # the PVC and ConfigMap the forbidden calls aim at


def _apply(api: client.ApiClient, obj: dict[str, Any]) -> None:
    """Create one rendered RBAC object as `helm install --namespace kafka-chatops` would."""
    namespace = obj["metadata"].get("namespace", NAMESPACE)
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    create: dict[str, Callable[..., Any]] = {
        "ServiceAccount": lambda: core.create_namespaced_service_account(namespace, obj),
        "Role": lambda: rbac.create_namespaced_role(namespace, obj),
        "RoleBinding": lambda: rbac.create_namespaced_role_binding(namespace, obj),
        "ClusterRole": lambda: rbac.create_cluster_role(obj),
        "ClusterRoleBinding": lambda: rbac.create_cluster_role_binding(obj),
    }
    try:
        create[obj["kind"]]()
    except ApiException as error:
        if error.status != 409:  # the session sandbox may already hold it from an earlier module
            raise


def chart_identity(sandbox: SandboxInfo, directory: Path, values: dict[str, str] | None = None) -> Path:
    """A kubeconfig whose user is the chart's ServiceAccount, by a token the sandbox minted for it, after
    the chart's RBAC (rendered with ``values`` and the sandbox's namespace as the managed one) is applied."""
    objects = render({"clusters.my-cluster.namespace": sandbox.namespace, **(values or {})})
    rbac_kinds = ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
    admin = sandbox.api_client()
    try:
        for obj in (o for o in objects if o["kind"] in rbac_kinds):
            _apply(admin, obj)
        (account,) = of_kind(objects, "ServiceAccount")
        minted = client.CoreV1Api(admin).create_namespaced_service_account_token(
            account["metadata"]["name"], NAMESPACE, {"spec": {"expirationSeconds": 3600}})
    finally:
        admin.close()
    return write_kubeconfig(directory / "kubeconfig", sandbox.api_url, namespace=sandbox.namespace,
                            context_name=account["metadata"]["name"], token=minted.status.token)


@pytest.fixture(scope="module")
def bot_kubeconfig(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The chart with its default values (issue 16's least-privilege Role)."""
    return chart_identity(sandbox, tmp_path_factory.mktemp("rbac"))


def _cluster(sandbox: SandboxInfo) -> ClusterRef:
    return ClusterRef(name=sandbox.cluster, namespace=sandbox.namespace, kafka=sandbox.cluster)


async def test_a_rolling_restart_through_the_bots_adapters_is_allowed_by_the_chart_role(
    sandbox: SandboxInfo, bot_kubeconfig: Path,
) -> None:
    """As the chart's ServiceAccount: the Kafka read (discovery, get), broker pods listed, node pools
    listed, the operator Deployment read by name, the three watches (Kafka, pods, events.k8s.io) list
    and follow, and one broker annotated for a roll, which the operator carries out and the watches see
    (the pod replaced, Strimzi's restart event). A Deployment the Role does not name is refused."""
    cluster = _cluster(sandbox)
    gateway = KubeClusterGateway(load_api_client(str(bot_kubeconfig)))
    changes: list[str] = []
    watches = ClusterWatches(cluster, load_api_client(str(bot_kubeconfig)), loop=asyncio.get_running_loop(),
                             on_change=lambda: changes.append("changed"), timeout_s=5)

    async def settled() -> bool:
        status = await gateway.kafka_status(cluster)
        return status.ready and status.settled and all(p.ready for p in await gateway.broker_pods(cluster))

    watches.start()
    try:
        # The session sandbox is shared: a test before this one may have left a broker restarting.
        await wait_for(settled, timeout=180, interval=1.0, message="the shared sandbox Ready before the test")
        pods = await gateway.broker_pods(cluster)
        assert len(pods) == sandbox.brokers
        assert [pool.name for pool in await gateway.node_pools(cluster)]
        operator = await gateway.operator_deployment(cluster, sandbox.namespace, OPERATOR)
        assert operator.name == OPERATOR and operator.image
        with pytest.raises(KubeError) as refused:
            await gateway.operator_deployment(cluster, sandbox.namespace, "some-other-deployment")
        assert refused.value.status == 403

        await wait_for(lambda: watches.state().synced, timeout=30, message="the watches' first lists")
        assert watches.relists == 0  # a 403 would have made them list again and again
        seen = watches.state()
        assert seen.kafka is not None and seen.kafka.ready and len(seen.pods) >= sandbox.brokers
        events_before = len(seen.restart_events)

        target = pods[0]
        assert await gateway.request_pod_roll(cluster, target.name, target.uid) is True

        async def replaced() -> BrokerPod | None:
            now = {p.name: p for p in await gateway.broker_pods(cluster)}.get(target.name)
            return now if now is not None and now.uid != target.uid and now.ready else None

        await wait_for(replaced, timeout=180, interval=1.0, message=f"{target.name} replaced and Ready")
        await wait_for(lambda: len(watches.state().restart_events) > events_before, timeout=30,
                       message="Strimzi's restart event through the events watch")
        assert any(e.pod == target.name for e in watches.state().restart_events)
        await wait_for(lambda: {p.uid for p in watches.state().pods if p.name == target.name} - {target.uid},
                       timeout=30, message="the replaced pod through the pods watch")
        # Leave the shared sandbox as we found it.
        await wait_for(settled, timeout=120, interval=1.0, message="the Kafka CR Ready and every broker pod Ready")
    finally:
        watches.stop()
        gateway.close()


async def test_the_rebalance_cards_calls_are_allowed_by_the_chart_role(
    sandbox: SandboxInfo, bot_kubeconfig: Path,
) -> None:
    """rbac.rebalance (on by default): as the ServiceAccount, a run's KafkaRebalance is created, listed,
    read, its progress ConfigMap looked up (get), and annotated `refresh` from the state the operator
    gives it (NotReady: the session sandbox runs no Cruise Control)."""
    cluster = _cluster(sandbox)
    gateway = KubeClusterGateway(load_api_client(str(bot_kubeconfig)))
    rebalances = KubeRebalances(gateway.api_client, strimzi_version=gateway.strimzi_api_version)
    admin = sandbox.api_client()
    try:
        created = await rebalances.create_rebalance(cluster, REBALANCE, mode="full", run_id="rbac")
        assert [r.name for r in await rebalances.list_rebalances(cluster)] == [REBALANCE]

        async def not_ready() -> Any:
            found = await rebalances.get_rebalance(cluster, REBALANCE)
            return found if found is not None and found.state is RebalanceState.NOT_READY else None

        found = await wait_for(not_ready, timeout=60, interval=0.5, message="the KafkaRebalance NotReady")
        assert await rebalances.progress(cluster, found) is None  # get allowed: 404, not 403
        annotated = await rebalances.annotate(cluster, REBALANCE, RebalanceAction.REFRESH,
                                              expected_state=RebalanceState.NOT_READY, expected_uid=created.uid)
        assert annotated.uid == created.uid
    finally:
        version = await gateway.strimzi_api_version()
        rebalances.close()
        gateway.close()
        try:
            client.CustomObjectsApi(admin).delete_namespaced_custom_object(
                "kafka.strimzi.io", version, sandbox.namespace, "kafkarebalances", REBALANCE)
        except ApiException as error:
            if error.status != 404:
                raise
        admin.close()


def _refused(call: Callable[[], Any]) -> dict[str, Any]:
    with pytest.raises(ApiException) as refused:
        call()
    assert refused.value.status == 403, refused.value.body
    status: dict[str, Any] = json.loads(refused.value.body)
    assert status["reason"] == "Forbidden"
    return status


def test_exec_deletes_secrets_and_ungranted_writes_are_forbidden(sandbox: SandboxInfo, bot_kubeconfig: Path) -> None:
    """As the chart's ServiceAccount: no pods/exec (either method), no delete of a pod or a PVC (one by
    one or as a collection), no Secret (none is named by default), no patch of what the Role only reads
    (the operator Deployment, ConfigMaps) or does not name (StrimziPodSets), no create of a pod. Each
    target exists: the admin kubeconfig reads it, so the 403 is RBAC, not a missing object."""
    admin_api = sandbox.api_client()
    bot_api = load_api_client(str(bot_kubeconfig))
    try:
        admin, core = client.CoreV1Api(admin_api), client.CoreV1Api(bot_api)
        namespace = sandbox.namespace
        pod = admin.list_namespaced_pod(namespace, label_selector=f"strimzi.io/cluster={sandbox.cluster}").items[0]
        pod_name = pod.metadata.name
        secret = f"{sandbox.cluster}-cluster-ca-cert"
        for create, body in ((admin.create_namespaced_persistent_volume_claim, {"metadata": {"name": CHECK}}),
                             (admin.create_namespaced_config_map, {"metadata": {"name": CHECK}}),
                             (admin.create_namespaced_secret, {"metadata": {"name": secret},
                                                               "data": {"ca.crt": "Y2E="}})):
            try:
                create(namespace, body)
            except ApiException as error:
                if error.status != 409:
                    raise
        user = f"system:serviceaccount:{NAMESPACE}:kafka-chatops"

        status = _refused(lambda: core.connect_post_namespaced_pod_exec(pod_name, namespace, command=["sh"],
                                                                        stdout=True))
        assert status["message"] == (f'pods "{pod_name}" is forbidden: User "{user}" cannot create resource '
                                     f'"pods/exec" in API group "" in the namespace "{namespace}"')
        _refused(lambda: core.connect_get_namespaced_pod_exec(pod_name, namespace, command=["sh"], stdout=True))
        status = _refused(lambda: core.delete_namespaced_pod(pod_name, namespace))
        assert status["message"] == (f'pods "{pod_name}" is forbidden: User "{user}" cannot delete resource '
                                     f'"pods" in API group "" in the namespace "{namespace}"')
        _refused(lambda: core.delete_collection_namespaced_pod(namespace))
        status = _refused(lambda: core.delete_namespaced_persistent_volume_claim(CHECK, namespace))
        assert 'cannot delete resource "persistentvolumeclaims"' in status["message"]
        assert admin.read_namespaced_secret(secret, namespace).metadata.name == secret
        _refused(lambda: core.read_namespaced_secret(secret, namespace))
        _refused(lambda: core.list_namespaced_secret(namespace))
        touch = {"metadata": {"annotations": {"rbac-check": "yes"}}}
        status = _refused(lambda: client.AppsV1Api(bot_api).patch_namespaced_deployment(OPERATOR, namespace, touch))
        assert 'cannot patch resource "deployments" in API group "apps"' in status["message"]
        _refused(lambda: core.patch_namespaced_config_map(CHECK, namespace, touch))
        custom = client.CustomObjectsApi(bot_api)
        _refused(lambda: custom.patch_namespaced_custom_object("core.strimzi.io", "v1", namespace, "strimzipodsets",
                                                               f"{sandbox.cluster}-dual-role", touch))
        _refused(lambda: custom.delete_namespaced_custom_object("kafka.strimzi.io", "v1", namespace, "kafkas",
                                                                sandbox.cluster))
        _refused(lambda: core.create_namespaced_pod(namespace, {"metadata": {"name": "intruder"},
                                                                "spec": {"containers": []}}))
        assert admin.read_namespaced_pod(pod_name, namespace).metadata.uid == pod.metadata.uid  # nothing happened
        # The sandbox's admin kubeconfig is not held to any Role: it still deletes what the bot may not.
        admin.delete_namespaced_persistent_volume_claim(CHECK, namespace)
        admin.delete_namespaced_config_map(CHECK, namespace)
        admin.delete_namespaced_secret(secret, namespace)
    finally:
        bot_api.close()
        admin_api.close()


async def test_a_chart_value_that_withdraws_a_grant_withdraws_it_from_the_bot(
    sandbox: SandboxInfo, tmp_path: Path,
) -> None:
    """rbac.rebalance=false (another release, fullnameOverride, so another ServiceAccount and Role): the
    rebalance cards' list is refused, and the bot's error names the call and the 403, while what the
    Role still grants (broker pods) is allowed: the sandbox follows the rendered Role, not a fixed list."""
    kubeconfig = chart_identity(sandbox, tmp_path, {"rbac.rebalance": "false",
                                                    "fullnameOverride": "kafka-chatops-no-rebalance"})
    gateway = KubeClusterGateway(load_api_client(str(kubeconfig)))
    rebalances = KubeRebalances(gateway.api_client, strimzi_version=gateway.strimzi_api_version)
    cluster = _cluster(sandbox)
    try:
        assert len(await gateway.broker_pods(cluster)) == sandbox.brokers
        with pytest.raises(KubeError) as refused:
            await rebalances.list_rebalances(cluster)
        assert refused.value.status == 403
        assert "list KafkaRebalances" in str(refused.value) and "forbidden" in str(refused.value)
    finally:
        rebalances.close()
        gateway.close()
