"""What the stream of ``__consumer_offsets`` knows (``bot.kafka.offsets_stream``): every group's
committed offsets, which groups are on the consumer protocol (KIP-848) or which classic protocol
type they have, and when each group's offsets last changed.

Memory: ``offsets[group][topic][partition] = offset`` (plain dicts of ints, the names interned),
and one shortcut per group-topic: the offset key's bytes without the partition, pointing at that
group-topic's partitions dict, so that a commit of a known group-topic costs a dict lookup and two
struct reads instead of a decode. About 83 bytes a pair in all (measured at 100,000 pairs, offsets
past a million: the dict slot, and the offset's int object); when the shortcut was per
pair, its own key bytes took 115 bytes more.

- An offset tombstone deletes that group-partition: DeleteGroups, DeleteOffsets and the expiry of
  an empty group's offsets all write one per partition. A group metadata tombstone alone does not
  delete offsets: Kafka writes one when it converts a classic group to the consumer protocol
  (KIP-848's online upgrade) and the offsets stay.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

from bot.kafka.offsets_topic import GroupRecord, OffsetCommit, UnknownRecord, decode

_I32 = struct.Struct(">i")
_VERSION_AND_OFFSET = struct.Struct(">hq")
_OFFSET_KEY_KINDS = (b"\x00\x00", b"\x00\x01")  # an offset commit key's first int16


class OneRecord(NamedTuple):
    key: bytes | None
    value: bytes | None


class KafkaRecord(Protocol):
    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


class OffsetsState:
    """What the stream knows: every group's committed offsets, and the groups on the consumer protocol."""

    __slots__ = ("_known", "_slots", "changed", "classic_protocols", "consumer_protocol", "names", "offsets", "records",
                 "skipped")

    def __init__(self) -> None:
        self.offsets: dict[str, dict[str, dict[int, int]]] = {}
        self.consumer_protocol: set[str] = set()
        self.classic_protocols: dict[str, str] = {}  # classic group -> its protocol type (consumer, connect, ...)
        self.names: dict[str, str] = {}
        self.records = 0
        self.skipped = 0  # records of a version this decoder does not know, or cut short
        # When each group's offsets last changed (the record count then): a reader hands back what
        # it built before for a group that has not changed since (``StreamingLagReader``).
        self.changed: dict[str, int] = {}
        # An offset key without its partition (its version, group and topic) -> the group-topic's
        # partitions dict and the group: one entry per group-topic, not per pair.
        self._known: dict[bytes, tuple[dict[int, int], str]] = {}
        self._slots: dict[tuple[str, str], tuple[dict[int, int], str]] = {}

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        self.apply_batch((OneRecord(key, value),))

    def apply_batch(self, records: Iterable[KafkaRecord]) -> None:
        """Every record of a batch, in order. The hot path, a commit of a group-partition seen
        before, is inlined here: at 100,000 commits a second a method call and the attribute
        look-ups per record were a third of the stream's CPU. Such a key's bytes are the same every
        time, so they lead straight to the partition's dict; the offset is the int64 after the
        value's version in every known version (0..4)."""
        known = self._known.get
        changed = self.changed
        version_and_offset = _VERSION_AND_OFFSET.unpack_from
        partition_of = _I32.unpack_from
        count = self.records
        for record in records:
            count += 1
            key: Any = record.key  # bytes once a slot is found; Any: no cast on the hot path
            try:
                slot = known(key[:-4])  # the key without its partition: the group and topic
                version, offset = version_and_offset(record.value)  # type: ignore[arg-type]
            except (TypeError, struct.error):  # no key, a tombstone (None), or a value cut short
                slot = None
            if slot is not None and 0 <= version <= 4:
                partitions, group = slot
                partition = partition_of(key, len(key) - 4)[0]
                if partitions.get(partition) != offset:  # committing where it was changes nothing
                    partitions[partition] = offset
                    changed[group] = count
                continue
            self.records = count
            self._decode_and_apply(key, record.value)
        self.records = count

    def _decode_and_apply(self, key: bytes | None, value: bytes | None) -> None:
        try:
            record = decode(key, value, self.names)
        except (UnknownRecord, struct.error, IndexError, UnicodeDecodeError):
            self.skipped += 1
            return
        if isinstance(record, OffsetCommit):
            if record.offset is not None:
                topics = self.offsets.get(record.group)
                if topics is None:
                    topics = self.offsets[record.group] = {}
                slot = self._slots.get((record.group, record.topic))
                if slot is None:
                    slot = (topics.setdefault(record.topic, {}), record.group)
                    self._slots[(record.group, record.topic)] = slot
                slot[0][record.partition] = record.offset
                self.changed[record.group] = self.records
                if key is not None:
                    self._known[key[:-4]] = slot
                return
            topics = self.offsets.get(record.group)
            left = topics.get(record.topic) if topics is not None else None
            if left is None or topics is None:
                return
            left.pop(record.partition, None)
            self.changed[record.group] = self.records
            if not left:
                del topics[record.topic]
                self._slots.pop((record.group, record.topic), None)
                if key is not None:  # the group-topic's key, both versions of it
                    for kind in _OFFSET_KEY_KINDS:
                        self._known.pop(kind + key[2:-4], None)
                if not topics:
                    del self.offsets[record.group]
                    del self.changed[record.group]  # a version the readers never saw (0) stands for "gone"
        elif isinstance(record, GroupRecord) and record.consumer_protocol:
            if record.protocol_type is None:
                self.consumer_protocol.discard(record.group)
            else:
                self.consumer_protocol.add(record.group)
        elif isinstance(record, GroupRecord):
            if record.protocol_type is None:
                self.classic_protocols.pop(record.group, None)
            else:
                self.classic_protocols[record.group] = record.protocol_type

    def protocol_type(self, group: str) -> str:
        """As ListGroups says it: "consumer" for a group with members' metadata, "" for one that only
        commits offsets (no group metadata record at all), or the classic group's own type."""
        if group in self.consumer_protocol:
            return "consumer"
        return self.classic_protocols.get(group, "")

    def group_offsets(self, group: str) -> dict[str, dict[int, int]]:
        """A copy: the stream keeps changing the state between a poll's awaits."""
        return {topic: dict(partitions) for topic, partitions in self.offsets.get(group, {}).items()}

    def pairs(self) -> int:
        return sum(len(p) for topics in self.offsets.values() for p in topics.values())
