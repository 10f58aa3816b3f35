"""``KubeClusterGateway.secret_keys`` over real HTTP, against the sandbox's Kubernetes API emulator
served in-process (no brokers): a Secret found answers its keys' names and never a value; a missing
one answers not found; a read the bot's Role refuses (403, as the API server answers it, in front of
the emulator) answers forbidden with the API's words, so the mirror pre-flight can say which Role
to change instead of calling the Secret missing."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.kube import KubeClusterGateway
from bot.sandbox.kube import ObjectStore
from handlers.ports import ClusterRef, SecretLookup
from tests.kube.emulator_gateway import emulator_gateway

pytestmark = pytest.mark.timeout(30)

NS = "kafka-west"
CLUSTER = ClusterRef(name="west", namespace=NS, kafka="west")
LOCKED = "locked-secret"
VALUE = "s3cr3t-scram-password"


@pytest.fixture
async def kube(tmp_path: Path) -> AsyncIterator[tuple[ObjectStore, KubeClusterGateway]]:
    locked = f"/api/v1/namespaces/{NS}/secrets/{LOCKED}"
    async with emulator_gateway(tmp_path, NS, lambda path: ("secrets", "", LOCKED) if path == locked else None
                                ) as served:
        yield served


async def test_found_missing_and_forbidden_secrets_answer_names_only(kube: Any) -> None:
    store, gateway = kube
    encoded = base64.b64encode(VALUE.encode()).decode()
    store.create("", "secrets", NS, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "mm2"},
                                     "data": {"password": encoded, "sasl.jaas.config": encoded}})
    found = await gateway.secret_keys(CLUSTER, "mm2")
    assert found == SecretLookup(name="mm2", found=True, keys=("password", "sasl.jaas.config"))
    assert VALUE not in found.model_dump_json() and encoded not in found.model_dump_json()
    assert await gateway.secret_keys(CLUSTER, "east-cluster-ca-cert") == SecretLookup(name="east-cluster-ca-cert",
                                                                                       found=False)
    refused = await gateway.secret_keys(CLUSTER, LOCKED)
    assert not refused.found and refused.keys == ()
    assert f"get Secret {NS}/{LOCKED}: HTTP 403" in refused.forbidden and "cannot get resource" in refused.forbidden
