"""Each cluster's `kubeconfig` and `context` in the clusters file: refused at start, naming the
cluster and the key, when the file is missing or is not a kubeconfig or lacks the context (listing
the contexts it has, never its tokens); clusters naming the same file and context share one API
client; without the keys, KUBECONFIG's current context or the pod's service account, as before."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.app import cluster_gateways
from bot.config.kube_targets import KubeTarget
from bot.config.settings import ConfigError, load_clusters_file
from tests.fixtures.redis_server import free_port

pytestmark = pytest.mark.timeout(10)

TOKEN = "sha256~do-not-print-me"


def kubeconfig(path: Path, *contexts: str, current: str | None = None) -> Path:
    """A kubeconfig with one unreachable API server per context (loading a client never connects)."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": c, "cluster": {"server": f"https://{c}.invalid:6443"}} for c in contexts],
        "users": [{"name": c, "user": {"token": TOKEN}} for c in contexts],
        "contexts": [{"name": c, "context": {"cluster": c, "user": c}} for c in contexts],
        "current-context": current if current is not None else contexts[0],
    }))
    return path


def clusters_file(tmp_path: Path, **kube: dict[str, str]) -> Path:
    clusters = {name.replace("_", "-"): {"approvers": ["U1"], **keys} for name, keys in kube.items()}
    path = tmp_path / "clusters.yaml"
    path.write_text(yaml.safe_dump({"clusters": clusters}))
    return path


def gateways_of(path: Path, *, kubeconfig_env: str | None = None):  # type: ignore[no-untyped-def]
    clusters, kube = load_clusters_file(path)
    return cluster_gateways(kubeconfig_env, kube, clusters, base_dir=path.parent)


