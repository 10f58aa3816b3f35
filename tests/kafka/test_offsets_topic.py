"""The ``__consumer_offsets`` decoder and the state it feeds (``bot.kafka.offsets_topic``,
``bot.kafka.offsets_stream.OffsetsState``), on records built to Kafka's documented schemas. The
sandbox tests (tests/alerts/test_offsets_stream.py) check the same code against a broker's bytes."""

from __future__ import annotations

import pytest

from bot.kafka.lag_stream import CommitsCache
from bot.kafka.offsets_stream import OffsetsState
from bot.kafka.offsets_topic import GroupRecord, OffsetCommit, UnknownRecord, decode
from tests.kafka.offsets_records import group_key, group_value, offset_key, offset_value

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("key_kind", [0, 1])
def test_every_offset_commit_value_version_decodes_to_its_offset_and_commit_time(version: int, key_kind: int) -> None:
    key = offset_key("orders-app", "orders", 7, kind=key_kind)
    value = offset_value(1_234_567_890_123, version, metadata="some metadata é", commit_ms=1_700_000_000_000,
                         leader_epoch=5, expire_ms=1_800_000_000_000)
    assert decode(key, value, {}) == OffsetCommit("orders-app", "orders", 7, 1_234_567_890_123, 1_700_000_000_000)


def test_a_long_compact_metadata_string_is_skipped_correctly() -> None:
    # 200 bytes of metadata: its compact length takes two varint bytes
    value = offset_value(42, 4, metadata="m" * 200, commit_ms=99)
    assert decode(offset_key("g", "t", 0), value, {}) == OffsetCommit("g", "t", 0, 42, 99)


def test_an_offset_tombstone_decodes_as_a_deletion() -> None:
    assert decode(offset_key("g", "t", 3), None, {}) == OffsetCommit("g", "t", 3, None)


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4])
def test_classic_group_metadata_gives_its_protocol_type(version: int) -> None:
    assert decode(group_key("g"), group_value("consumer", version), {}) == GroupRecord("g", "consumer")
    assert decode(group_key("g"), None, {}) == GroupRecord("g", None)


def test_a_consumer_protocol_group_is_recognised_and_its_tombstone_too() -> None:
    key = group_key("kip848", kind=3)
    assert decode(key, b"\x00\x00\x00\x00\x00\x01\x00", {}) == GroupRecord("kip848", "consumer", consumer_protocol=True)
    assert decode(key, None, {}) == GroupRecord("kip848", None, consumer_protocol=True)


def test_other_coordinator_records_are_skipped_and_unknown_versions_refused() -> None:
    assert decode(group_key("g", kind=5) + b"member", b"\x00\x00", {}) is None  # a KIP-848 member record
    with pytest.raises(UnknownRecord, match="offset commit value version 9"):
        decode(offset_key("g", "t", 0), b"\x00\x09" + bytes(20), {})


def test_names_are_shared_between_records() -> None:
    names: dict[str, str] = {}
    first = decode(offset_key("group-a", "topic-a", 0), offset_value(1, 3), names)
    second = decode(offset_key("group-a", "topic-a", 1), offset_value(2, 3), names)
    assert isinstance(first, OffsetCommit) and isinstance(second, OffsetCommit)
    assert first.group is second.group and first.topic is second.topic


def test_state_follows_commits_and_tombstones_per_partition() -> None:
    state = OffsetsState()
    state.apply(offset_key("g", "t", 0), offset_value(5, 3))
    state.apply(offset_key("g", "t", 1), offset_value(7, 3))
    state.apply(offset_key("g", "t", 0), offset_value(9, 4))  # a later commit replaces the earlier one
    state.apply(offset_key("h", "u", 0), offset_value(1, 1))
    assert state.offsets == {"g": {"t": {0: 9, 1: 7}}, "h": {"u": {0: 1}}}
    state.apply(offset_key("g", "t", 1), None)  # DeleteOffsets / expiry of one partition
    assert state.group_offsets("g") == {"t": {0: 9}}
    state.apply(offset_key("g", "t", 0), None)  # the group's last offset: the group is gone
    assert "g" not in state.offsets
    assert state.pairs() == 1


def test_a_group_metadata_tombstone_alone_keeps_the_offsets() -> None:
    """Kafka writes one when it converts a classic group to the consumer protocol; the offsets stay."""
    state = OffsetsState()
    state.apply(offset_key("g", "t", 0), offset_value(5, 3))
    state.apply(group_key("g"), None)
    state.apply(group_key("g", kind=3), b"\x00\x00\x00\x00\x00\x01\x00")
    assert state.offsets == {"g": {"t": {0: 5}}}
    assert state.consumer_protocol == {"g"}


def test_a_record_cut_short_or_unknown_is_counted_and_skipped() -> None:
    state = OffsetsState()
    state.apply(offset_key("g", "t", 0), b"\x00\x03\x00")
    state.apply(offset_key("g", "t", 0), b"\x00\x07" + bytes(30))
    state.apply(None, b"")
    assert (state.records, state.skipped, state.offsets) == (3, 3, {})


