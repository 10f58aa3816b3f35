"""The records of ``__consumer_offsets``, decoded with the schemas Kafka documents for its group
coordinator (``group-coordinator/src/main/resources/common/message/*.json`` in Kafka's sources).

Every key starts with an int16 that Kafka calls the key's version and that, since the KIP-848
coordinator, names the record's type:

- 0 and 1, ``OffsetCommitKey``: group (string), topic (string), partition (int32);
- 2, ``GroupMetadataKey``: group (string), the classic protocol's group metadata;
- 3, ``ConsumerGroupMetadataKey``: group (string), a group on the consumer protocol (KIP-848);
- 4 and up: the other records of KIP-848, share and streams groups (members, assignments, ...),
  which say nothing about committed offsets and are skipped.

Keys are never flexible: their strings are int16-length-prefixed. The ``OffsetCommitValue``
(versions 0..4; 4 is flexible) starts with its own int16 version, then the offset (int64) in every
version; after it: v3+ the leader epoch (int32), then the metadata (string; compact in v4), then
the commit timestamp (int64), and in v1 only an expire timestamp (int64). v4 ends with tagged fields
(e.g. the topic id Kafka 4 adds), which are not needed. ``GroupMetadataValue`` (versions 0..4)
starts with the protocol type (string; compact in v4): ``consumer`` for consumer clients, ``connect``
for Kafka Connect workers.

A record with a null value is a tombstone: for an offset key the group's offset of that partition
is gone (committed offsets deleted, expired, or the group deleted); for a group metadata key the
group itself is gone.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_I64 = struct.Struct(">q")
_OFFSET_KEY = (0, 1)
GROUP_METADATA_KEY = 2
CONSUMER_GROUP_METADATA_KEY = 3
OFFSET_VALUE_VERSIONS = range(5)
GROUP_VALUE_VERSIONS = range(5)


class UnknownRecord(ValueError):
    """A record whose version this decoder does not know (a newer Kafka): skipped and counted."""


@dataclass(frozen=True, slots=True)
class OffsetCommit:
    group: str
    topic: str
    partition: int
    offset: int | None  # None: tombstone (the offset was deleted or expired)
    commit_timestamp_ms: int = -1


@dataclass(frozen=True, slots=True)
class GroupRecord:
    group: str
    protocol_type: str | None  # None: tombstone (the group was deleted)
    consumer_protocol: bool = False  # a KIP-848 group (ConsumerGroupMetadata), else classic


def _string(data: bytes, at: int) -> tuple[str, int]:
    (length,) = _I16.unpack_from(data, at)
    at += 2
    if length < 0:
        return "", at
    return data[at:at + length].decode(), at + length


def _uvarint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _compact_string(data: bytes, at: int) -> tuple[str, int]:
    length, at = _uvarint(data, at)
    if length == 0:  # null
        return "", at
    return data[at:at + length - 1].decode(), at + length - 1


def decode(key: bytes | None, value: bytes | None, names: dict[str, str]) -> OffsetCommit | GroupRecord | None:
    """One record of ``__consumer_offsets``: an offset commit, a group record, or None for the
    record types that carry neither. ``names`` interns group and topic names (a million pairs share
    a few thousand strings instead of holding a copy each). Raises ``UnknownRecord`` for a version
    this decoder does not know, ``struct.error``/``IndexError`` for a record cut short."""
    if key is None or len(key) < 2:
        raise UnknownRecord("a record without a key")
    (kind,) = _I16.unpack_from(key, 0)
    if kind in _OFFSET_KEY:
        group, at = _string(key, 2)
        topic, at = _string(key, at)
        (partition,) = _I32.unpack_from(key, at)
        group, topic = names.setdefault(group, sys.intern(group)), names.setdefault(topic, sys.intern(topic))
        if value is None:
            return OffsetCommit(group, topic, partition, None)
        return _offset_value(group, topic, partition, value)
    if kind in (GROUP_METADATA_KEY, CONSUMER_GROUP_METADATA_KEY):
        group, _ = _string(key, 2)
        group = names.setdefault(group, sys.intern(group))
        if kind == CONSUMER_GROUP_METADATA_KEY:
            return GroupRecord(group, None if value is None else "consumer", consumer_protocol=True)
        if value is None:
            return GroupRecord(group, None)
        (version,) = _I16.unpack_from(value, 0)
        if version not in GROUP_VALUE_VERSIONS:
            raise UnknownRecord(f"group metadata value version {version} (known: 0..4)")
        protocol_type, _ = _compact_string(value, 2) if version >= 4 else _string(value, 2)
        return GroupRecord(group, protocol_type)
    if kind < 0:
        raise UnknownRecord(f"key type {kind}")
    return None  # KIP-848 members and assignments, share and streams groups: not about offsets


def _offset_value(group: str, topic: str, partition: int, value: bytes) -> OffsetCommit:
    (version,) = _I16.unpack_from(value, 0)
    if version not in OFFSET_VALUE_VERSIONS:
        raise UnknownRecord(f"offset commit value version {version} (known: 0..4)")
    (offset,) = _I64.unpack_from(value, 2)
    at = 10 + (4 if version >= 3 else 0)  # the leader epoch
    _, at = _compact_string(value, at) if version >= 4 else _string(value, at)
    (timestamp,) = _I64.unpack_from(value, at)
    return OffsetCommit(group, topic, partition, offset, timestamp)
