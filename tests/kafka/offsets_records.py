"""``__consumer_offsets`` records as the broker writes them, for the decoder's tests (the schemas
of ``bot.kafka.offsets_topic``; the sandbox tests check the decoder against the broker's own bytes)."""

from __future__ import annotations

import struct

from bot.kafka.offsets_topic import GROUP_METADATA_KEY

_I16, _I32, _I64 = struct.Struct(">h"), struct.Struct(">i"), struct.Struct(">q")

def _put_string(text: str) -> bytes:
    raw = text.encode()
    return _I16.pack(len(raw)) + raw


def _put_compact_string(text: str) -> bytes:
    raw = text.encode()
    length, out = len(raw) + 1, bytearray()
    while length >= 0x80:
        out.append(length & 0x7F | 0x80)
        length >>= 7
    out.append(length)
    return bytes(out) + raw


def offset_key(group: str, topic: str, partition: int, kind: int = 1) -> bytes:
    return _I16.pack(kind) + _put_string(group) + _put_string(topic) + _I32.pack(partition)


def group_key(group: str, kind: int = GROUP_METADATA_KEY) -> bytes:
    return _I16.pack(kind) + _put_string(group)


def offset_value(offset: int, version: int, *, metadata: str = "", commit_ms: int = 0, leader_epoch: int = -1,
                 expire_ms: int = -1) -> bytes:
    out = _I16.pack(version) + _I64.pack(offset)
    if version >= 3:
        out += _I32.pack(leader_epoch)
    out += _put_compact_string(metadata) if version >= 4 else _put_string(metadata)
    out += _I64.pack(commit_ms)
    if version == 1:
        out += _I64.pack(expire_ms)
    if version >= 4:
        out += b"\x00"  # no tagged fields
    return out


def group_value(protocol_type: str, version: int) -> bytes:
    """The start of a ``GroupMetadataValue`` (what the decoder reads of it)."""
    head = _put_compact_string(protocol_type) if version >= 4 else _put_string(protocol_type)
    return _I16.pack(version) + head + _I32.pack(1)
