"""redis.bundled: the chart's own Redis with Sentinel, as rendered. A StatefulSet of Redis + Sentinel
pods behind a headless Service (and a client Service for the Sentinels), a PDB, the start scripts in
a ConfigMap fed by the environment the scripts read, and the bot pointed at those Sentinels with the
password from the same Secret and a replica wait. Contradictory Redis values are refused."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.startup import check_settings, load_settings, redis_url_problem
from tests.deploy.bundled_redis_pods import SCRIPTS
from tests.deploy.helm_chart import CHART, NAMESPACE, OPTIONS, helm, of_kind, render, set_args

pytestmark = pytest.mark.timeout(120)

BUNDLED = OPTIONS["redis-bundled"]
SECRET = BUNDLED["redis.bundled.auth.existingSecret"]


def _one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = of_kind(objects, kind)
    return found


def _statefulset(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return _one(objects, "StatefulSet")


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def _pod_hosts(statefulset: dict[str, Any]) -> list[str]:
    """Each pod's DNS name as Kubernetes gives it: <pod>.<serviceName>.<namespace>.svc.cluster.local."""
    name, service = statefulset["metadata"]["name"], statefulset["spec"]["serviceName"]
    return [f"{name}-{i}.{service}.{NAMESPACE}.svc.cluster.local" for i in range(statefulset["spec"]["replicas"])]


def test_off_by_default() -> None:
    objects = render()
    assert not of_kind(objects, "StatefulSet")
    assert [s["metadata"]["name"] for s in of_kind(objects, "Service")] == ["kafka-chatops"]


def test_statefulset_runs_redis_and_sentinel_per_pod_non_root_on_its_own_volume() -> None:
    """Three pods, each a redis-server and a Sentinel from the pinned official image, started by the
    ConfigMap's scripts; a PVC each of persistence.size; soft anti-affinity; resources; non-root."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())["redis"]["bundled"]
    objects = render(BUNDLED)
    sts = _statefulset(objects)
    spec, pod = sts["spec"], sts["spec"]["template"]["spec"]
    assert spec["replicas"] == 3 and spec["podManagementPolicy"] == "Parallel"
    assert re.fullmatch(r"\d+\.\d+\.\d+", values["image"]["tag"])  # pinned, not a moving tag
    assert [c["name"] for c in pod["containers"]] == ["redis", "sentinel"]
    for container in pod["containers"]:
        assert container["image"] == f"redis:{values['image']['tag']}"
        assert container["command"] == ["sh", f"/scripts/{container['name']}.sh"]
        assert container["resources"] == values["resources"][container["name"]]
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["readinessProbe"]["exec"] and container["livenessProbe"]["exec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == values["persistence"]["size"]
    assert "storageClassName" not in claim["spec"]
    mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["/data"] == claim["metadata"]["name"]
    (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == spec["selector"]["matchLabels"]

    other = _statefulset(render(OPTIONS["redis-bundled-required-anti-affinity"]))
    assert other["spec"]["replicas"] == 5
    assert other["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == "fast-ssd"
    anti = other["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["requiredDuringSchedulingIgnoredDuringExecution"][0]["topologyKey"] == "kubernetes.io/hostname"


def test_services_and_pdb_select_the_redis_pods_and_not_the_bot() -> None:
    """The headless Service names every pod before it is ready (a starting pod must reach the others);
    the client Service offers the Sentinels only; the PDB lets one pod go at a time. The bot's own
    Service and PDB do not select Redis pods, nor these the bot's."""
    objects = render(BUNDLED)
    sts = _statefulset(objects)
    redis_labels = sts["spec"]["template"]["metadata"]["labels"]
    bot_labels = _one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    services = {s["metadata"]["name"]: s["spec"] for s in of_kind(objects, "Service")}
    headless = services[sts["spec"]["serviceName"]]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert {p["port"] for p in headless["ports"]} == {6379, 26379}
    client = services[sts["metadata"]["name"]]
    assert [p["port"] for p in client["ports"]] == [26379]
    pdbs = {p["metadata"]["name"]: p["spec"] for p in of_kind(objects, "PodDisruptionBudget")}
    assert pdbs[sts["metadata"]["name"]]["maxUnavailable"] == 1

    def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
        return selector.items() <= labels.items()
    for spec in (headless, client):
        assert selects(spec["selector"], redis_labels) and not selects(spec["selector"], bot_labels)
    assert selects(pdbs[sts["metadata"]["name"]]["selector"]["matchLabels"], redis_labels)
    assert not selects(services["kafka-chatops"]["selector"], redis_labels)
    assert not selects(pdbs["kafka-chatops"]["selector"]["matchLabels"], redis_labels)


