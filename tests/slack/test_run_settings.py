"""``kafka-chatops run`` refuses to start on missing or malformed settings, naming each one and
never echoing a token or secret."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bot.config.settings import ConfigError, Settings
from bot.slack.app import api_base_url
from bot.slack.run import check_settings
from tests.slack.bot_server import PROJECT_ROOT, bot_env, run_command
from tests.slack.payloads import APP_TOKEN, BOT_TOKEN, SIGNING_SECRET

BASE = {"kafka_chatops_config": "/etc/kafka-chatops/clusters.yaml", "redis_url": "redis://127.0.0.1:6379/0"}


def problems(http: bool, **values: str | None) -> str:
    with pytest.raises(ConfigError) as caught:
        check_settings(Settings(**{**BASE, **values}), http=http)
    return str(caught.value)


def test_socket_mode_settings_are_accepted() -> None:
    """A bot token and an app token are all Socket Mode needs."""
    slack = check_settings(Settings(**BASE, slack_bot_token=BOT_TOKEN, slack_app_token=APP_TOKEN), http=False)
    assert slack.app_token == APP_TOKEN and not slack.http


def test_http_settings_are_accepted() -> None:
    """--http needs the signing secret instead of the app token."""
    slack = check_settings(Settings(**BASE, slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET), http=True)
    assert slack.signing_secret == SIGNING_SECRET and slack.http


def test_every_missing_setting_is_named_at_once() -> None:
    """Nothing set: the bot token, the app token (or --http) and the clusters file are all named."""
    text = problems(False, kafka_chatops_config=None)
    for setting in ("SLACK_BOT_TOKEN is not set", "SLACK_APP_TOKEN is not set", "KAFKA_CHATOPS_CONFIG is not set"):
        assert setting in text


def test_malformed_settings_are_named_without_their_values() -> None:
    """A user token as bot token, a bot token as app token, a bad URL: each named, no value echoed."""
    user_token = "xoxp-9999-secret-value"
    text = problems(False, slack_bot_token=user_token, slack_app_token=BOT_TOKEN, slack_api_url="slack.com/api",
                    redis_url="http://127.0.0.1:6379")
    assert "SLACK_BOT_TOKEN does not start with xoxb-" in text
    assert "SLACK_APP_TOKEN does not start with xapp-" in text
    assert "SLACK_API_URL is not an http(s) URL" in text and "REDIS_URL" in text
    assert user_token not in text and BOT_TOKEN not in text


def test_http_mode_needs_a_well_formed_signing_secret() -> None:
    """--http without a signing secret, or with one that cannot be Slack's, does not start."""
    assert "SLACK_SIGNING_SECRET is not set" in problems(True, slack_bot_token=BOT_TOKEN)
    text = problems(True, slack_bot_token=BOT_TOKEN, slack_signing_secret="short secret")
    assert "SLACK_SIGNING_SECRET is malformed" in text and "short secret" not in text


