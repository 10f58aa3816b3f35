"""The Sentinel form of ``REDIS_URL``, read in our words (never echoing a password).

``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/master-name[/db]`` names the
Sentinels to ask (port 26379 by default), the master group they watch, and the database.
``rediss+sentinel://`` speaks TLS to the Sentinels and to the Redis servers alike. The password in
the URL (or ``REDIS_PASSWORD_FILE``) is the Redis servers'; Sentinels that require their own password
get it from ``REDIS_SENTINEL_PASSWORD_FILE``.

One URL rather than separate ``REDIS_SENTINELS``/``REDIS_SENTINEL_MASTER`` settings: the whole Redis
address stays one value in one Secret key (as a plain ``redis://`` URL is), so switching a
deployment between a single Redis and Sentinel changes one setting, never a combination of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
SENTINEL_URL_FORM = ("redis+sentinel://[:password@]host:26379,host2:26379/master-name/db "
                     "(rediss+sentinel://… for TLS)")
DEFAULT_SENTINEL_PORT = 26379
# Query options that only make sense for TLS; the rest of redis-py's URL options are not needed
# with Sentinel, and an unknown one is refused rather than silently ignored.
TLS_OPTIONS = frozenset({"ssl_ca_certs", "ssl_cert_reqs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname"})
_CERT_REQS = frozenset({"none", "optional", "required"})
_MASTER_NAME = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)$")


class SentinelUrlError(ValueError):
    """A malformed Sentinel URL: the message says what, and never includes the password."""


@dataclass(frozen=True)
class SentinelTarget:
    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_options: dict[str, str | bool] = field(default_factory=dict)

    def describe(self) -> str:
        """``master mymaster via Sentinel h1:26379,h2:26379``, for messages."""
        hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
        return f"master {self.master!r} via Sentinel {hosts}"


def is_sentinel_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in SENTINEL_SCHEMES


def parse_sentinel_url(url: str) -> SentinelTarget:
    """The Sentinels, master name, database and options of ``url``; SentinelUrlError saying what is wrong."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SENTINEL_SCHEMES:
        raise SentinelUrlError(f"the scheme is not one of {', '.join(SENTINEL_SCHEMES)}")
    authority, _, path_and_query = rest.partition("/")
    path, _, query = path_and_query.partition("?")
    userinfo, at, hostlist = authority.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = (unquote(user) or None) if colon else None
        password = unquote(secret if colon else user) or None
    sentinels = tuple(_sentinel_address(part) for part in hostlist.split(","))
    segments = path.split("/") if path else []
    if not segments or not segments[0]:
        raise SentinelUrlError("it names no master: put the master group's name after the hosts (…:26379/mymaster)")
    if len(segments) > 2:
        raise SentinelUrlError("its path has more than a master name and a database (/mymaster/0)")
    master = unquote(segments[0])
    if not _MASTER_NAME.match(master):
        raise SentinelUrlError(f"the master name {master[:40]!r} is not a Sentinel master name "
                               "(letters, digits, '.', '_' and '-')")
    db_text = segments[1] if len(segments) == 2 else "0"
    if not db_text.isdigit():
        raise SentinelUrlError(f"the database {db_text[:20]!r} is not a number")
    tls = scheme.lower() == "rediss+sentinel"
    return SentinelTarget(sentinels=sentinels, master=master, db=int(db_text), tls=tls, username=username,
                          password=password, tls_options=_tls_options(query, tls=tls))


def _sentinel_address(part: str) -> tuple[str, int]:
    if not part:
        raise SentinelUrlError("it names no Sentinel host (or has an empty one between commas)")
    if part.startswith("["):  # [::1]:26379
        host, _, port_text = part[1:].partition("]")
        port_text = port_text.removeprefix(":")
        host = f"[{host}]"
    else:
        host, _, port_text = part.partition(":")
    if not _HOST.match(host):
        raise SentinelUrlError(f"the Sentinel host {host[:60]!r} is not a host name or address")
    if not port_text:
        return host.strip("[]"), DEFAULT_SENTINEL_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SentinelUrlError(f"the Sentinel port of {host[:60]} ({port_text[:10]!r}) is not a port from 1 to 65535")
    return host.strip("[]"), int(port_text)


def _tls_options(query: str, *, tls: bool) -> dict[str, str | bool]:
    options: dict[str, str | bool] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name not in TLS_OPTIONS:
            raise SentinelUrlError(f"the option {name[:40]!r} is not one the bot reads from a Sentinel URL "
                                   f"(it takes {', '.join(sorted(TLS_OPTIONS))}, with rediss+sentinel://)")
        if not tls:
            raise SentinelUrlError(f"{name} is a TLS option: use rediss+sentinel:// to speak TLS")
        if name == "ssl_cert_reqs" and value not in _CERT_REQS:
            raise SentinelUrlError(f"ssl_cert_reqs={value[:20]!r}: give none, optional or required")
        if name == "ssl_check_hostname":
            if value.lower() not in ("true", "false", "1", "0"):
                raise SentinelUrlError(f"ssl_check_hostname={value[:20]!r}: give true or false")
            options[name] = value.lower() in ("true", "1")
        else:
            options[name] = value
    return options