def test_the_scripts_configmap_holds_the_tested_scripts_and_gets_the_env_they_read() -> None:
    """The ConfigMap is files/redis/ as the behavioural test runs it; every variable a script requires is
    set by its container, with the pod's FQDN as POD_HOST and every pod's Sentinel in SENTINEL_ADDRESSES."""
    objects = render(BUNDLED)
    sts = _statefulset(objects)
    configmap = next(c for c in of_kind(objects, "ConfigMap") if c["metadata"]["name"].endswith("-redis-scripts"))
    assert configmap["data"] == {p.name: p.read_text() for p in SCRIPTS.glob("*.sh")}
    hosts = _pod_hosts(sts)
    required_by_all = set(re.findall(r"\$\{(\w+):\?\}", (SCRIPTS / "common.sh").read_text()))
    assert "POD_HOST" in required_by_all
    for container in sts["spec"]["template"]["spec"]["containers"]:
        env = _env(container)
        script = (SCRIPTS / f"{container['name']}.sh").read_text()
        if container["name"] == "redis":  # its preStop runs prestop.sh with the container's environment
            assert container["lifecycle"]["preStop"]["exec"]["command"] == ["sh", "/scripts/prestop.sh"]
            script += (SCRIPTS / "prestop.sh").read_text()
        required = required_by_all | set(re.findall(r"\$\{(\w+):[?=]", script))
        assert required <= set(env), (container["name"], required - set(env))
        assert env["POD_HOST"] == f"$(POD_NAME).{sts['spec']['serviceName']}.{NAMESPACE}.svc.cluster.local"
        assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert env["SENTINEL_ADDRESSES"].split() == [f"{h}:26379" for h in hosts]
        assert env["FIRST_POD_ADDRESS"] == f"{hosts[0]}:6379"
        mount = next(m for m in container["volumeMounts"] if m["name"] == "password")
        assert env["REDIS_PASSWORD_FILE"] == f"{mount['mountPath']}/password"
    sentinel_env = _env(sts["spec"]["template"]["spec"]["containers"][1])
    assert sentinel_env["QUORUM"] == "2" and sentinel_env["DOWN_AFTER_MILLISECONDS"] == "5000"
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert volumes["password"]["secret"]["secretName"] == SECRET
    assert volumes["scripts"]["configMap"]["name"] == configmap["metadata"]["name"]


def test_the_bot_reaches_the_bundled_sentinels_with_the_password_file_and_waits_for_a_replica(tmp_path: Path) -> None:
    """REDIS_URL names every pod's Sentinel and the master name, holds no password, and passes the bot's
    own check; Redis and Sentinel passwords are the bundled Secret's key, mounted; REDIS_WAIT_REPLICAS=1."""
    objects = render(BUNDLED)
    hosts = _pod_hosts(_statefulset(objects))
    pod = _one(objects, "Deployment")["spec"]["template"]["spec"]
    (bot,) = pod["containers"]
    env = _env(bot)
    url = env["REDIS_URL"]
    assert url == f"redis+sentinel://{','.join(f'{h}:26379' for h in hosts)}/mymaster/0"
    assert redis_url_problem(url) is None
    assert env["REDIS_WAIT_REPLICAS"] == "1"
    assert env["REDIS_PASSWORD_FILE"] == env["REDIS_SENTINEL_PASSWORD_FILE"]
    mount = next(m for m in bot["volumeMounts"] if m["name"] == "redis-password")
    assert env["REDIS_PASSWORD_FILE"] == f"{mount['mountPath']}/password"
    volume = next(v for v in pod["volumes"] if v["name"] == "redis-password")
    assert volume["secret"]["secretName"] == SECRET
    assert volume["secret"]["items"] == [{"key": "redis-password", "path": "password"}]
    password = tmp_path / "password"
    password.write_text("pw\n")
    check_settings(load_settings(kafka_chatops_config="clusters.yaml", redis_url=url,
                                 redis_password_file=str(password), redis_sentinel_password_file=str(password)))
    more = _env(_one(render(OPTIONS["redis-bundled-required-anti-affinity"]), "Deployment")
                ["spec"]["template"]["spec"]["containers"][0])
    assert more["REDIS_WAIT_REPLICAS"] == "2"


@pytest.mark.parametrize(("values", "message"), [
    ({**BUNDLED, "redis.sentinel.enabled": "true", "redis.sentinel.hosts[0]": "a:26379"},
     "redis.bundled.enabled and redis.sentinel.enabled are both set"),
    ({**BUNDLED, "redis.existingSecret": "kafka-chatops-redis"},
     'redis.existingSecret is "kafka-chatops-redis" but redis.bundled.enabled makes the chart\'s own Redis'),
    ({**BUNDLED, "redis.bundled.auth.existingSecret": ""}, "redis.bundled.auth.existingSecret is empty"),
    ({**BUNDLED, "redis.bundled.replicas": "2"}, "redis.bundled.replicas is 2: give 3 or more"),
    ({**BUNDLED, "redis.waitReplicas": "3"}, "redis.waitReplicas is 3 but the bundled Redis has 2 replicas"),
    ({**BUNDLED, "redis.bundled.podAntiAffinity": "hard"}, 'redis.bundled.podAntiAffinity is "hard"'),
    ({**BUNDLED, "redis.bundled.masterName": "my master"}, 'redis.bundled.masterName is "my master"'),
])
def test_contradictory_or_unusable_bundled_values_are_refused(values: dict[str, str], message: str) -> None:
    result = helm("template", "kafka-chatops", str(CHART), *set_args(values), check=False)
    assert result.returncode != 0, result.stdout
    assert message in result.stderr
