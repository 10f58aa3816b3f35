"""``/metrics``' lag families streamed from the stored reports' JSON (``lag_exposition``): the same
text ``add_lag_report`` gives from the models, for the compact form the monitor stores and the
models' form an older replica stored, several clusters in one scrape; a document that does not
hold together is refused before anything is written."""

from __future__ import annotations

import json

import pytest

from bot.observability.metrics import Exposition, add_lag_report, checked_lag_document, lag_exposition
from handlers.alerting.lag_document import lag_document
from handlers.alerting.lag_models import LagReport, SecondsFrom
from handlers.alerting.lag_poll import LagPoller
from handlers.ports import ConsumerGroup, GroupMember
from runbooks.alerting.lifecycle import LagRule
from tests.fakes.alerts import FakeClock, FakeLagReader, cluster

pytestmark = pytest.mark.timeout(20)


async def a_polled_cluster(name: str) -> tuple[LagReport, str]:
    """Names needing escapes, a member, an unreadable group, seconds from the table, a record and unknown."""
    reader, clock = FakeLagReader(), FakeClock()
    member = GroupMember(member_id="m-1", client_id='cli "ent"', host="/10.0.0.1", partitions=(("t\\ü", 0),))
    reader.groups = [ConsumerGroup(group="a\nb", state="Stable", members=(member,)),
                     ConsumerGroup(group="simple", state="Empty", protocol_type=""),
                     ConsumerGroup(group="broken", state="Unknown")]
    reader.commits = {"a\nb": {"t\\ü": {0: 50, 1: 10}, "u": {0: 7}}, "simple": {"t\\ü": {0: 100, 1: 3}},
                      "broken": "CoordinatorNotAvailable"}
    reader.ends = {("t\\ü", 0): (0, 100), ("t\\ü", 1): (2, 20), ("u", 0): (0, 7)}
    reader.timestamps = {("t\\ü", 0, 50): int((clock.now().timestamp() - 30) * 1000)}
    poller = LagPoller(reader, clock)
    await poller.measure(cluster(name), "k:9092", LagRule())
    clock.advance(5)
    reader.ends = {("t\\ü", 0): (0, 110), ("t\\ü", 1): (2, 40), ("u", 0): (0, 7)}
    reader.commits["simple"] = {"t\\ü": {0: 105, 1: 30}}
    snapshot = await poller.measure(cluster(name), "k:9092", LagRule())
    return snapshot.report(), lag_document(snapshot).text


async def test_the_streamed_lag_families_are_the_models_text_for_both_forms_and_clusters() -> None:
    east, east_text = await a_polled_cluster("east")
    west, _ = await a_polled_cluster("west")
    assert {p.seconds_from for g in east.groups for p in g.partitions} == set(SecondsFrom)
    out = Exposition()
    add_lag_report(out, east)
    add_lag_report(out, west)
    documents = [checked_lag_document(json.loads(east_text)),  # compact, as the monitor stores it
                 checked_lag_document(json.loads(west.model_dump_json()))]  # an older replica's
    streamed = "".join(lag_exposition(documents, chunk_chars=100))
    assert streamed == out.text()
    assert 'kafka_consumergroup_group_lag_seconds{cluster_name="east",group="simple"' in streamed


def test_no_report_gives_no_lag_family() -> None:
    assert list(lag_exposition([])) == []


def test_a_document_that_does_not_hold_together_is_refused_before_it_is_streamed() -> None:
    text = ('{"format":2,"cluster":"prod","taken_at":"2026-12-07T12:00:00Z","poll_seconds":0.1,"groups":[{'
            '"group":"g","state":"Stable","simple_consumer":false,"members":[],"topics":{"t":{'
            '"partitions":[0,1],"committed":[5],"seconds":[1.0,2.0],"seconds_from":"tt"}},"error":null}],'
            '"log_offsets":{"t":{"0":[0,9],"1":[0,9]}},"error":null}')
    with pytest.raises(ValueError, match="shorter"):
        checked_lag_document(json.loads(text))
    with pytest.raises(ValueError, match="format 3 is not one this bot reads"):
        checked_lag_document({"format": 3, "cluster": "prod"})
