"""The mirror runbook on secured clusters (``runbooks.catalogue.mirror_security``): the exact
``spec.target`` / ``spec.mirrors[].source`` for plaintext, TLS + SCRAM-SHA-512 and mutual TLS, the
Secrets named (renamed when a copy would take a target-side name), the refusals with the copy
commands, and the approval card showing the new fields and the Secrets by name."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import pytest

from runbooks.catalogue.mirror import MirrorInput, MirrorParams, MirrorSide, TopicInfo, plan
from runbooks.catalogue.mirror_security import SecretState, SideSecurity
from runbooks.catalogue.mirror_step_args import CreateMirrorArgs, MirrorPreflightArgs
from runbooks.engine.models import PlanRefused, StepSpec

pytestmark = pytest.mark.timeout(5)

SCRAM = SideSecurity(tls=True, ca_secret="east-cluster-ca-cert", authentication="scram-sha-512", kafka_user="mm2")
MTLS = SideSecurity(tls=True, ca_secret="west-cluster-ca-cert", authentication="tls", kafka_user="mm2-west")
PLAINTEXT = SideSecurity()


def side(name: str, namespace: str, security: SideSecurity = PLAINTEXT, **more: Any) -> MirrorSide:
    return MirrorSide(name=name, namespace=namespace, ready=True, bootstrap=f"{name}-kafka-bootstrap:9093",
                      kafka_version="4.3.1", security=security, **more)


def world(src: SideSecurity = PLAINTEXT, tgt: SideSecurity = PLAINTEXT, *,
          present: Mapping[str, tuple[str, ...]] | None = None, forbidden: tuple[str, ...] = (),
          source_ns: str = "kafka-east", **more: Any) -> MirrorInput:
    """Both clusters; ``present``: the target namespace's Secrets (name -> keys) the plan is told of."""
    states = [SecretState(name=n, found=True, keys=k) for n, k in (present or {}).items()]
    states += [SecretState(name=n, found=False, forbidden=f'secrets "{n}" is forbidden') for n in forbidden]
    return MirrorInput(source=side("east", source_ns, src, **more), target=side("west", "kafka-west", tgt),
                       source_topics=(TopicInfo(name="orders", partitions=3),), secrets=tuple(states))


def params(**changes: Any) -> MirrorParams:
    return MirrorParams(**{"source": "east", "target": "west", "topics": "orders", **changes})


def create_step(steps: list[StepSpec]) -> CreateMirrorArgs:
    args = steps[1].args
    assert isinstance(args, CreateMirrorArgs)
    return args


def refusal(w: MirrorInput, p: MirrorParams | None = None) -> str:
    with pytest.raises(PlanRefused) as err:
        plan(p or params(), w)
    return str(err.value)


def test_plaintext_clusters_get_alias_and_bootstrap_only() -> None:
    spec = create_step(plan(params(), world())).spec
    assert spec["target"] == {"alias": "west", "bootstrapServers": "west-kafka-bootstrap:9093",
                              "groupId": "east-to-west-mm2", "configStorageTopic": "east-to-west-mm2-config",
                              "offsetStorageTopic": "east-to-west-mm2-offset",
                              "statusStorageTopic": "east-to-west-mm2-status"}
    assert spec["mirrors"][0]["source"] == {"alias": "east", "bootstrapServers": "east-kafka-bootstrap:9093"}
    assert plan(params(), world())[0].args == MirrorPreflightArgs(source="east", name="east-to-west")


def test_tls_and_scram_on_the_source_and_mutual_tls_on_the_target_as_strimzi_spells_them() -> None:
    present = {"east-cluster-ca-cert": ("ca.crt",), "mm2": ("password", "sasl.jaas.config"),
               "west-cluster-ca-cert": ("ca.crt", "ca.p12", "ca.password"), "mm2-west": ("user.crt", "user.key")}
    steps = plan(params(), world(SCRAM, MTLS, present=present))
    spec = create_step(steps).spec
    assert spec["mirrors"][0]["source"] == {
        "alias": "east", "bootstrapServers": "east-kafka-bootstrap:9093",
        "tls": {"trustedCertificates": [{"secretName": "east-cluster-ca-cert", "certificate": "ca.crt"}]},
        "authentication": {"type": "scram-sha-512", "username": "mm2",
                           "passwordSecret": {"secretName": "mm2", "password": "password"}}}
    assert spec["target"] == {
        "alias": "west", "bootstrapServers": "west-kafka-bootstrap:9093",
        "tls": {"trustedCertificates": [{"secretName": "west-cluster-ca-cert", "certificate": "ca.crt"}]},
        "authentication": {"type": "tls", "certificateAndKey": {"secretName": "mm2-west", "certificate": "user.crt",
                                                                "key": "user.key"}},
        "groupId": "east-to-west-mm2", "configStorageTopic": "east-to-west-mm2-config",
        "offsetStorageTopic": "east-to-west-mm2-offset", "statusStorageTopic": "east-to-west-mm2-status"}
    preflight = steps[0].args
    assert isinstance(preflight, MirrorPreflightArgs)
    assert [(n.name, n.keys, n.origin_namespace) for n in preflight.secrets] == [
        ("west-cluster-ca-cert", ("ca.crt",), "kafka-west"), ("mm2-west", ("user.crt", "user.key"), "kafka-west"),
        ("east-cluster-ca-cert", ("ca.crt",), "kafka-east"), ("mm2", ("password",), "kafka-east")]
    # The approval card: the resource with its new fields, and the Secrets by name.
    card = steps[1].summary
    shown = json.loads(card[card.index("Resource: ") + len("Resource: "):])
    assert shown["spec"] == spec and shown["kind"] == "KafkaMirrorMaker2"
    assert "mm2-west (the KafkaUser mm2-west of west)" in steps[0].summary


