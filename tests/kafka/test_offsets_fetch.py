"""One partition's Fetch answer of ``__consumer_offsets`` into the stream's state
(``bot.kafka.offsets_fetch.apply_fetched``), on record batches built as the broker writes them: what
counts (committed transactions, plain commits), what never does (aborted transactions, markers),
and where the next fetch starts (``tests/alerts/test_offsets_stream.py`` checks the same against
real brokers)."""

from __future__ import annotations

import pytest
from aiokafka.errors import CorruptRecordException
from aiokafka.record.legacy_records import LegacyRecordBatchBuilder

from bot.kafka.offsets_fetch import apply_fetched
from bot.kafka.offsets_state import OffsetsState
from tests.kafka.offsets_records import marker, offset_key, offset_value, record_batch

pytestmark = pytest.mark.timeout(10)

KEY = offset_key("billing", "orders", 0)
OTHER = offset_key("billing", "orders", 1)
THIRD = offset_key("billing", "orders", 2)


def commit(offset: int, key: bytes = KEY) -> tuple[bytes, bytes]:
    return key, offset_value(offset, 3, commit_ms=1)


def test_plain_commits_count_and_the_next_fetch_starts_after_the_last_batch() -> None:
    state = OffsetsState()
    data = record_batch(0, [commit(5), commit(6, OTHER)]) + record_batch(2, [commit(9)])
    assert apply_fetched(state, data, [], 0) == 3
    assert state.offsets == {"billing": {"orders": {0: 9, 1: 6}}}
    assert state.records == 3 and state.skipped == 0


def test_an_aborted_transactions_commit_never_counts_a_committed_ones_does() -> None:
    state = OffsetsState()
    data = (record_batch(0, [commit(5)])
            + record_batch(1, [commit(11)], producer_id=7, transactional=True)
            + record_batch(2, [marker(commit=True)], producer_id=7, transactional=True, control=True)
            + record_batch(3, [commit(4), commit(40, THIRD)], producer_id=8, transactional=True)
            + record_batch(5, [commit(2, OTHER)])  # another client's plain commit, inside producer 8's transaction
            + record_batch(6, [marker(commit=False)], producer_id=8, transactional=True, control=True)
            + record_batch(7, [commit(12, OTHER)], producer_id=8, transactional=True))  # its next one, committed
    position = apply_fetched(state, data, [(8, 3)], 0)
    assert position == 8
    assert state.offsets == {"billing": {"orders": {0: 11, 1: 12}}}
    assert state.skipped == 0  # the markers were not read as offset records


def test_without_its_abort_listed_a_transactions_commit_counts() -> None:
    """The broker lists the aborted transactions of the range it answers: a transaction not listed
    was committed, and only the list decides (the rule above is not "skip every transaction")."""
    state = OffsetsState()
    data = (record_batch(0, [commit(11)], producer_id=7, transactional=True)
            + record_batch(1, [marker(commit=True)], producer_id=7, transactional=True, control=True))
    assert apply_fetched(state, data, [], 0) == 2
    assert state.offsets == {"billing": {"orders": {0: 11}}}


def test_records_before_the_fetch_position_in_a_batch_are_skipped() -> None:
    state = OffsetsState()
    apply_fetched(state, record_batch(0, [commit(1)]), [], 0)
    # Asked from offset 2, the broker answers the whole batch that holds it (offsets 1..2).
    assert apply_fetched(state, record_batch(1, [commit(7, OTHER), commit(8)]), [], 2) == 3
    assert state.offsets == {"billing": {"orders": {0: 8}}}


def test_the_old_message_format_is_read_too() -> None:
    """A cluster upgraded from Kafka before 0.11 may still hold v1 message sets in the topic."""
    builder = LegacyRecordBatchBuilder(magic=1, compression_type=0, batch_size=1 << 20)
    for offset, (key, value) in enumerate([commit(3, OTHER), commit(6)]):
        builder.append(offset, timestamp=1_700_000_000_000, key=key, value=value)
    assert apply_fetched(state := OffsetsState(), bytes(builder.build()), [], 1) == 2
    assert state.offsets == {"billing": {"orders": {0: 6}}}


def test_an_answer_that_ends_inside_a_batch_leaves_it_for_the_next_fetch() -> None:
    state = OffsetsState()
    whole, cut = record_batch(0, [commit(3)]), record_batch(1, [commit(4)])
    assert apply_fetched(state, whole + cut[:-5], [], 0) == 1
    assert state.offsets["billing"]["orders"] == {0: 3}
    assert apply_fetched(state, cut, [], 1) == 2
    assert state.offsets["billing"]["orders"] == {0: 4}


def test_a_gap_compaction_left_moves_the_position_past_it() -> None:
    state = OffsetsState()
    assert apply_fetched(state, record_batch(0, [commit(3)]) + record_batch(40, [commit(4)]), [], 0) == 41


def test_a_batch_whose_crc_does_not_match_stops_the_stream() -> None:
    data = bytearray(record_batch(0, [commit(3)]))
    data[-3] ^= 0xFF  # a byte of the record's value
    with pytest.raises(CorruptRecordException):
        apply_fetched(OffsetsState(), bytes(data), [], 0)


def test_a_tombstone_of_a_known_pair_takes_the_decoding_path_and_deletes_it() -> None:
    state = OffsetsState()
    apply_fetched(state, record_batch(0, [commit(3), commit(4, OTHER)]), [], 0)
    apply_fetched(state, record_batch(2, [(KEY, None)]), [], 2)
    assert state.offsets == {"billing": {"orders": {1: 4}}}


def test_a_commit_where_the_group_already_was_is_not_a_change() -> None:
    state = OffsetsState()
    apply_fetched(state, record_batch(0, [commit(3)]), [], 0)
    version = state.changed["billing"]
    apply_fetched(state, record_batch(1, [commit(3)]), [], 1)
    assert state.changed["billing"] == version
    apply_fetched(state, record_batch(2, [commit(5)]), [], 2)
    assert state.changed["billing"] > version
