"""The stored lag report (issue #17 §3: the report other replicas read, written compactly): the
compact form ``lag_document`` writes reads back into the models' report and is a fraction of its
size; a report in the models' form (an older replica's, or a failed poll's) still reads; a
document this bot cannot read is refused saying why."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from handlers.alerting.lag_document import lag_document
from handlers.alerting.lag_models import GroupLag, LagReport, PartitionLag, SecondsFrom
from handlers.alerting.lag_poll import LagPoller
from handlers.ports import ConsumerGroup, GroupMember
from runbooks.alerting.lifecycle import LagRule
from tests.fakes.alerts import FakeClock, FakeLagReader, cluster

pytestmark = pytest.mark.timeout(20)
BOOTSTRAP = "k:9092"


async def a_snapshot_of_many_pairs() -> tuple[LagReport, str]:
    """20 groups reading 2 topics of 50 partitions each, half of them behind, members holding them."""
    reader, clock = FakeLagReader(), FakeClock()
    topics = [f"orders-{t}" for t in range(4)]
    for g in range(20):
        reads = [topics[g % 4], topics[(g + 1) % 4]]
        member = GroupMember(member_id=f"consumer-{g}-0f3e", client_id=f"app-{g}", host=f"/10.0.0.{g}",
                             partitions=tuple((t, p) for t in reads for p in range(50)))
        reader.groups.append(ConsumerGroup(group=f"group-{g}", state="Stable", members=(member,)))
        reader.commits[f"group-{g}"] = {t: {p: 1_000_000 - (g % 2) * (300 + p) for p in range(50)} for t in reads}
    reader.ends = {(t, p): (0, 1_000_000) for t in topics for p in range(50)}
    reader.timestamps = {(t, p, 1_000_000 - 300 - p): int((clock.now().timestamp() - 90) * 1000)
                         for t in topics for p in range(50)}
    poller = LagPoller(reader, clock)
    await poller.measure(cluster(), BOOTSTRAP, LagRule())
    clock.advance(1)
    snapshot = await poller.measure(cluster(), BOOTSTRAP, LagRule())
    return snapshot.report(), lag_document(snapshot).text


async def test_the_compact_document_reads_back_as_the_report_at_a_fifth_of_its_size() -> None:
    report, text = await a_snapshot_of_many_pairs()
    assert sum(len(g.partitions) for g in report.groups) == 2_000
    assert {p.seconds_from for g in report.groups for p in g.partitions} == {SecondsFrom.CAUGHT_UP,
                                                                             SecondsFrom.RECORD}
    assert LagReport.model_validate_json(text) == report
    assert json.loads(text)["format"] == 2
    assert len(text) * 5 < len(report.model_dump_json())


def test_a_report_in_the_models_form_still_reads() -> None:
    """What replicas before the compact form stored (and what a failed poll stores): no ``format``."""
    member = GroupMember(member_id="m-1", client_id="app", host="/10.0.0.1", partitions=(("t", 0),))
    report = LagReport(cluster="prod", taken_at="2026-12-07T12:00:00Z", poll_seconds=0.5, groups=(GroupLag(
        group="g", state="Stable", members=(member,), partitions=(PartitionLag(
            topic="t", partition=0, committed=5, end=9, lag=4, seconds=2.5, seconds_from=SecondsFrom.TABLE,
            member_id="m-1", client_id="app", host="/10.0.0.1"),)),), log_offsets={"t": {0: (1, 9)}})
    assert LagReport.model_validate_json(report.model_dump_json()) == report


def test_a_document_of_a_format_this_bot_does_not_know_is_refused_saying_so() -> None:
    with pytest.raises(ValidationError, match="lag report format 3 is not one this bot reads"):
        LagReport.model_validate_json('{"format":3,"cluster":"prod","taken_at":"2026-12-07T12:00:00Z",'
                                      '"poll_seconds":0.1,"groups":[]}')


def test_a_compact_document_whose_columns_do_not_match_is_refused() -> None:
    """Two partitions, one committed offset: nothing is guessed."""
    text = ('{"format":2,"cluster":"prod","taken_at":"2026-12-07T12:00:00Z","poll_seconds":0.1,"groups":[{'
            '"group":"g","state":"Stable","simple_consumer":false,"members":[],"topics":{"t":{'
            '"partitions":[0,1],"committed":[5],"seconds":[1.0,2.0],"seconds_from":"tt"}},"error":null}],'
            '"log_offsets":{"t":{"0":[0,9],"1":[0,9]}},"error":null}')
    with pytest.raises(ValidationError, match="do not match"):
        LagReport.model_validate_json(text)
