"""The clusters file's `operator:` and `supported_kafka_versions:` keys: read into the managed cluster
with their defaults (the cluster's namespace, Strimzi's Deployment name, no override), and refused at
start when malformed, naming the cluster, the key and what is valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.settings import ConfigError, load_clusters

pytestmark = pytest.mark.timeout(10)

BASE = "clusters:\n  prod:\n    namespace: kafka\n    approvers: [U01ANA]\n"


def load(tmp_path: Path, extra: str) -> dict:  # type: ignore[type-arg]
    path = tmp_path / "clusters.yaml"
    path.write_text(BASE + extra)
    return load_clusters(path)


def refusal(tmp_path: Path, extra: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, extra)
    return str(caught.value)


def test_defaults_are_the_clusters_namespace_strimzis_deployment_and_no_override(tmp_path: Path) -> None:
    prod = load(tmp_path, "")["prod"]
    assert (prod.operator.namespace_for(prod.ref), prod.operator.deployment) == ("kafka", "strimzi-cluster-operator")
    assert prod.supported_kafka_versions is None


def test_the_operator_location_and_the_override_are_read(tmp_path: Path) -> None:
    prod = load(tmp_path, "    operator: {namespace: strimzi, deployment: my-operator}\n"
                          "    supported_kafka_versions: [4.1.1, '4.2.0', 4.2.2]\n")["prod"]
    assert (prod.operator.namespace_for(prod.ref), prod.operator.deployment) == ("strimzi", "my-operator")
    assert prod.supported_kafka_versions == ("4.1.1", "4.2.0", "4.2.2")


@pytest.mark.parametrize(("extra", "said"), [
    ("    supported_kafka_versions: [4.3]\n", "clusters.prod.supported_kafka_versions: '4.3' is not a Kafka version: "
                                             "write each as major.minor.patch, like 4.3.1"),
    ("    supported_kafka_versions: [4.3.1, latest]\n", "'latest' is not a Kafka version"),
    ("    supported_kafka_versions: []\n", "an empty list would refuse every upgrade"),
    ("    supported_kafka_versions: 4.3.1\n", "give a list of Kafka versions, e.g. [4.2.2, 4.3.1]"),
    ("    supported_kafka_versions: [4.3.1, 4.3.1]\n", "4.3.1 is listed twice"),
    ("    supported_kafka_versions: [{a: 1}]\n", "is not a Kafka version"),
    ("    operator: {namespace: Strimzi_Ops}\n", "clusters.prod.operator.namespace: 'Strimzi_Ops' is not a Kubernetes "
                                               "namespace"),
    ("    operator: {deployment: Cluster_Operator}\n", "clusters.prod.operator.deployment: 'Cluster_Operator' is not "
                                                     "a Deployment name"),
    ("    operator: {name: x}\n", "clusters.prod.operator.name: unknown key (valid here: namespace, deployment)"),
])
def test_a_malformed_operator_key_is_refused_naming_it_and_what_is_valid(tmp_path: Path, extra: str,
                                                                        said: str) -> None:
    message = refusal(tmp_path, extra)
    assert said in message, message


def test_the_readme_example_of_the_operator_keys_loads_as_documented(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    (block,) = [b.split("```", 1)[0] for b in section.split("```yaml\n")[1:]
                if "supported_kafka_versions: [4.2.2, 4.3.1]" in b and "kubeconfig:" not in b]
    path = tmp_path / "clusters.yaml"
    path.write_text(block)
    clusters = load_clusters(path)
    east, lab = clusters["prod-east"], clusters["lab"]
    assert (east.operator.namespace_for(east.ref), east.supported_kafka_versions) == ("strimzi", None)
    assert (lab.operator.namespace_for(lab.ref), lab.supported_kafka_versions) == ("lab", ("4.2.2", "4.3.1"))
