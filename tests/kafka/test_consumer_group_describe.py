"""ConsumerGroupDescribe (KIP-848) as declared in ``bot.kafka.consumer_groups``: the request
encodes the group ids, and a response laid out as Kafka's v0 schema decodes into the group's state
and members with their assigned partitions. The sandbox test (tests/alerts/test_offsets_stream.py)
checks it against a broker."""

from __future__ import annotations

from io import BytesIO

import pytest

from bot.kafka.consumer_groups import ConsumerGroupDescribeRequest_v0, ConsumerGroupDescribeResponse_v0, _members
from handlers.ports import GroupMember

pytestmark = pytest.mark.timeout(10)

TOPIC_ID = bytes(range(16))


def test_the_request_carries_the_group_ids_in_compact_form() -> None:
    encoded = ConsumerGroupDescribeRequest_v0(["g1", "g2"], False, {}).encode()
    assert encoded == b"\x03\x03g1\x03g2\x00\x00"  # 2 ids (+1), each length+1, no authorised ops, no tags


def test_a_response_decodes_into_state_and_members() -> None:
    assignment = ([(TOPIC_ID, "orders", [2, 0], {})], {})
    member = ("m-1", None, None, 5, "client-1", "/10.0.0.7", ["orders"], None, assignment, ([], {}), {})
    group = (0, None, "app", "Stable", 5, 5, "uniform", [member], -2147483648, {})
    raw = ConsumerGroupDescribeResponse_v0.SCHEMA.encode((0, [group], {}))
    decoded = ConsumerGroupDescribeResponse_v0.decode(BytesIO(raw))
    (error_code, _, group_id, state, *_rest) = decoded.groups[0]
    assert (error_code, group_id, state) == (0, "app", "Stable")
    assert _members(decoded.groups[0][7]) == (
        GroupMember(member_id="m-1", client_id="client-1", host="/10.0.0.7", partitions=(("orders", 0), ("orders", 2))),
    )
