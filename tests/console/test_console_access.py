"""Who may ask for what, and where, through the console: the console user is judged like any
other id, and the console is the place `console`, which a cluster bound to channels must list.
Real Redis and engine (``fake_runtime``), a fake cluster at the ports."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.console.console import Console
from handlers.clusters import ManagedCluster
from runbooks.engine.access import CONSOLE, AccessPolicy, People
from tests.fakes.cluster import FakeCluster, managed
from tests.fixtures.fake_runtime import close_runtime, fake_runtime

pytestmark = pytest.mark.timeout(30)

USER, OUTSIDER = "console:ana", "console:bob"


def clusters(**access: object) -> dict[str, ManagedCluster]:
    policy = AccessPolicy(requesters=People(users=(USER,)), **access)  # type: ignore[arg-type]
    return {"prod": managed("prod").model_copy(update={"access": policy})}


async def typed(redis_url: str, clusters: dict[str, ManagedCluster], user: str, *lines: str) -> list[dict[str, object]]:
    fake = FakeCluster()
    runtime = await fake_runtime(redis_url, clusters, fake)
    out = io.StringIO()
    try:
        console = Console(runtime, user=user, json_mode=True, out=out)
        for line in lines:
            await console.handle(line)
    finally:
        await close_runtime(runtime)
    assert fake.rolls == {}
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_a_cluster_bound_to_slack_channels_refuses_the_console_and_audits_it(
        redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="kafka_chatops.audit"):
        replies = await typed(redis_url, clusters(channels=("C0PROD",)), USER, "restart prod", "status prod")
    assert [(r["event"], r["text"]) for r in replies] == [
        ("error", "Commands for prod are taken in #C0PROD only (this was the console).")] * 2
    refused = [r for r in caplog.records if getattr(r, "action", None) == "refused"]
    assert [(r.actor, r.verb, r.channel) for r in refused] == [  # type: ignore[attr-defined]
        (USER, "restart", CONSOLE), (USER, "status", CONSOLE)]


async def test_listing_console_among_the_channels_lets_a_requester_restart_from_it(redis_url: str) -> None:
    replies = await typed(redis_url, clusters(channels=("C0PROD", CONSOLE)), USER, "restart prod --brokers 0")
    assert replies[0]["event"] == "reply" and replies[0].get("run_id"), replies


async def test_a_console_user_who_is_not_a_requester_is_refused(redis_url: str) -> None:
    replies = await typed(redis_url, clusters(), OUTSIDER, "restart prod")
    assert replies == [{"event": "error", "ok": False, "text": "console:bob may not start restart on prod: only "
                        "the requesters of prod (console:ana) may."}]
