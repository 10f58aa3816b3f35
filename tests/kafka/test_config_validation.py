"""Real brokers: IncrementalAlterConfigs with validate_only through KafkaAdminAdapter, and the committed
config models against what real brokers report. Nothing here changes a cluster: each test checks that
too. Run under the sandbox lock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import pytest

from bot.kafka import KafkaAdminAdapter
from bot.kube.gateway import KubeClusterGateway, load_api_client
from handlers.clusters import ManagedCluster
from handlers.commands.planning import Planner
from handlers.ports import ClusterRef
from runbooks.catalogue.config import ConfigParams
from runbooks.engine.models import ApprovalPolicy, PlanRefused
from runbooks.rules.config_model import load_model
from runbooks.rules.config_values import ValueRefused, judge

if TYPE_CHECKING:
    from tests.fixtures.sandbox import SandboxInfo

pytestmark = pytest.mark.sandbox
REF = ClusterRef(name="test", namespace="kafka", kafka="test")
RATIO = "log.cleaner.min.cleanable.ratio"


@pytest.fixture
async def adapter() -> AsyncIterator[KafkaAdminAdapter]:
    a = KafkaAdminAdapter(request_timeout_ms=5000, call_deadline_s=15)
    try:
        yield a
    finally:
        await a.close()


async def test_brokers_judge_values_without_applying_them(sandbox: SandboxInfo, adapter: KafkaAdminAdapter) -> None:
    """Each broker answers for itself: the ratio of the incident is refused in the words the bot's judge also
    uses; a thread pool resize beyond double, which only a running broker can judge, is refused; a start-up
    key cannot be updated live; valid values pass. Afterwards every value is what it was."""
    brokers = [0, 1, 2]
    before = await adapter.describe_broker_configs(REF, sandbox.bootstrap_servers, brokers, [RATIO, "num.io.threads"])

    refused = await adapter.validate_broker_configs(REF, sandbox.bootstrap_servers, brokers, {RATIO: "5"})
    kafka_says = f"Invalid value 5.0 for configuration {RATIO}: Value must be no more than 1"
    assert refused == {b: kafka_says for b in brokers}
    with pytest.raises(ValueRefused) as judged:
        judge(RATIO, "5", load_model("4.3.1").keys[RATIO])
    assert str(judged.value).startswith(kafka_says)

    pool = await adapter.validate_broker_configs(REF, sandbox.bootstrap_servers, [1], {"num.io.threads": "100"})
    assert "value should not be greater than double the current value 8" in (pool[1] or ""), pool
    static = await adapter.validate_broker_configs(REF, sandbox.bootstrap_servers, [2],
                                                   {"auto.create.topics.enable": "false"})
    assert static == {2: "Cannot update these configs dynamically: [auto.create.topics.enable]"}

    fine = await adapter.validate_broker_configs(REF, sandbox.bootstrap_servers, brokers,
                                                 {RATIO: "0.6", "num.io.threads": "9"})
    assert fine == {0: None, 1: None, 2: None}

    after = await adapter.describe_broker_configs(REF, sandbox.bootstrap_servers, brokers, [RATIO, "num.io.threads"])
    assert {b: {k: (e.value, e.source) for k, e in entries.items()} for b, entries in after.items()} == \
        {b: {k: (e.value, e.source) for k, e in entries.items()} for b, entries in before.items()}
    assert after[0][RATIO].value == "0.5" and after[0]["num.io.threads"].value == "8"


async def test_the_planner_refuses_on_a_real_cluster_before_any_approval(sandbox: SandboxInfo,
                                                                         adapter: KafkaAdminAdapter) -> None:
    """The planner on the real adapters: the incident's value is refused in Kafka's words, a resize only the
    brokers can judge is refused in theirs, a valid live value is planned; the Kafka resource is untouched."""
    gateway = KubeClusterGateway(load_api_client(sandbox.kubeconfig))
    cluster = ManagedCluster(ref=ClusterRef(name=sandbox.cluster, namespace=sandbox.namespace, kafka=sandbox.cluster,
                                            bootstrap_servers=sandbox.bootstrap_servers),
                             policy=ApprovalPolicy(approvers=("U1",)))
    planner = Planner(gateway, adapter)
    try:
        before = await gateway.kafka_status(cluster.ref)
        with pytest.raises(PlanRefused, match=r"Invalid value 5\.0 for configuration log\.cleaner\.min\.cleanable"
                                              r"\.ratio: Value must be no more than 1"):
            await planner.config.plan(cluster, ConfigParams(action="set", values={RATIO: "5"}))
        with pytest.raises(PlanRefused, match=r"the brokers refuse num\.io\.threads=100 .*brokers 0, 1, 2: .*value "
                                              r"should not be greater than double the current value 8"):
            await planner.config.plan(cluster, ConfigParams(action="set", values={"num.io.threads": "100"}))
        steps = await planner.config.plan(cluster, ConfigParams(action="set", values={RATIO: "0.6"}))
        assert [s.id for s in steps] == ["preflight", "patch-config", "verify"]
        after = await gateway.kafka_status(cluster.ref)
        assert (after.generation, after.spec_config) == (before.generation, before.spec_config)
    finally:
        gateway.close()


async def _assert_model_covers(adapter: KafkaAdminAdapter, bootstrap: str, broker: int, version: str) -> None:
    reported = (await adapter.describe_broker_configs(REF, bootstrap, [broker]))[broker]
    model = load_model(version)
    assert len(reported) > 300
    assert sorted(set(reported) - set(model.keys)) == []
    assert {k: e.type for k, e in reported.items() if e.type != model.keys[k].type} == {}
    assert {k for k, e in reported.items() if e.read_only == model.keys[k].dynamic} == set()


async def test_the_model_covers_every_key_a_4_3_broker_reports(sandbox: SandboxInfo,
                                                               adapter: KafkaAdminAdapter) -> None:
    """Every key a Kafka 4.3.1 broker reports in DescribeConfigs is in the 4.3.1 model, with the broker's type
    and the broker's verdict on whether it can change live."""
    assert sandbox.kafka_version == "4.3.1"
    await _assert_model_covers(adapter, sandbox.bootstrap_servers, 0, "4.3.1")


async def test_the_model_covers_every_key_a_4_2_broker_reports(sandbox_factory: Callable[..., SandboxInfo],
                                                               adapter: KafkaAdminAdapter) -> None:
    """The same for Kafka 4.2.2 (one broker of its own, stopped at the end)."""
    cluster = sandbox_factory("model-422", kafka_version="4.2.2", brokers=1)
    try:
        await _assert_model_covers(adapter, cluster.bootstrap_servers, 0, "4.2.2")
    finally:
        cluster.down()
