"""Starting against Sentinel: a malformed Sentinel URL, Sentinels that do not answer, a master name
they do not know and a password from a file each get one message naming the setting, what was wrong
and what is valid, and never the password."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import connect_redis
from bot.config.settings import ConfigError
from bot.startup import check_settings, load_settings
from tests.fixtures.redis_server import free_port
from tests.startup import test_start_problems as problems
from tests.startup.test_start_problems import Start, refused
from tests.store.sentinel_cluster import MASTER_NAME, SentinelCluster

# The same start-up harness as test_start_problems (its fixtures, shared by name).
files, start = problems.files, problems.start

pytestmark = pytest.mark.timeout(60)
PASSWORD = "s3cret-sentinel-pw"
FORM = "redis+sentinel://[:password@]host:26379,host2:26379/master-name/db"


@pytest.fixture
def guarded_cluster(tmp_path: Path) -> Iterator[SentinelCluster]:
    """Master, replica and three Sentinels; the data nodes require PASSWORD."""
    cluster = SentinelCluster(tmp_path / "sentinel", password=PASSWORD)
    try:
        yield cluster
    finally:
        cluster.cleanup()


@pytest.mark.parametrize(("url", "why"), [
    ("redis+sentinel://:pw-123@127.0.0.1:26379", "it names no master"),
    ("redis+sentinel://:pw-123@127.0.0.1:26379/", "it names no master"),
    ("redis+sentinel://:pw-123@127.0.0.1:port/mymaster", "the Sentinel port of 127.0.0.1 ('port')"),
    ("redis+sentinel://:pw-123@127.0.0.1:26379,/mymaster", "it names no Sentinel host"),
    ("redis+sentinel://:pw-123@127.0.0.1:26379/mymaster/db", "the database 'db' is not a number"),
    ("redis+sentinel://:pw-123@127.0.0.1:26379/mymaster/0/1", "more than a master name and a database"),
    ("redis+sentinel://:pw-123@127.0.0.1:26379/my master", "is not a Sentinel master name"),
    ("redis+sentinel://:pw-123@127.0.0.1:26379/mymaster?ssl_ca_certs=/ca.pem", "use rediss+sentinel://"),
    ("rediss+sentinel://:pw-123@127.0.0.1:26379/mymaster?socket_timeout=3", "'socket_timeout' is not one"),
    ("rediss+sentinel://:pw-123@127.0.0.1:26379/mymaster?ssl_cert_reqs=maybe", "give none, optional or required"),
])
def test_a_malformed_sentinel_url_says_what_is_wrong(start: Start, url: str, why: str) -> None:
    code, err = start(["console"], REDIS_URL=url)
    refused(code, err, "console", "REDIS_URL redis", "is not a valid Sentinel URL", why, FORM)
    assert "pw-123" not in err


@pytest.mark.parametrize("command", ["console", "run"])
def test_no_sentinel_answering_names_the_hosts(start: Start, command: str) -> None:
    ports = free_port(), free_port()
    url = f"redis+sentinel://:pw-123@127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/mymaster/0"
    code, err = start([command], REDIS_URL=url)
    refused(code, err, command, f"no Sentinel answers at 127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}",
            "ConnectionError", "check the Sentinel hosts and ports")
    assert "pw-123" not in err


async def test_a_master_name_the_sentinels_do_not_know_is_named(guarded_cluster: SentinelCluster) -> None:
    url = guarded_cluster.url().replace(f"/{MASTER_NAME}/", "/other-master/")
    with pytest.raises(ConfigError) as refused_start:
        await connect_redis(url)
    message = str(refused_start.value)
    assert "know no usable master named 'other-master' (the masters they watch: 'mymaster')" in message
    assert "give the master name the Sentinels monitor" in message
    assert PASSWORD not in message


async def test_the_password_comes_from_a_file(guarded_cluster: SentinelCluster, tmp_path: Path) -> None:
    """REDIS_PASSWORD_FILE (a trailing newline, as `kubectl create secret --from-file` keeps it) works
    through Sentinel; a wrong one is refused naming the file setting, without the password."""
    secret = tmp_path / "redis-password"
    secret.write_text(PASSWORD + "\n")
    url = guarded_cluster.url(password=False)
    client = await connect_redis(url, password_file=str(secret))
    try:
        await client.set("k", "v")
        with guarded_cluster.node_on(guarded_cluster.master_port()).client() as direct:
            assert direct.get("k") == "v"
    finally:
        await client.aclose()

    secret.write_text("not-the-password\n")
    with pytest.raises(ConfigError) as wrong:
        await connect_redis(url, password_file=str(secret))
    assert "Redis refused the password" in str(wrong.value) and "REDIS_PASSWORD_FILE" in str(wrong.value)
    assert "not-the-password" not in str(wrong.value)


def test_password_file_problems_are_named(tmp_path: Path) -> None:
    empty, lines = tmp_path / "empty", tmp_path / "lines"
    empty.write_text("")
    lines.write_text("a\nb\n")
    cases = {
        str(tmp_path / "missing"): "does not exist: point it at a file holding the password",
        str(empty): "is empty: the file must hold the password alone",
        str(lines): "is more than one line",
        str(tmp_path): "cannot be read (IsADirectoryError)",
    }
    for path, why in cases.items():
        with pytest.raises(ConfigError) as refused_settings:
            check_settings(load_settings(kafka_chatops_config="clusters.yaml", redis_password_file=path))
        assert f"REDIS_PASSWORD_FILE {path} {why}" in str(refused_settings.value)


def test_a_password_in_the_url_and_a_file_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file")
    settings = load_settings(kafka_chatops_config="clusters.yaml", redis_password_file=str(secret),
                             redis_url="redis+sentinel://:in-url@127.0.0.1:26379/mymaster/0")
    with pytest.raises(ConfigError) as refused_settings:
        check_settings(settings)
    message = str(refused_settings.value)
    assert "has a password and REDIS_PASSWORD_FILE names another: give the password in one place" in message
    assert "in-url" not in message and "from-file" not in message


@pytest.mark.parametrize(("setting", "value", "valid"), [
    ("REDIS_WAIT_REPLICAS", "one", "a whole number of replicas from 0 to 10"),
    ("REDIS_WAIT_REPLICAS", "-1", "a whole number of replicas from 0 to 10"),
    ("REDIS_WAIT_TIMEOUT_MS", "0", "a whole number of milliseconds from 1 to 60000"),
])
def test_a_malformed_replica_wait_names_the_setting(start: Start, setting: str, value: str, valid: str) -> None:
    code, err = start(["console"], **{setting: value})
    refused(code, err, "console", f"{setting}={value!r} is not valid", valid)
