"""The per-broker calls of KafkaAdminAdapter (DescribeConfigs, ApiVersions) against the session sandbox,
plus their pure parsing. Nothing here changes the cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest

from bot.kafka import KafkaAdminAdapter
from bot.kafka.brokers import config_entries, features_from
from handlers.ports import ClusterRef

if TYPE_CHECKING:
    from tests.fixtures.sandbox import SandboxInfo

REF = ClusterRef(name="test", namespace="kafka", kafka="test")


def test_config_entries_keep_value_source_type_and_kafkas_dynamic_verdict() -> None:
    """describe_configs(config_filter='all') entries become ConfigEntryInfo; a null value stays None."""
    described = {"broker": {"1": {
        "log.retention.ms": {"value": None, "config_source": "DEFAULT_CONFIG", "read_only": False,
                             "is_sensitive": False, "config_type": "LONG"},
        "node.id": {"value": "1", "config_source": "STATIC_BROKER_CONFIG", "read_only": True, "config_type": "INT"},
    }}}
    entries = config_entries(described, 1)
    assert entries["log.retention.ms"].value is None and not entries["log.retention.ms"].read_only
    assert (entries["node.id"].value, entries["node.id"].source, entries["node.id"].type) == (
        "1", "STATIC_BROKER_CONFIG", "INT")
    assert config_entries(described, 2) == {}


def test_features_from_an_api_versions_response() -> None:
    """metadata.version's supported max (the binary's line) and finalized level; absent features are None."""
    response = SimpleNamespace(
        supported_features=[SimpleNamespace(name="metadata.version", min_version=7, max_version=30)],
        finalized_features=[SimpleNamespace(name="metadata.version", min_version_level=29, max_version_level=29)])
    features = features_from(0, response)
    assert (features.metadata_max_level, features.finalized_metadata_level) == (30, 29)
    assert features_from(0, SimpleNamespace()).metadata_max_level is None


@pytest.fixture
async def adapter() -> AsyncIterator[KafkaAdminAdapter]:
    a = KafkaAdminAdapter(request_timeout_ms=5000, call_deadline_s=15)
    try:
        yield a
    finally:
        await a.close()


@pytest.mark.sandbox
async def test_describe_broker_configs_asks_each_broker(sandbox: SandboxInfo, adapter: KafkaAdminAdapter) -> None:
    """Each broker answers for itself: its node.id, the whole key list with types, and Kafka's dynamic flags."""
    described = await adapter.describe_broker_configs(REF, sandbox.bootstrap_servers, [0, 1, 2],
                                                      ["node.id", "log.retention.ms", "auto.create.topics.enable"])
    assert {b: entries["node.id"].value for b, entries in described.items()} == {0: "0", 1: "1", 2: "2"}
    retention = described[0]["log.retention.ms"]
    assert retention.type == "LONG" and not retention.read_only
    assert described[0]["auto.create.topics.enable"].read_only  # Kafka cannot change it live
    everything = await adapter.describe_broker_configs(REF, sandbox.bootstrap_servers, [1])
    assert len(everything[1]) > 200 and "min.insync.replicas" in everything[1]


@pytest.mark.sandbox
async def test_broker_features_show_the_release_each_broker_runs(sandbox: SandboxInfo,
                                                                adapter: KafkaAdminAdapter) -> None:
    """ApiVersions per broker: a 4.3 binary supports metadata.version up to 30 (4.3-IV0), finalized 30."""
    features = await adapter.broker_features(REF, sandbox.bootstrap_servers, [0, 1, 2])
    assert {b: (f.metadata_max_level, f.finalized_metadata_level) for b, f in features.items()} == {
        0: (30, 30), 1: (30, 30), 2: (30, 30)}