@pytest.mark.timeout(10)
@pytest.mark.parametrize("given", [["--processes", "2"], ["--processes=1"], ["--processes"], ["--processes", "x"]])
def test_the_retired_processes_option_is_refused_with_what_to_do_instead(
        given: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """`run --processes` (any value, or none) no longer exists: exit 2 before anything is read or
    started, saying that the option is gone and how to start the bot instead."""
    from bot.cli import main

    assert main(["run", "--http", *given]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kafka-chatops run: cannot start: --processes is no longer an option: the bot answers "
                          "Slack from one process"), err
    assert "Start it without --processes: `kafka-chatops run [--http] [--port P] [--host H]`" in err
    assert "run more replicas" in err


def test_the_real_command_refuses_processes_and_starts_nothing(tmp_path: Path) -> None:
    """Settings that would start the bot, plus --processes 2: exit 2 with the reason, nothing served."""
    env = bot_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                  KAFKA_CHATOPS_CONFIG=str(tmp_path / "c.yaml"))
    proc = subprocess.run([*run_command(), "--http", "--processes", "2"], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--processes is no longer an option" in proc.stderr
    assert "serving Slack" not in proc.stderr + proc.stdout


def test_api_url_gets_the_trailing_slash_the_sdk_needs() -> None:
    """SLACK_API_URL may be given with or without the trailing slash."""
    assert api_base_url("http://127.0.0.1:8888/api") == "http://127.0.0.1:8888/api/"
    assert api_base_url(None) == "https://slack.com/api/"


def test_the_real_command_exits_2_and_names_the_problems(tmp_path: Path) -> None:
    """`python -m bot run --http` with a user token and no secret exits 2, says why, and echoes no token."""
    env = bot_env(SLACK_BOT_TOKEN="xoxp-1234-do-not-print", KAFKA_CHATOPS_CONFIG=str(tmp_path / "c.yaml"))
    proc = subprocess.run([*run_command(), "--http"], env=env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "SLACK_BOT_TOKEN does not start with xoxb-" in proc.stderr
    assert "SLACK_SIGNING_SECRET is not set" in proc.stderr
    assert "do-not-print" not in proc.stderr + proc.stdout


def test_an_api_url_python_cannot_even_split_is_named() -> None:
    """A bracket left open, a port out of range: named like any other bad URL, not a ValueError."""
    for url in ("http://[bad/api", "http://127.0.0.1:99999/api"):
        text = problems(False, slack_bot_token=BOT_TOKEN, slack_app_token=APP_TOKEN, slack_api_url=url)
        assert "SLACK_API_URL is not an http(s) URL" in text, url


def test_tokens_with_characters_no_slack_token_has_are_named_without_their_values() -> None:
    """A token pasted with a non-ASCII character or an inner space would fail inside the HTTP client."""
    text = problems(False, slack_bot_token="xoxb-12€4", slack_app_token="xapp-1 2")
    assert "SLACK_BOT_TOKEN has characters no Slack token has" in text
    assert "SLACK_APP_TOKEN has characters no Slack token has" in text
    assert "12€4" not in text and "xapp-1 2" not in text
    text = problems(True, slack_bot_token=BOT_TOKEN, slack_signing_secret="é" * 32)
    assert "SLACK_SIGNING_SECRET is malformed" in text


def test_the_real_command_names_the_settings_it_cannot_read(tmp_path: Path) -> None:
    """A lease TTL that is not a number: exit 2, the setting and what is valid, no traceback."""
    env = bot_env(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_APP_TOKEN=APP_TOKEN, KAFKA_CHATOPS_CONFIG=str(tmp_path / "c.yaml"),
                  KAFKA_CHATOPS_LEASE_TTL="ten")
    proc = subprocess.run(run_command(), env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "KAFKA_CHATOPS_LEASE_TTL='ten' is not valid: give a number of seconds above 0.5" in proc.stderr


def test_tokens_and_secret_are_read_from_files_as_kubernetes_mounts_them(tmp_path: Path) -> None:
    """SLACK_*_FILE: the file's content, one trailing newline dropped, is the token or secret."""
    files = {}
    for name, value in (("bot", BOT_TOKEN), ("app", APP_TOKEN), ("secret", SIGNING_SECRET)):
        files[name] = tmp_path / name
        files[name].write_text(value + "\n")
    socket = check_settings(Settings(**BASE, slack_bot_token_file=str(files["bot"]),
                                     slack_app_token_file=str(files["app"])), http=False)
    assert (socket.bot_token, socket.app_token) == (BOT_TOKEN, APP_TOKEN)
    http = check_settings(Settings(**BASE, slack_bot_token_file=str(files["bot"]),
                                   slack_signing_secret_file=str(files["secret"])), http=True)
    assert http.signing_secret == SIGNING_SECRET


def test_a_secret_file_missing_empty_or_given_twice_is_named_once_without_its_content(tmp_path: Path) -> None:
    """Each problem names the setting and what is valid; nothing else is said about that setting."""
    empty, token = tmp_path / "empty", tmp_path / "token"
    empty.write_text("\n")
    token.write_text(BOT_TOKEN)
    text = problems(False, slack_bot_token_file=str(tmp_path / "missing"), slack_app_token_file=str(empty))
    assert f"SLACK_BOT_TOKEN_FILE {tmp_path / 'missing'} does not exist: point it at a file holding the bot " \
           "token, as a Kubernetes Secret mounts it" in text
    assert f"SLACK_APP_TOKEN_FILE {empty} is empty: the file must hold the app-level token alone" in text
    assert "SLACK_BOT_TOKEN is not set" not in text and "SLACK_APP_TOKEN is not set" not in text
    text = problems(True, slack_bot_token=BOT_TOKEN, slack_bot_token_file=str(token),
                    slack_signing_secret=SIGNING_SECRET)
    assert text == "SLACK_BOT_TOKEN and SLACK_BOT_TOKEN_FILE are both set: give the bot token in one place"
    assert BOT_TOKEN not in text