def test_a_source_secret_whose_name_the_target_uses_is_copied_under_the_sources_prefix() -> None:
    """Two clusters both named my-cluster's CA, one KafkaUser name on both sides: a copy under the same
    name would overwrite the target's own, so the resource names <source>-<name>."""
    same_src = SideSecurity(tls=True, ca_secret="my-cluster-cluster-ca-cert", authentication="scram-sha-512",
                            kafka_user="mm2")
    same_tgt = SideSecurity(tls=True, ca_secret="my-cluster-cluster-ca-cert", authentication="scram-sha-512",
                            kafka_user="mm2")
    present = {"my-cluster-cluster-ca-cert": ("ca.crt",), "mm2": ("password",),
               "east-my-cluster-cluster-ca-cert": ("ca.crt",), "east-mm2": ("password",)}
    spec = create_step(plan(params(), world(same_src, same_tgt, present=present))).spec
    source = spec["mirrors"][0]["source"]
    assert source["tls"]["trustedCertificates"][0]["secretName"] == "east-my-cluster-cluster-ca-cert"
    assert source["authentication"]["passwordSecret"]["secretName"] == "east-mm2"
    assert source["authentication"]["username"] == "mm2"  # the user is the same; only the copy's name differs
    assert spec["target"]["tls"]["trustedCertificates"][0]["secretName"] == "my-cluster-cluster-ca-cert"
    # In one namespace the source's Secrets are the very ones MirrorMaker 2 mounts: no copy, no rename.
    one_ns = world(SCRAM, SideSecurity(tls=True, ca_secret="west-cluster-ca-cert"), source_ns="kafka-west",
                   present={"east-cluster-ca-cert": ("ca.crt",), "mm2": ("password",),
                            "west-cluster-ca-cert": ("ca.crt",)})
    assert create_step(plan(params(), one_ns)).spec["mirrors"][0]["source"]["tls"]["trustedCertificates"][0][
        "secretName"] == "east-cluster-ca-cert"


def test_missing_secrets_are_refused_with_the_kubectl_commands_that_copy_them() -> None:
    answer = refusal(world(SCRAM, SideSecurity(tls=True, ca_secret="west-cluster-ca-cert"),
                           present={"west-cluster-ca-cert": ("ca.crt",)}, kubectl=("--context", "east-ctx")))
    assert "the KafkaMirrorMaker2 in west's namespace kafka-west mounts these Secrets from there" in answer
    assert "Secret kafka-west/east-cluster-ca-cert (east's cluster CA) does not exist" in answer
    assert "Secret kafka-west/mm2 (the KafkaUser mm2 of east) does not exist" in answer
    commands = re.findall(r"`([^`]*)`", answer)
    assert commands == [
        "kubectl --context east-ctx get secret east-cluster-ca-cert -n kafka-east -o json | jq '{apiVersion, kind, "
        "type, data, metadata: {name: \"east-cluster-ca-cert\"}}' | kubectl apply -n kafka-west -f -",
        "kubectl --context east-ctx get secret mm2 -n kafka-east -o json | jq '{apiVersion, kind, type, data, "
        "metadata: {name: \"mm2\"}}' | kubectl apply -n kafka-west -f -"]


def test_a_secret_without_its_key_one_the_bot_may_not_read_and_a_missing_target_user_are_refused() -> None:
    tgt = SideSecurity(tls=True, ca_secret="west-cluster-ca-cert", authentication="scram-sha-512",
                       kafka_user="mm2-west")
    answer = refusal(world(SCRAM, tgt, present={"east-cluster-ca-cert": ("ca.p12",), "mm2": ("password",)},
                           forbidden=("west-cluster-ca-cert",)))
    assert "Secret kafka-west/east-cluster-ca-cert (east's cluster CA) has no ca.crt (its keys: ca.p12)" in answer
    assert ("the bot may not read Secret kafka-west/west-cluster-ca-cert (west's cluster CA), so cannot check it is "
            "there") in answer and "rbac.secretNames" in answer
    assert ("Secret kafka-west/mm2-west (the KafkaUser mm2-west of west) does not exist: create the KafkaUser "
            "mm2-west for west") in answer
    assert "kubectl" not in answer  # nothing to copy: the target's own Secrets are made where they belong


@pytest.mark.parametrize(("src", "tgt", "p", "words"), [
    (SideSecurity(tls=True, ca_secret="c", authentication="oauthbearer"), SideSecurity(), params(),
     "the source east's listener authenticates with oauthbearer: the mirror runbook sets MirrorMaker 2 up with "
     "scram-sha-512 or tls (a KafkaUser's Secret) only"),
    (SideSecurity(tls=True, ca_secret="c", authentication="scram-sha-512"), SideSecurity(), params(),
     "the source east's listener authenticates with scram-sha-512 and no KafkaUser is known for MirrorMaker 2: "
     "give --source-user <KafkaUser>"),
    (SideSecurity(), SideSecurity(kafka_user="mm2", user_given=True), params(target_user="mm2"),
     "--target-user mm2: the target west's listener does not authenticate clients, so there is no user to be"),
    (SideSecurity(authentication="tls", kafka_user="mm2", ca_secret="c"), SideSecurity(), params(),
     "the source east authenticates with client certificates (tls) on a listener without TLS"),
    (SideSecurity(problem="the clusters file's listener 'tls' is not in spec.kafka.listeners"), SideSecurity(),
     params(), "the source east: the clusters file's listener 'tls' is not in spec.kafka.listeners"),
])
def test_what_the_runbook_cannot_set_up_is_refused_with_the_reason(src: SideSecurity, tgt: SideSecurity,
                                                                   p: MirrorParams, words: str) -> None:
    assert words in refusal(world(src, tgt), p)

