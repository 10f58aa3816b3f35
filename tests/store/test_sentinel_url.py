"""The Sentinel form of REDIS_URL read as the store connects with it, and shown without its password."""

from __future__ import annotations

import pytest

from bot.store import redact_url
from bot.store.sentinel_url import SentinelUrlError, is_sentinel_url, parse_sentinel_url


def test_hosts_master_database_and_password_are_read() -> None:
    target = parse_sentinel_url("redis+sentinel://:p%40ss@s1.example:26380,s2.example,[::1]:26381/mymaster/3")
    assert target.sentinels == (("s1.example", 26380), ("s2.example", 26379), ("::1", 26381))
    assert (target.master, target.db, target.tls, target.username, target.password) == \
        ("mymaster", 3, False, None, "p@ss")
    assert "p@ss" not in repr(target)


def test_the_database_defaults_to_0_and_a_user_is_kept() -> None:
    target = parse_sentinel_url("redis+sentinel://bot:pw@s1:26379/mymaster")
    assert (target.db, target.username, target.password) == (0, "bot", "pw")


def test_tls_takes_certificate_options() -> None:
    target = parse_sentinel_url("rediss+sentinel://s1/mymaster/0?ssl_ca_certs=/ca.pem&ssl_cert_reqs=required"
                                "&ssl_check_hostname=false")
    assert target.tls
    assert target.tls_options == {"ssl_ca_certs": "/ca.pem", "ssl_cert_reqs": "required", "ssl_check_hostname": False}


@pytest.mark.parametrize("url", ["redis://h:6379/0", "rediss://h/0", "unix:///tmp/r.sock", "sentinel://h/m"])
def test_other_urls_are_not_sentinel_urls(url: str) -> None:
    assert not is_sentinel_url(url)
    with pytest.raises(SentinelUrlError):
        parse_sentinel_url(url)


def test_a_port_out_of_range_is_refused_in_our_words() -> None:
    with pytest.raises(SentinelUrlError) as refused:
        parse_sentinel_url("redis+sentinel://:secret@h:70000/mymaster")
    assert "is not a port from 1 to 65535" in str(refused.value) and "secret" not in str(refused.value)


def test_the_password_is_masked_when_shown() -> None:
    shown = redact_url("redis+sentinel://:hunter2@s1:26379,s2:26379/mymaster/0")
    assert shown == "redis+sentinel://:***@s1:26379,s2:26379/mymaster/0"
