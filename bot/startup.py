"""What every front end (``run``, ``console``, ``demo``) checks before it connects anywhere, and how
a start-up problem is reported: one message naming the setting, what was wrong and what is valid,
exit code 2, no traceback.

Values are shown where they cannot be secrets (numbers, switches, paths, Redis URLs with their
password masked); Slack tokens and the signing secret are named, never shown.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from redis.connection import parse_url

from bot.config.kube_targets import KUBECONFIG_FORM, KubeTarget
from bot.config.settings import ConfigError, Settings
from bot.config.yaml_files import YamlFileError, kind_of, read_yaml
from bot.observability.logs import log_settings_problem
from bot.store import (
    SentinelUnavailable,
    StoreError,
    StoreUnavailable,
    UnknownSentinelMaster,
    redact_url,
)
from bot.store.sentinel_url import SENTINEL_URL_FORM, SentinelUrlError, is_sentinel_url, parse_sentinel_url

# What each environment setting takes, said when its value is refused.
SETTING_RULES = {
    "kafka_chatops_lease_ttl": "a number of seconds above 0.5 and at most 3600 (how long a replica's claim on a run "
                               "lasts without renewal; default 10)",
    "kafka_chatops_poll_interval": "a number of seconds above 0 and at most 60 (how often a running step is "
                                   "checked; default 0.5)",
    "kafka_chatops_rebalance_poll_interval": "a number of seconds from 1 to 300 (how often the KafkaRebalance "
                                             "cards look at their resources; default 10)",
    "kafka_chatops_watch_timeout": "a whole number of seconds from 1 to 3600 (how long a Kubernetes watch lasts "
                                   "before it resumes; default 60)",
    "kafka_chatops_http_port": "the port of /healthz, /readyz and /metrics: 0 to 65535 (0: any free port), or unset "
                               "for no server",
    "kafka_chatops_monitors": "true or false (also 1/0, yes/no, on/off; default true)",
    "redis_wait_replicas": "a whole number of replicas from 0 to 10 that must confirm each run write before the "
                           "bot acts on it (0: do not wait; default 0)",
    "redis_wait_timeout_ms": "a whole number of milliseconds from 1 to 60000 (how long a run write waits for "
                             "REDIS_WAIT_REPLICAS; default 500)",
    "kafka_chatops_lag_stream": "true or false (also 1/0, yes/no, on/off; default true: committed offsets streamed "
                                "from __consumer_offsets; false: the admin API only)",
}
SECRET_SETTINGS = frozenset({"slack_bot_token", "slack_app_token", "slack_signing_secret"})
REDIS_URL_FORMS = ("redis://[:password@]host:port/db, rediss://…, unix:///path/to/redis.sock, or "
                   f"{SENTINEL_URL_FORM}")


def refuse(command: str, exc: BaseException | str) -> int:
    """Print the start-up problem the way every command does, and give the exit code for it."""
    print(f"kafka-chatops {command}: cannot start: {exc}", file=sys.stderr)
    return 2


def load_settings(**values: Any) -> Settings:
    """The settings from the environment (``values`` win); ConfigError naming each malformed one."""
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError.of([_setting_problem(error) for error in exc.errors()]) from None


def _setting_problem(error: Any) -> str:
    field = str(error["loc"][0]) if error["loc"] else ""
    name = field.upper()
    if field not in SECRET_SETTINGS:
        value = str(error["input"])
        name += f"={value[:40] + '…' if len(value) > 40 else value!r}"
    return f"{name} is not valid: give {SETTING_RULES.get(field, error['msg'])}"


def check_settings(settings: Settings) -> None:
    """ConfigError naming every problem with what every front end needs, before anything connects."""
    problems = settings_problems(settings)
    if problems:
        raise ConfigError.of(problems)


def settings_problems(settings: Settings) -> list[str]:
    problems = []
    if not settings.kafka_chatops_config:
        problems.append("KAFKA_CHATOPS_CONFIG is not set: point it at the clusters YAML file")
    for problem in (redis_url_problem(settings.redis_url), *redis_password_problems(settings),
                    kubeconfig_problem(settings.kubeconfig),
                    log_settings_problem(settings.kafka_chatops_log_format, settings.log_level)):
        if problem is not None:
            problems.append(problem)
    return problems


def redis_url_problem(url: str) -> str | None:
    shown = redact_url(url)
    if is_sentinel_url(url):
        try:
            parse_sentinel_url(url)
        except SentinelUrlError as exc:
            return f"REDIS_URL {shown} is not a valid Sentinel URL: {exc}: give {SENTINEL_URL_FORM}"
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return f"REDIS_URL {shown} is malformed: give {REDIS_URL_FORMS}"
    if parts.scheme not in ("redis", "rediss", "unix"):
        return (f"REDIS_URL {shown} is not a URL of a Redis server or Sentinel the bot can use (Redis Cluster "
                f"is not supported): give {REDIS_URL_FORMS}")
    database = parts.path.strip("/") if parts.scheme != "unix" else ""
    try:
        parse_url(url)  # type: ignore[no-untyped-call]
        # redis-py reads redis://host/abc as database 0: the bot would share someone else's data
        malformed = bool(database) and not database.isdigit()
    except ValueError:  # redis-py's reason may quote parts of the URL: said in our words instead
        malformed = True
    if malformed:
        return f"REDIS_URL {shown} is malformed (its port or database is not a number?): give {REDIS_URL_FORMS}"
    return None


def redis_password_problems(settings: Settings) -> list[str]:
    """What is wrong with REDIS_PASSWORD_FILE / REDIS_SENTINEL_PASSWORD_FILE (never their content)."""
    problems = []
    for setting, path in (("REDIS_PASSWORD_FILE", settings.redis_password_file),
                          ("REDIS_SENTINEL_PASSWORD_FILE", settings.redis_sentinel_password_file)):
        try:
            read_secret_file(setting, path)
        except ConfigError as exc:
            problems.append(str(exc))
    if settings.redis_password_file and _url_has_password(settings.redis_url):
        problems.append(f"REDIS_URL {redact_url(settings.redis_url)} has a password and REDIS_PASSWORD_FILE names "
                        "another: give the password in one place (the file, with a URL without one)")
    return problems


def read_secret_file(setting: str, path: str | None, what: str = "the password") -> str | None:
    """The secret in the file ``path`` (one trailing newline dropped, as ``echo`` and editors add),
    None when the setting is unset; ConfigError naming the setting otherwise."""
    if not path:
        return None
    try:
        value = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = "does not exist" if isinstance(exc, FileNotFoundError) else f"cannot be read ({type(exc).__name__})"
        raise ConfigError(f"{setting} {path} {why}: point it at a file holding {what}, as a Kubernetes "
                          "Secret mounts it") from None
    value = value.removesuffix("\n").removesuffix("\r")
    if not value or "\n" in value:
        raise ConfigError(f"{setting} {path} is {'empty' if not value else 'more than one line'}: "
                          f"the file must hold {what} alone")
    return value


def secret_setting(setting: str, value: str | None, path: str | None, what: str) -> str | None:
    """A secret given as ``SETTING`` or as ``SETTING_FILE`` (a mounted Secret), never both: two
    places that can disagree would leave the reader guessing which one the bot used."""
    if not path:
        return value
    if value:
        raise ConfigError(f"{setting} and {setting}_FILE are both set: give {what} in one place")
    return read_secret_file(f"{setting}_FILE", path, what)


def _url_has_password(url: str) -> bool:
    if is_sentinel_url(url):
        try:
            return parse_sentinel_url(url).password is not None
        except SentinelUrlError:
            return False
    try:
        return urlsplit(url).password is not None
    except ValueError:
        return False


def redis_problem(url: str, exc: StoreError) -> str:
    """A Redis (or its Sentinels) that does not answer, or answers no, at start."""
    shown = redact_url(url)
    if isinstance(exc, SentinelUnavailable) and "Authentication" in str(exc):
        return (f"REDIS_URL {shown}: the Sentinels refused the bot ({exc}): give their password in the file "
                "REDIS_SENTINEL_PASSWORD_FILE names")
    if isinstance(exc, SentinelUnavailable):
        return (f"REDIS_URL {shown}: {exc}: check the Sentinel hosts and ports (26379 by default), or point "
                "REDIS_URL at Sentinels that run")
    if isinstance(exc, UnknownSentinelMaster):
        return (f"REDIS_URL {shown}: {exc}: give the master name the Sentinels monitor (`sentinel monitor <name> …` "
                "in their configuration) after the hosts")
    cause = type(exc.__cause__).__name__ if exc.__cause__ is not None else type(exc).__name__
    if "Authentication" in cause:
        return (f"REDIS_URL {shown}: Redis refused the password ({cause}): give the password in the URL "
                f"(redis://:password@host:port/db) or in the file REDIS_PASSWORD_FILE names")
    if isinstance(exc, StoreUnavailable):
        return (f"REDIS_URL {shown}: Redis does not answer ({cause}): start Redis or point REDIS_URL at a "
                "running one")
    return f"REDIS_URL {shown}: Redis refused the bot: {exc}"


def kubeconfig_problem(value: str | None) -> str | None:
    """What is wrong with the file(s) KUBECONFIG names, if anything the loader would trip over.
    Like kubectl, a list of paths (``a:b``) may name files that do not exist, but not only those."""
    if not value:
        return None  # in-cluster config, or ~/.kube/config: the loader says what it found
    found = False
    for path in (p for p in value.split(os.pathsep) if p):
        file = Path(path).expanduser()
        if not file.exists() and os.pathsep in value:
            continue
        try:
            data = read_yaml(file, name=f"KUBECONFIG {path}", valid=KUBECONFIG_FORM, unique_keys=False)
        except YamlFileError as exc:
            return str(exc)
        if not isinstance(data, dict):
            return f"KUBECONFIG {path} is not a kubeconfig (its top level is {kind_of(data)}): give {KUBECONFIG_FORM}"
        found = True
    return None if found else f"KUBECONFIG {value} names no file that exists: give {KUBECONFIG_FORM}"


def kubeconfig_load_problem(value: str | None, exc: BaseException) -> str:
    """The Kubernetes client could not load the config: its reason, with the setting named."""
    cause = exc.__cause__ or exc
    reason = str(cause).strip() or type(cause).__name__
    reason = reason if len(reason) <= 200 else reason[:200] + "…"
    if not value:
        return (f"KUBECONFIG is not set, and there is neither an in-cluster service account nor a ~/.kube/config "
                f"({reason}): point KUBECONFIG at {KUBECONFIG_FORM}")
    return f"KUBECONFIG {value} cannot be used ({type(cause).__name__}: {reason}): give {KUBECONFIG_FORM}"


def kube_load_problem(target: KubeTarget, exc: BaseException) -> str:
    """A cluster's own kubeconfig/context that the Kubernetes client could not load."""
    cause = exc.__cause__ or exc
    reason = str(cause).strip() or type(cause).__name__
    reason = reason if len(reason) <= 200 else reason[:200] + "…"
    return (f"kubeconfig {target.kubeconfig} context {target.context} cannot be used ({type(cause).__name__}: "
            f"{reason}): give {KUBECONFIG_FORM}")