def refusal(path: Path, *, kubeconfig_env: str | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        gateways_of(path, kubeconfig_env=kubeconfig_env)
    message = str(caught.value)
    assert TOKEN not in message
    return message


def test_a_missing_kubeconfig_is_named_with_its_cluster_and_key(tmp_path: Path) -> None:
    """prod-west's kubeconfig does not exist: the message names clusters.prod-west.kubeconfig and the path."""
    message = refusal(clusters_file(tmp_path, prod_west={"kubeconfig": "west.yaml"}))
    assert "clusters.prod-west.kubeconfig" in message
    assert str(tmp_path / "west.yaml") in message
    assert "does not exist" in message and "give a kubeconfig file" in message


def test_a_file_that_is_not_a_kubeconfig_is_refused(tmp_path: Path) -> None:
    """A YAML list, and a mapping with no contexts (say the clusters file itself), are not kubeconfigs."""
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    message = refusal(clusters_file(tmp_path, prod_east={"kubeconfig": "list.yaml"}))
    assert "clusters.prod-east.kubeconfig" in message and "is not a kubeconfig (its top level is a list)" in message
    (tmp_path / "other.yaml").write_text("clusters: {}\nusers: []\n")
    message = refusal(clusters_file(tmp_path, prod_east={"kubeconfig": "other.yaml"}))
    assert "is not a kubeconfig: it lists no `contexts`" in message


def test_a_context_not_in_the_kubeconfig_lists_the_contexts_it_has(tmp_path: Path) -> None:
    """`context: prod-wset` (a typo): refused, naming the key and listing east and west, no token."""
    kubeconfig(tmp_path / "prod.yaml", "east", "west")
    message = refusal(clusters_file(tmp_path, prod_west={"kubeconfig": "prod.yaml", "context": "prod-wset"}))
    assert "clusters.prod-west.context 'prod-wset' is not a context of" in message
    assert "give one of east, west" in message


def test_no_current_context_and_no_context_key_is_refused(tmp_path: Path) -> None:
    """A kubeconfig without a current-context, and no `context`: which API is meant cannot be guessed."""
    kubeconfig(tmp_path / "prod.yaml", "east", "west", current="")
    message = refusal(clusters_file(tmp_path, prod_east={"kubeconfig": "prod.yaml"}))
    assert "clusters.prod-east" in message and "it has no current-context: give `context`, one of east, west" in message


def test_every_cluster_with_a_problem_is_named_at_once(tmp_path: Path) -> None:
    """Two clusters, two problems: one start tells both."""
    kubeconfig(tmp_path / "prod.yaml", "east")
    message = refusal(clusters_file(tmp_path, prod_east={"kubeconfig": "prod.yaml", "context": "west"},
                                    prod_west={"kubeconfig": "missing.yaml"}))
    assert message.startswith("2 problems")
    assert "clusters.prod-east.context" in message and "clusters.prod-west.kubeconfig" in message


def test_a_context_alone_is_looked_up_in_kubeconfig(tmp_path: Path) -> None:
    """`context` without `kubeconfig` names a context of KUBECONFIG: found there, or refused listing
    KUBECONFIG's contexts."""
    env = str(kubeconfig(tmp_path / "env.yaml", "east", "west"))
    gateways = gateways_of(clusters_file(tmp_path, prod_west={"context": "west"}), kubeconfig_env=env)
    try:
        assert gateways.target_of("prod-west") == KubeTarget(files=(str(Path(env).resolve()),), context="west")
    finally:
        gateways.close()
    message = refusal(clusters_file(tmp_path, prod_west={"context": "north"}), kubeconfig_env=env)
    assert "clusters.prod-west.context 'north' is not a context of" in message and "east, west" in message


def test_a_context_without_any_kubeconfig_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No KUBECONFIG and no ~/.kube/config: a `context` has nowhere to be, and the message says to
    give the cluster's `kubeconfig`."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    message = refusal(clusters_file(tmp_path, prod_west={"context": "west"}))
    assert "clusters.prod-west.context 'west' names a context, but there is no kubeconfig" in message
    assert "give clusters.prod-west.kubeconfig" in message


def test_clusters_naming_the_same_file_and_context_share_one_client(tmp_path: Path) -> None:
    """Four clusters: one on KUBECONFIG (no keys), one naming that file by another path with its
    current context spelled out, one naming it relative to the clusters file: one client for the
    three. A fourth on the other context of the same file gets a client of its own."""
    (tmp_path / "kube").mkdir()
    env = kubeconfig(tmp_path / "kube" / "config.yaml", "east", "west")
    path = clusters_file(tmp_path, a={}, b={"kubeconfig": str(tmp_path / "kube" / ".." / "kube" / "config.yaml"),
                                           "context": "east"},
                         c={"kubeconfig": "kube/config.yaml"}, d={"kubeconfig": "kube/config.yaml", "context": "west"})
    gateways = gateways_of(path, kubeconfig_env=str(env))
    try:
        assert gateways.distinct == 2
        refs = {name: KubeTarget(files=(str(env.resolve()),), context="east") for name in ("a", "b", "c")}
        assert {name: gateways.target_of(name) for name in refs} == refs
        assert gateways.target_of("d").context == "west"
    finally:
        gateways.close()


def test_without_the_keys_kubeconfig_or_the_service_account_is_used(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """No keys and no KUBECONFIG: the default target (the client's loader tries the pod's service
    account first, then ~/.kube/config: today's behaviour); a file given is loaded at start, and
    one the client cannot load is refused naming KUBECONFIG, as before."""
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    message = refusal(clusters_file(tmp_path, prod={}))
    assert "KUBECONFIG is not set, and there is neither an in-cluster service account nor a ~/.kube/config" in message


def test_the_readme_examples_load(tmp_path: Path) -> None:
    """README's Configuration examples, as written: the keys with their defaults, and prod-east on the
    pod's service account beside prod-west on a kubeconfig and context of its own."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```yaml\n")[1:]]
    documented, two = (b for b in blocks if "kubeconfig:" in b)
    for number, text in enumerate((documented, two)):
        path = tmp_path / f"clusters-{number}.yaml"
        path.write_text(text)
        load_clusters_file(path)
    _, kube = load_clusters_file(tmp_path / "clusters-1.yaml")
    assert kube["prod-east"].kubeconfig is None and kube["prod-east"].context is None
    assert (kube["prod-west"].kubeconfig, kube["prod-west"].context) == (
        "/etc/kafka-chatops-kubeconfigs/prod-west", "prod-west")


@pytest.mark.parametrize("command", ["console", "run"])
def test_the_commands_refuse_to_start_naming_the_cluster_and_key(tmp_path: Path, command: str) -> None:
    """`console` and `run`, started as a user starts them: a context prod-west's kubeconfig lacks ends
    the start with one message and exit code 2, listing the contexts, never the token."""
    kubeconfig(tmp_path / "west.yaml", "east", "west")
    path = clusters_file(tmp_path, prod_east={}, prod_west={"kubeconfig": "west.yaml", "context": "prod-wset"})
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "REDIS_", "KAFKA_CHATOPS_"))},
           "KAFKA_CHATOPS_CONFIG": str(path), "KUBECONFIG": str(kubeconfig(tmp_path / "env.yaml", "here")),
           "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "SLACK_BOT_TOKEN": "xoxb-1-2-kubetargets",
           "SLACK_APP_TOKEN": "xapp-1-A0-1-kubetargets", "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/"}
    result = subprocess.run([sys.executable, "-m", "bot", command], env=env, capture_output=True, text=True,
                            timeout=60, cwd=Path(__file__).resolve().parents[2], check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and TOKEN not in result.stderr + result.stdout
    assert f"kafka-chatops {command}: cannot start: clusters.prod-west.context 'prod-wset' is not a context of " \
           f"{tmp_path / 'west.yaml'}: give one of east, west" in result.stderr
