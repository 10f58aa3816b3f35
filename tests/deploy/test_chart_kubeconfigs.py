"""The chart's `kubeconfigs` option: kubeconfigs of other Kubernetes clusters mounted from a Secret
the user creates, for clusters that name them with `kubeconfig` and `context`; no Role made for
those clusters' namespaces here (they live in another Kubernetes cluster); a cluster naming a file
under the mount without the Secret is refused by name. Off by default (the default render, which
deploy/kubernetes/ must equal, is unchanged)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bot.config.settings import load_clusters_file
from tests.deploy.helm_chart import CHART, helm, of_kind, render, set_args

pytestmark = pytest.mark.timeout(120)

MOUNT = "/etc/kafka-chatops-kubeconfigs"
WEST = {
    "kubeconfigs.existingSecret": "kafka-chatops-kubeconfigs",
    "clusters.prod-west.namespace": "kafka-west",
    "clusters.prod-west.kubeconfig": f"{MOUNT}/prod-west",
    "clusters.prod-west.context": "west",
    "clusters.prod-west.approvers[0]": "U0000000001",
}


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = of_kind(objects, "Deployment")
    return dict(deployment["spec"]["template"]["spec"])


def test_lint_and_schemas_pass_with_extra_kubeconfigs() -> None:
    """`helm lint --strict` and strict Kubernetes schema validation of every object, with the option on."""
    result = helm("lint", "--strict", str(CHART), *set_args(WEST), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    for obj in render(WEST):
        if obj["kind"] not in {"ServiceMonitor", "PrometheusRule"}:
            kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)


def test_the_secret_is_mounted_read_only_where_the_clusters_file_points(tmp_path: Path) -> None:
    """The Secret is a volume mounted read-only at kubeconfigs.mountPath, readable by the bot's group
    only; the rendered clusters file loads in the bot, naming prod-west's kubeconfig under that mount."""
    objects = render(WEST)
    spec = pod_spec(objects)
    (volume,) = [v for v in spec["volumes"] if v["name"] == "kubeconfigs"]
    assert volume["secret"]["secretName"] == "kafka-chatops-kubeconfigs"
    assert volume["secret"]["defaultMode"] == 0o440
    (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "kubeconfigs"]
    assert mount == {"name": "kubeconfigs", "mountPath": MOUNT, "readOnly": True}

    (configmap,) = of_kind(objects, "ConfigMap")
    path = tmp_path / "clusters.yaml"
    path.write_text(configmap["data"]["clusters.yaml"])
    clusters, kube = load_clusters_file(path)
    assert set(clusters) == {"my-cluster", "prod-west"}
    assert (kube["prod-west"].kubeconfig, kube["prod-west"].context) == (f"{MOUNT}/prod-west", "west")
    assert kube["my-cluster"].kubeconfig is None  # the pod's service account


def test_no_role_is_made_for_a_cluster_in_another_kubernetes_cluster() -> None:
    """Roles in `kafka` (my-cluster, on the pod's service account) only; prod-west's namespace is in
    the Kubernetes cluster its kubeconfig names, where this chart's Roles would grant nothing."""
    roles = {role["metadata"]["namespace"] for role in of_kind(render(WEST), "Role")}
    assert roles == {"kafka"}


def test_the_default_render_mounts_no_kubeconfig() -> None:
    spec = pod_spec(render())
    assert not [v for v in spec["volumes"] if v["name"] == "kubeconfigs"]


def test_a_kubeconfig_under_the_mount_without_the_secret_is_refused() -> None:
    """prod-west names a file under the mount, but no Secret is given: the file would never exist."""
    values = {**WEST, "kubeconfigs.existingSecret": ""}
    result = helm("template", "x", str(CHART), *set_args(values), check=False)
    assert result.returncode != 0
    assert (f"clusters.prod-west.kubeconfig is {MOUNT}/prod-west, under kubeconfigs.mountPath, but "
            "kubeconfigs.existingSecret is empty") in result.stderr


def test_values_yaml_documents_the_option() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["kubeconfigs"] == {"existingSecret": "", "mountPath": MOUNT}
