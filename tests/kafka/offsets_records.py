"""``__consumer_offsets`` records as the broker writes them, for the decoder's tests (the schemas
of ``bot.kafka.offsets_topic``; the sandbox tests check the decoder against the broker's own bytes)."""

from __future__ import annotations

import struct

from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.util import calc_crc32c

from bot.kafka.offsets_topic import GROUP_METADATA_KEY

_I16, _I32, _I64, _U32 = struct.Struct(">h"), struct.Struct(">i"), struct.Struct(">q"), struct.Struct(">I")
# Record batch v2: base offset (8), length (4), leader epoch (4), magic (1), CRC (4), attributes (2), ...
_CRC, _ATTRIBUTES, _CONTROL = 17, 21, 0x20

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


def record_batch(base_offset: int, records: list[tuple[bytes | None, bytes | None]], *, producer_id: int = -1,
                 transactional: bool = False, control: bool = False) -> bytes:
    """A record batch (message format v2) as a Fetch answer carries it, at ``base_offset``. A
    control batch holds one marker (``marker(commit=...)``); aiokafka's builder cannot set that
    attribute, so it is set here and the CRC, which covers the attributes, written again."""
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=int(transactional),
                                        producer_id=producer_id, producer_epoch=0 if producer_id >= 0 else -1,
                                        base_sequence=0 if producer_id >= 0 else -1, batch_size=1 << 20)
    for delta, (key, value) in enumerate(records):
        builder.append(delta, timestamp=1_700_000_000_000, key=key, value=value, headers=[])
    data = builder.build()
    _I64.pack_into(data, 0, base_offset)
    if control:
        attributes = _I16.unpack_from(data, _ATTRIBUTES)[0] | _CONTROL
        _I16.pack_into(data, _ATTRIBUTES, attributes)
        _U32.pack_into(data, _CRC, calc_crc32c(bytes(data[_ATTRIBUTES:])))
    return bytes(data)


def marker(*, commit: bool) -> tuple[bytes, bytes]:
    """A transaction's end marker: key (version 0, type 0 abort / 1 commit), value (version, coordinator epoch)."""
    return _I16.pack(0) + _I16.pack(1 if commit else 0), _I16.pack(0) + _I32.pack(0)
