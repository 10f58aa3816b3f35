"""The chart's Redis options as the bot reads them: an existing Redis by URL from a Secret (the
default), or Sentinel by hosts, master name and password Secrets, rendered into a REDIS_URL the bot
accepts and password files it can read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.startup import check_settings, load_settings, redis_url_problem
from tests.deploy.helm_chart import OPTIONS, of_kind, render

pytestmark = pytest.mark.timeout(120)


def _pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = of_kind(objects, "Deployment")
    return dict(deployment["spec"]["template"]["spec"])


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    (container,) = pod["containers"]
    return {e["name"]: e for e in container["env"]}


def test_by_default_redis_url_comes_from_the_existing_secret_and_nothing_waits() -> None:
    env = _env(_pod(render()))
    assert env["REDIS_URL"]["valueFrom"] == {"secretKeyRef": {"name": "kafka-chatops-redis", "key": "REDIS_URL"}}
    assert not {"REDIS_PASSWORD_FILE", "REDIS_SENTINEL_PASSWORD_FILE", "REDIS_WAIT_REPLICAS"} & set(env)


def test_sentinel_renders_a_url_the_bot_accepts_and_mounts_the_passwords(tmp_path: Path) -> None:
    """REDIS_URL names the Sentinels and master (TLS: rediss+sentinel), holds no password, and passes the
    bot's own check; each password file is the mounted key of its Secret; the replica wait is set."""
    pod = _pod(render(OPTIONS["redis-sentinel"]))
    env = _env(pod)
    url = env["REDIS_URL"]["value"]
    assert url == ("rediss+sentinel://redis-node-0.redis-headless.redis.svc:26379,"
                   "redis-node-1.redis-headless.redis.svc/mymaster/0")
    assert redis_url_problem(url) is None
    assert "@" not in url
    assert env["REDIS_WAIT_REPLICAS"]["value"] == "1" and env["REDIS_WAIT_TIMEOUT_MS"]["value"] == "500"

    (container,) = pod["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for setting, secret, key in (("REDIS_PASSWORD_FILE", "redis", "redis-password"),
                                 ("REDIS_SENTINEL_PASSWORD_FILE", "redis-sentinel", "sentinel-password")):
        path = Path(env[setting]["value"])
        (name,) = [n for n, m in mounts.items() if Path(m["mountPath"]) == path.parent]
        assert mounts[name]["readOnly"] is True
        assert volumes[name]["secret"]["secretName"] == secret
        assert volumes[name]["secret"]["items"] == [{"key": key, "path": path.name}]
        # The bot reads what Kubernetes would mount there (a file holding the password alone).
        (tmp_path / name).write_text("pw\n")
        settings = load_settings(kafka_chatops_config="clusters.yaml", redis_url=url,
                                 **{setting.lower(): str(tmp_path / name)})
        check_settings(settings)


def test_sentinel_without_passwords_mounts_nothing() -> None:
    values = {k: v for k, v in OPTIONS["redis-sentinel"].items() if "passwordsecret" not in k.lower()}
    pod = _pod(render(values))
    env = _env(pod)
    assert not {"REDIS_PASSWORD_FILE", "REDIS_SENTINEL_PASSWORD_FILE"} & set(env)
    assert {v["name"] for v in pod["volumes"]} == {"clusters", "tmp"}