def test_the_copy_a_poll_reads_does_not_change_under_it() -> None:
    state = OffsetsState()
    state.apply(offset_key("g", "t", 0), offset_value(5, 3))
    copy = state.group_offsets("g")
    state.apply(offset_key("g", "t", 0), offset_value(6, 3))
    state.apply(offset_key("g", "t", 1), offset_value(6, 3))
    assert copy == {"t": {0: 5}}


def test_a_pair_deleted_then_committed_again_is_back_in_the_state() -> None:
    """A known pair's commits take a shortcut to its dict; once the pair is deleted (and its group
    with it) a new commit must land in the state again, not in the dict the group had."""
    state = OffsetsState()
    key = offset_key("g", "t", 0)
    state.apply(key, offset_value(5, 3))
    state.apply(key, offset_value(6, 3))
    state.apply(key, None)
    assert state.offsets == {}
    state.apply(key, offset_value(7, 4))
    state.apply(key, offset_value(8, 2))
    assert state.offsets == {"g": {"t": {0: 8}}}
    state.apply(key, b"\x00\x05" + bytes(30))  # an unknown value version never takes the shortcut
    assert state.offsets == {"g": {"t": {0: 8}}} and state.skipped == 1


def test_the_shortcut_is_one_per_group_topic_and_both_key_versions_lose_it_with_the_group() -> None:
    """The shortcut is keyed by the key without its partition: a commit of another partition of a
    known group-topic takes it too, a partition deleted and committed again is back, and a group
    emptied by tombstones under one key version is not written through the other version's shortcut."""
    state = OffsetsState()
    state.apply(offset_key("g", "t", 0, kind=0), offset_value(5, 3))
    state.apply(offset_key("g", "t", 1, kind=1), offset_value(6, 3))
    state.apply(offset_key("g", "t", 2, kind=0), offset_value(7, 3))
    state.apply(offset_key("g", "t", 2, kind=0), None)
    state.apply(offset_key("g", "t", 2, kind=1), offset_value(9, 3))
    assert state.offsets == {"g": {"t": {0: 5, 1: 6, 2: 9}}}
    for partition in range(3):
        state.apply(offset_key("g", "t", partition, kind=1), None)
    assert state.offsets == {}
    state.apply(offset_key("g", "t", 1, kind=0), offset_value(11, 3))
    assert state.offsets == {"g": {"t": {1: 11}}}
    assert state.group_offsets("g") == {"t": {1: 11}}


def test_a_groups_protocol_type_is_what_list_groups_would_say() -> None:
    """Offsets only: "" (a simple consumer to Lag Exporter); a classic group: its metadata's type; a
    consumer-protocol group: "consumer"; a deleted classic group's type is forgotten."""
    state = OffsetsState()
    for group in ("simple", "classic", "connect-worker", "kip848"):
        state.apply(offset_key(group, "t", 0), offset_value(1, 3))
    state.apply(group_key("classic"), group_value("consumer", 3))
    state.apply(group_key("connect-worker"), group_value("connect", 4))
    state.apply(group_key("kip848", kind=3), b"\x00\x00\x00\x00\x00\x01\x00")
    assert [state.protocol_type(g) for g in ("simple", "classic", "connect-worker", "kip848")] == [
        "", "consumer", "connect", "consumer"]
    state.apply(group_key("classic"), None)
    assert state.protocol_type("classic") == ""


def test_a_group_committing_where_it_was_is_handed_back_unchanged_and_a_moved_commit_is_not() -> None:
    """The lag evaluation skips a group whose commits object is the one it saw last: the cache
    hands that object back while the group only commits the same offsets, and a new one (with the
    new offsets) once a commit moves, a partition is deleted, or the stream starts over."""
    state, cache = OffsetsState(), CommitsCache()
    key = offset_key("g", "t", 0)  # the same bytes every time, as the stream's records
    state.apply(key, offset_value(5, 3))
    state.apply(offset_key("h", "t", 0), offset_value(1, 3))
    first = cache.answer(state, ["g", "h"])
    state.apply(key, offset_value(5, 3))  # an idle consumer's periodic commit
    again = cache.answer(state, ["g", "h"])
    assert again[0] is first[0] and again[1] is first[1]
    state.apply(key, offset_value(8, 3))
    moved = cache.answer(state, ["g", "h"])
    assert moved[0] is not first[0] and moved[0].offsets == {"t": {0: 8}}
    assert moved[1] is first[1]
    state.apply(offset_key("h", "t", 0), None)  # the group's offsets deleted
    assert cache.answer(state, ["g", "h"])[1].offsets == {}
    replayed = OffsetsState()
    replayed.apply(key, offset_value(8, 3))
    assert cache.answer(replayed, ["g"])[0] is not moved[0]
