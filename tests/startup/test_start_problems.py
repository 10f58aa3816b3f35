"""Every start-up problem of `run`, `console` and `demo` ends the same way: one message naming the
setting (what was wrong, what is valid), exit code 2, no traceback. The commands run for real
(``bot.cli.main``, in this process or as ``python -m bot``) against the environment a user would set."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.cli import main
from tests.fixtures.redis_server import free_port
from tests.slack.bot_server import PROJECT_ROOT, UNREACHABLE_KUBECONFIG

pytestmark = pytest.mark.timeout(60)

CLUSTERS = "clusters:\n  prod:\n    namespace: kafka\n    approvers: [U01ANA]\n"
BOT_TOKEN = "xoxb-1111-2222-startuptest"
Start = Callable[..., tuple[int, str]]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "clusters.yaml").write_text(CLUSTERS)
    (tmp_path / "kubeconfig").write_text(UNREACHABLE_KUBECONFIG)
    return tmp_path


@pytest.fixture
def start(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], files: Path) -> Start:
    """``start(["console"], REDIS_URL=...)``: the command with a valid environment but for the
    settings given; returns the exit code and what it printed on stderr."""
    for name in list(os.environ):
        if name.startswith(("SLACK_", "REDIS_", "KAFKA_CHATOPS_", "KUBECONFIG")):
            monkeypatch.delenv(name)

    given: set[str] = set()

    def run(argv: list[str], **settings: str) -> tuple[int, str]:
        for name in given:  # each start sees only its own settings
            monkeypatch.delenv(name, raising=False)
        given.update(settings)
        base = {"KAFKA_CHATOPS_CONFIG": str(files / "clusters.yaml"), "KUBECONFIG": str(files / "kubeconfig"),
                "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "KAFKA_CHATOPS_SANDBOX_HOME": str(files / "sb"),
                # `run`: Slack is not reachable either; the bot warns about that and goes on
                "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": "xapp-1-A0-1-startuptest",
                "SLACK_API_URL": f"http://127.0.0.1:{free_port()}/api/"}
        for name, value in {**base, **settings}.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(argv)
        return code, capsys.readouterr().err
    return run


def refused(code: int, stderr: str, command: str, *expected: str) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    message = [line for line in stderr.splitlines() if line.startswith(f"kafka-chatops {command}:")]
    assert len(message) == 1, stderr
    for text in expected:
        assert text in stderr, f"{text!r} not in {stderr!r}"


@pytest.mark.parametrize("command", ["console", "run"])
def test_redis_down_names_redis_url(start: Start, command: str) -> None:
    port = free_port()
    code, err = start([command], REDIS_URL=f"redis://127.0.0.1:{port}/0")
    refused(code, err, command, f"REDIS_URL redis://127.0.0.1:{port}/0", "Redis does not answer",
            "start Redis or point REDIS_URL at a running one")


@pytest.mark.parametrize("command", ["console", "run"])
@pytest.mark.parametrize(("setting", "value", "valid"), [
    ("KAFKA_CHATOPS_LEASE_TTL", "abc", "a number of seconds above 0.5 and at most 3600"),
    ("KAFKA_CHATOPS_LEASE_TTL", "inf", "a number of seconds above 0.5 and at most 3600"),
    ("KAFKA_CHATOPS_LEASE_TTL", "0.1", "a number of seconds above 0.5 and at most 3600"),
    ("KAFKA_CHATOPS_POLL_INTERVAL", "nan", "a number of seconds above 0 and at most 60"),
    ("KAFKA_CHATOPS_REBALANCE_POLL_INTERVAL", "0.5", "a number of seconds from 1 to 300"),
    ("KAFKA_CHATOPS_WATCH_TIMEOUT", "1.5", "a whole number of seconds from 1 to 3600"),
    ("KAFKA_CHATOPS_HTTP_PORT", "http", "0 to 65535 (0: any free port), or unset"),
    ("KAFKA_CHATOPS_HTTP_PORT", "70000", "0 to 65535 (0: any free port), or unset"),
    ("KAFKA_CHATOPS_MONITORS", "maybe", "true or false"),
    ("KAFKA_CHATOPS_LAG_STREAM", "stream", "true or false"),
])
def test_a_malformed_number_or_switch_names_the_setting_and_what_is_valid(
        start: Start, command: str, setting: str, value: str, valid: str) -> None:
    code, err = start([command], **{setting: value})
    refused(code, err, command, f"{setting}={value!r} is not valid", valid)


@pytest.mark.parametrize("command", ["console", "run"])
def test_a_redis_url_of_another_kind_is_named(start: Start, command: str) -> None:
    """A URL of another kind (Cluster, HTTP), and a URL redis-py cannot read: named, with the forms accepted."""
    for url in ("redis+cluster://127.0.0.1:7000/0", "http://127.0.0.1:6379/0", "redis://127.0.0.1:port/0",
                "redis://127.0.0.1:6379/db"):
        code, err = start([command], REDIS_URL=url)
        refused(code, err, command, "REDIS_URL", "redis://[:password@]host:port/db, rediss://…, unix:///path",
                "redis+sentinel://[:password@]host:26379,host2:26379/master-name/db")


def test_a_redis_url_is_named_without_its_password(start: Start) -> None:
    code, err = start(["console"], REDIS_URL="redis+sentinel://:hunter2@127.0.0.1:26379/0")
    refused(code, err, "console", "REDIS_URL")
    assert "hunter2" not in err


@pytest.mark.parametrize("command", ["console", "run"])
def test_a_kubeconfig_that_is_not_one_is_named(start: Start, files: Path, command: str) -> None:
    """A YAML list, broken YAML, an empty mapping, a missing file, a directory: KUBECONFIG named,
    with what a kubeconfig is."""
    cases = {"list.yaml": "- a\n- b\n", "broken.yaml": "clusters: [\n", "empty.yaml": "{}\n"}
    for name, text in cases.items():
        (files / name).write_text(text)
    for path in [*(files / name for name in cases), files / "missing.yaml", files]:
        code, err = start([command], KUBECONFIG=str(path))
        refused(code, err, command, f"KUBECONFIG {path}")
        assert "kubeconfig" in err.lower()


@pytest.mark.parametrize("command", ["console", "run"])
def test_a_clusters_file_that_cannot_be_read_is_named(start: Start, files: Path, command: str) -> None:
    (files / "binary").write_bytes(b"\x7fELF\x02\x01\x01\x00\xd0\xff")
    for path, why in ((files, "is a directory"), (files / "binary", "is not UTF-8 text"),
                      (files / "none.yaml", "does not exist")):
        code, err = start([command], KAFKA_CHATOPS_CONFIG=str(path))
        refused(code, err, command, "KAFKA_CHATOPS_CONFIG", why)


@pytest.mark.parametrize("command", ["console", "run"])
def test_a_malformed_supported_versions_override_stops_the_start(start: Start, files: Path, command: str) -> None:
    """An override the upgrade runbook would judge by, written wrong: refused before anything starts,
    naming the cluster, the key, the value and the form of a version."""
    (files / "clusters.yaml").write_text(CLUSTERS + "    supported_kafka_versions: [4.3.1, 4.4]\n")
    code, err = start([command])
    refused(code, err, command, "clusters.prod.supported_kafka_versions: '4.4' is not a Kafka version",
            "like 4.3.1")


@pytest.mark.parametrize("command", ["console", "run"])
@pytest.mark.parametrize(("key", "expected"), [
    ("channels: 5", "clusters.prod.channels: 5 is not a list of channel ids: give Slack channel ids"),
    ("runbooks: {upgrad: {requesters: [U01ANA]}}",
     "clusters.prod.runbooks: 'upgrad': no such runbook; the runbooks are config, mirror, mirror-restart, "
     "replace-broker, restart, scale, upgrade"),
])
def test_a_malformed_access_key_is_refused_at_start(start: Start, files: Path, command: str, key: str,
                                                    expected: str) -> None:
    """Who may ask for what, and where: a key the bot could only misread stops it before it connects."""
    (files / "clusters.yaml").write_text(CLUSTERS + f"    {key}\n")
    code, err = start([command])
    refused(code, err, command, "KAFKA_CHATOPS_CONFIG", expected)


def test_a_redis_that_refuses_the_database_is_named(start: Start, redis_url: str) -> None:
    """A database number the server does not have: Redis answers, and refuses."""
    code, err = start(["console"], REDIS_URL=redis_url.rsplit("/", 1)[0] + "/99")
    refused(code, err, "console", "REDIS_URL", "DB index is out of range")


@pytest.mark.parametrize("command", ["console", "run"])
def test_a_health_port_in_use_is_named(start: Start, redis_url: str, command: str) -> None:
    """The /healthz and /metrics server cannot bind: the settings that chose the address are named,
    and the half-started bot stops instead of hanging."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = start([command], REDIS_URL=redis_url, KAFKA_CHATOPS_HTTP_PORT=str(port),
                          KAFKA_CHATOPS_HTTP_HOST="127.0.0.1")
    refused(code, err, command, f"KAFKA_CHATOPS_HTTP_HOST/KAFKA_CHATOPS_HTTP_PORT 127.0.0.1:{port}",
            "address already in use")


