"""Groups on the consumer protocol (KIP-848): their state and members come from
ConsumerGroupDescribe (API 69), not DescribeGroups, which only describes classic groups. Neither
kafka-python nor aiokafka has it, so the request and response are declared here with aiokafka's
protocol types, as Kafka's ``ConsumerGroupDescribeRequest.json`` / ``...Response.json`` define
version 0 (flexible): the group ids in, per group its error, state, epochs, assignor and members
(member id, instance and rack ids, epoch, client id and host, subscriptions, current and target
assignment as topic id, topic name and partitions).
"""

from __future__ import annotations

import asyncio
import logging
from io import BytesIO
from typing import Any, TypeAlias

from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    AbstractType,
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)

from handlers.ports import ConsumerGroup, GroupMember

log = logging.getLogger(__name__)

API_KEY = 69
GROUP_COORDINATOR = 0


class Uuid(AbstractType[bytes]):  # type: ignore[misc]  # aiokafka is untyped
    """A topic id: 16 raw bytes."""

    @classmethod
    def encode(cls, value: bytes) -> bytes:
        return value

    @classmethod
    def decode(cls, data: BytesIO) -> bytes:
        value = data.read(16)
        if len(value) != 16:
            raise ValueError("Buffer underrun decoding a UUID")
        return value


_ASSIGNMENT = Schema(
    ("topic_partitions", CompactArray(
        ("topic_id", Uuid), ("topic_name", CompactString("utf-8")), ("partitions", CompactArray(Int32)),
        ("tags", TaggedFields),
    )),
    ("tags", TaggedFields),
)


class ConsumerGroupDescribeResponse_v0(Response):  # type: ignore[misc]
    API_KEY = API_KEY
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("groups", CompactArray(
            ("error_code", Int16),
            ("error_message", CompactString("utf-8")),
            ("group_id", CompactString("utf-8")),
            ("group_state", CompactString("utf-8")),
            ("group_epoch", Int32),
            ("assignment_epoch", Int32),
            ("assignor_name", CompactString("utf-8")),
            ("members", CompactArray(
                ("member_id", CompactString("utf-8")),
                ("instance_id", CompactString("utf-8")),
                ("rack_id", CompactString("utf-8")),
                ("member_epoch", Int32),
                ("client_id", CompactString("utf-8")),
                ("client_host", CompactString("utf-8")),
                ("subscribed_topic_names", CompactArray(CompactString("utf-8"))),
                ("subscribed_topic_regex", CompactString("utf-8")),
                ("assignment", _ASSIGNMENT),
                ("target_assignment", _ASSIGNMENT),
                ("tags", TaggedFields),
            )),
            ("authorized_operations", Int32),
            ("tags", TaggedFields),
        )),
        ("tags", TaggedFields),
    )


class ConsumerGroupDescribeRequest_v0(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = API_KEY
    API_VERSION = 0
    RESPONSE_TYPE = ConsumerGroupDescribeResponse_v0
    SCHEMA = Schema(
        ("group_ids", CompactArray(CompactString("utf-8"))),
        ("include_authorized_operations", Boolean),
        ("tags", TaggedFields),
    )


ConsumerGroupDescribeStruct: TypeAlias = ConsumerGroupDescribeRequest_v0


class ConsumerGroupDescribeRequest(Request[ConsumerGroupDescribeStruct]):  # type: ignore[misc]
    API_KEY = API_KEY

    def __init__(self, groups: list[str]) -> None:
        self._groups = groups

    def build(self, request_struct_class: type[ConsumerGroupDescribeStruct]) -> ConsumerGroupDescribeStruct:
        return request_struct_class(self._groups, False, {})


def _members(members: list[Any]) -> tuple[GroupMember, ...]:
    found = []
    for member_id, _, _, _, client_id, host, _, _, assignment, _, _ in members:
        partitions = [(str(name), int(p)) for _, name, parts, _ in assignment[0] for p in parts]
        found.append(GroupMember(member_id=member_id or "", client_id=client_id or "",
                                 host=host or "", partitions=tuple(sorted(partitions))))
    return tuple(found)


async def describe(client: AIOKafkaClient, groups: list[str]) -> dict[str, ConsumerGroup]:
    """The consumer-protocol groups among ``groups`` that could be described (one request per
    coordinator, coordinators asked concurrently); a group that fails is left out."""
    if not groups:
        return {}
    coordinators = await asyncio.gather(*(client.coordinator_lookup(GROUP_COORDINATOR, g) for g in groups),
                                        return_exceptions=True)
    by_node: dict[int, list[str]] = {}
    for group, node in zip(groups, coordinators, strict=True):
        if isinstance(node, int):
            by_node.setdefault(node, []).append(group)
    answers = await asyncio.gather(*(client.send(node, ConsumerGroupDescribeRequest(ids))
                                     for node, ids in by_node.items()), return_exceptions=True)
    found: dict[str, ConsumerGroup] = {}
    for answer in answers:
        if isinstance(answer, BaseException):
            log.info("ConsumerGroupDescribe failed: %s: %s", type(answer).__name__, answer)
            continue
        for error_code, _, group_id, state, _, _, _, members, _, _ in answer.groups:
            if error_code == 0:
                found[group_id] = ConsumerGroup(group=group_id, state=state or "", protocol_type="consumer",
                                                members=_members(members))
    return found
