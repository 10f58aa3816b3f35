"""Per-broker questions for the upgrade and config runbooks, asked of each broker itself.

Both go to the broker named, never to "any" broker: a broker's configs are only known to that
broker (DescribeConfigs on ``BROKER "<id>"`` must be sent to it), and the point of ApiVersions
here is what *that* process supports. Read-only: writes of broker configs are the operator's
(it uses IncrementalAlterConfigs); the bot never alters them itself. It only asks a broker to
*judge* a change, with IncrementalAlterConfigs and validate_only, which the broker runs through
the checks of a live update and then discards.

``ApiVersions`` per node is not wrapped by kafka-python 3.0 (its ``describe_features`` asks the
least-loaded node), so the request goes through the admin client's connection manager, the
same path kafka-python's own mixins use; it is the one place this adapter touches that layer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import kafka.errors as kerrors
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.protocol.metadata import ApiVersionsRequest

from handlers.ports import BrokerFeatures
from runbooks.rules.config_keys import ConfigEntryInfo

METADATA_VERSION = "metadata.version"
# kafka-python renders a resource's error as "[Error 40] InvalidConfigurationError: <broker's message>".
_ERROR = re.compile(r"\[Error -?\d+\] (\w+): ?(.*)", re.DOTALL)


def config_entries(described: Mapping[str, Any], broker: int) -> dict[str, ConfigEntryInfo]:
    """One broker's entries of ``describe_configs(config_filter='all')`` as the runbooks' model."""
    entries = (described.get("broker") or {}).get(str(broker)) or {}
    result: dict[str, ConfigEntryInfo] = {}
    for name, entry in entries.items():
        if not isinstance(entry, Mapping):
            continue
        value = entry.get("value")
        result[str(name)] = ConfigEntryInfo(
            name=str(name),
            value=None if value is None else str(value),
            source=str(entry.get("config_source") or ""),
            read_only=bool(entry.get("read_only", True)),
            sensitive=bool(entry.get("is_sensitive", False)),
            type=str(entry.get("config_type") or ""),
        )
    return result


def ensure_known(admin: KafkaAdminClient, broker: int) -> None:
    """Make sure the client's metadata lists ``broker`` before sending to it. A broker that was down
    during the client's last metadata refresh is missing from it until the next one (every 5 min),
    and a node-addressed request would fail with UnknownBrokerId until then: refresh now instead."""
    manager = admin._manager
    if manager.cluster.broker_metadata(broker) is None:
        manager.run(manager.cluster.refresh_metadata)
        if manager.cluster.broker_metadata(broker) is None:
            raise kerrors.UnknownBrokerIdError(broker)  # retriable: the caller retries until its deadline


def describe_broker(admin: KafkaAdminClient, broker: int, keys: Sequence[str] | None) -> dict[str, ConfigEntryInfo]:
    ensure_known(admin, broker)
    # 'all': the default filter leaves out defaults, and a verification must see every value.
    resource = ConfigResource(ConfigResourceType.BROKER, str(broker), list(keys) if keys is not None else None)
    return config_entries(admin.describe_configs([resource], config_filter="all"), broker)


def validate_on_broker(admin: KafkaAdminClient, broker: int, values: Mapping[str, str]) -> str | None:
    """IncrementalAlterConfigs (SET each key) with validate_only on BROKER "<id>", sent to that broker:
    None if it would take the values, else its own message. Nothing is changed."""
    ensure_known(admin, broker)
    resource = ConfigResource(ConfigResourceType.BROKER, str(broker), dict(values))
    # raise_on_unknown=False: kafka-python would otherwise pre-check the keys itself, against its
    # own DescribeConfigs; the broker's verdict is the one wanted here, in the broker's words.
    result = admin.alter_configs([resource], validate_only=True, raise_on_unknown=False, incremental=True)
    verdict = (result.get("broker") or {}).get(str(broker))
    if verdict == "OK":
        return None
    if verdict is None:
        return "the broker's answer named no result for its own resource"
    match = _ERROR.fullmatch(str(verdict))
    if match is None:
        return str(verdict)
    name, message = match.groups()
    said = message if message and message != "None" else name
    return said if len(said) <= 500 else said[:497] + "..."  # a broker's message is echoed to chat


def features_from(broker: int, response: Any) -> BrokerFeatures:
    """The metadata.version range the broker supports, and the finalized level it has seen."""
    supported = next((f for f in getattr(response, "supported_features", None) or []
                      if getattr(f, "name", None) == METADATA_VERSION), None)
    finalized = next((f for f in getattr(response, "finalized_features", None) or []
                      if getattr(f, "name", None) == METADATA_VERSION), None)
    return BrokerFeatures(
        broker=broker,
        metadata_max_level=int(supported.max_version) if supported is not None else None,
        finalized_metadata_level=int(finalized.max_version_level) if finalized is not None else None,
    )


def ask_features(admin: KafkaAdminClient, broker: int) -> BrokerFeatures:
    ensure_known(admin, broker)
    manager = admin._manager  # see the module docstring: per-node ApiVersions is not wrapped

    async def ask() -> Any:
        request = ApiVersionsRequest(
            client_software_name=manager.config["client_software_name"],
            client_software_version=manager.config["client_software_version"],
            min_version=3,  # v3+ carries the feature lists (KIP-584)
        )
        return await manager.send(request, node_id=broker)

    return features_from(broker, manager.run(ask))