def test_demo_checks_its_settings_before_starting_a_sandbox(start: Start, files: Path) -> None:
    """A bad setting, or a sandbox name that cannot be one: refused before anything starts.
    (--brokers 0: were the check missing, the sandbox would refuse at once instead of starting brokers.)"""
    code, err = start(["demo", "--brokers", "0"], KAFKA_CHATOPS_LEASE_TTL="abc")
    refused(code, err, "demo", "KAFKA_CHATOPS_LEASE_TTL='abc' is not valid")
    code, err = start(["demo", "--name", "Prod_1", "--brokers", "0"])
    refused(code, err, "demo", "sandbox name 'Prod_1' is not valid")
    assert not (files / "sb").exists(), "a sandbox was started"


@pytest.fixture
def process_env(files: Path) -> Iterator[dict[str, str]]:
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("SLACK_", "REDIS_", "KAFKA_CHATOPS_", "KUBECONFIG"))}
    yield {**keep, "KAFKA_CHATOPS_CONFIG": str(files / "clusters.yaml"), "KUBECONFIG": str(files / "kubeconfig"),
           "KAFKA_CHATOPS_SANDBOX_HOME": str(files / "sb")}


@pytest.mark.parametrize(("argv", "settings", "expected"), [
    (["console"], {"REDIS_URL": "redis://127.0.0.1:{port}/0"}, "REDIS_URL redis://127.0.0.1:{port}/0"),
    (["run"], {"KAFKA_CHATOPS_LEASE_TTL": "abc", "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": "xapp-1-A-1-t"},
     "KAFKA_CHATOPS_LEASE_TTL='abc' is not valid"),
    (["demo", "--brokers", "0"], {"KAFKA_CHATOPS_LEASE_TTL": "abc"}, "KAFKA_CHATOPS_LEASE_TTL='abc' is not valid"),
])
def test_the_real_process_prints_one_line_and_exits_2(
        process_env: dict[str, str], argv: list[str], settings: dict[str, str], expected: str) -> None:
    """`python -m bot ...` as a user starts it: exactly one line on stderr, exit code 2."""
    port = str(free_port())
    env = {**process_env, **{k: v.replace("{port}", port) for k, v in settings.items()}}
    proc = subprocess.run([sys.executable, "-m", "bot", *argv], env=env, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == proc.stderr.strip().splitlines()[0], proc.stderr
    assert proc.stderr.startswith(f"kafka-chatops {argv[0]}: cannot start: ")
    assert expected.replace("{port}", port) in proc.stderr
