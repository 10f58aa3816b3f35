"""``/kafka mirror`` between secured clusters, through the grammar and the command service against the
fakes (two in-memory Strimzi clusters with listeners and Secrets, the KafkaMirrorMaker2 fake): the
``--source-user``/``--target-user`` options and their bad values; the world read as the bot's own
clients read it (the clusters file's listener, its tls and authentication); a Secret missing from
the target's namespace refused with its name and the copy command, nothing created; and the
pre-flight step finding a Secret gone since the plan."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bot.config.settings import load_clusters
from handlers.clusters import KafkaClientKeys, ManagedCluster
from handlers.commands.command_models import MirrorCommand
from handlers.commands.grammar import parse
from handlers.commands.service import CommandService
from handlers.ports import ClusterRef
from handlers.steps.base import StepContext
from handlers.steps.mirror import MirrorPreflightStep
from runbooks.catalogue.mirror import MirrorParams
from runbooks.catalogue.mirror_step_args import MirrorPreflightArgs
from runbooks.engine.models import Actor, ApprovalPolicy, Step
from tests.fakes.mirror_canary import FakeMirrorCanary
from tests.fakes.mirror_makers import FakeMirrorMakers
from tests.fakes.store import MemoryClusterLocks, MemoryRunRepository
from tests.fakes.strimzi import FakeStrimzi
from tests.fakes.time import FakeClock, SequentialIds
from tests.handlers.grammar_cases import parse_error

pytestmark = pytest.mark.timeout(10)
REQUESTER = Actor(id="U_REQ")
TLS_SCRAM = {"name": "tls", "port": 9093, "type": "internal", "tls": True, "authentication": {"type": "scram-sha-512"}}
PLAIN = {"name": "plain", "port": 9092, "type": "internal", "tls": False}
EAST_SECRETS = ("east-cluster-ca-cert", "kafka-chatops")


class Clusters:
    """The cluster ports of several in-memory Strimzi clusters, each call routed by the ClusterRef's name."""

    def __init__(self, *fakes: FakeStrimzi) -> None:
        self.fakes = {f.name: f for f in fakes}

    def __getattr__(self, name: str) -> Any:
        def call(cluster: ClusterRef, *args: Any, **kwargs: Any) -> Any:
            return getattr(self.fakes[cluster.name], name)(cluster, *args, **kwargs)
        return call


def two_clusters() -> tuple[FakeStrimzi, FakeStrimzi]:
    east = FakeStrimzi("east", version="4.3.1", zookeeper=False, instant_rolls=True)
    west = FakeStrimzi("west", version="4.3.1", zookeeper=False, instant_rolls=True)
    for fake in (east, west):
        fake.spec["listeners"] = [dict(PLAIN), dict(TLS_SCRAM)]
    east.create_topic("orders.eu", {0: [0, 1, 2]})
    return east, west


def managed(*, kubectl: tuple[str, ...] = ()) -> dict[str, ManagedCluster]:
    """east: the tls listener, SCRAM as kafka-chatops (the clusters file's kafka_user); west: plaintext."""
    policy = ApprovalPolicy(approvers=(REQUESTER.id, "U_APP"))
    east = ManagedCluster(ref=ClusterRef(name="east", namespace="kafka-east", kafka="east", listener="tls"),
                          policy=policy, kafka_client=KafkaClientKeys(kafka_user="kafka-chatops"),
                          kubectl_flags=kubectl)
    west = ManagedCluster(ref=ClusterRef(name="west", namespace="kafka-west", kafka="west"), policy=policy)
    return {"east": east, "west": west}


async def say(text: str, east: FakeStrimzi, west: FakeStrimzi, *, kubectl: tuple[str, ...] = ()) -> tuple[str, bool]:
    mirrors = FakeMirrorMakers()
    ports = Clusters(east, west)
    runs = MemoryRunRepository()
    built = CommandService(clusters=managed(kubectl=kubectl), runs=runs, locks=MemoryClusterLocks(runs.state),
                           gateway=ports, admin=ports, clock=FakeClock(), ids=SequentialIds(),
                           mirror_makers=mirrors, canary=FakeMirrorCanary())
    reply = await built.handle_text(text, REQUESTER)
    assert not mirrors.objects and not mirrors.created  # nothing created, whatever the answer
    return reply.text, bool(await runs.recent(None))


# -- the grammar -----------------------------------------------------------------------------------


def test_the_user_options_are_parsed() -> None:
    assert parse("mirror east west --topics 'orders.*' --source-user mm2-east --target-user mm2.west") == \
        MirrorCommand(source="east", target="west", topics="orders.*", source_user="mm2-east", target_user="mm2.west")


@pytest.mark.parametrize(("text", "fragment"), [
    ("mirror east west --topics x --source-user MM2_User",
     '--source-user: "MM2_User" is not a valid KafkaUser name: use lowercase letters, digits, \'-\' and \'.\' '
     '(did you mean "mm2-user"?)'),
    ("mirror east west --topics x --target-user -mm2", "--target-user needs a value"),
    ("mirror east west --topics x --target-user mm2.", '"mm2." is not a valid KafkaUser name: each \'.\'-separated '
     "part must start and end with a letter or digit"),
    ("mirror east west --topics x --source-user", "--source-user needs a value"),
    ("mirror east west --topics x --source-user a --source-user b", "--source-user is given twice"),
    ("mirror pause dr --source-user mm2", "mirror pause <name> takes no --source-user"),
])
def test_a_bad_user_option_is_refused_with_what_is_valid(text: str, fragment: str) -> None:
    error = parse_error(text)
    assert fragment in error.message and error.verb == "mirror"


# -- the world and the plan through the command service -------------------------------------------


async def test_a_secret_missing_from_the_targets_namespace_is_refused_with_the_copy_commands() -> None:
    east, west = two_clusters()
    answer, created = await say("mirror east west --topics 'orders.*'", east, west, kubectl=("--context", "prod-a"))
    assert not created
    assert "Secret kafka-west/east-cluster-ca-cert (east's cluster CA) does not exist" in answer
    assert "Secret kafka-west/kafka-chatops (the KafkaUser kafka-chatops of east) does not exist" in answer
    assert ("`kubectl --context prod-a get secret kafka-chatops -n kafka-east -o json | jq '{apiVersion, kind, type, "
            "data, metadata: {name: \"kafka-chatops\"}}' | kubectl apply -n kafka-west -f -`") in answer
    assert west.secret_reads == list(EAST_SECRETS) and not east.secret_reads  # looked up by name, in the target's


async def test_with_the_secrets_copied_the_dry_run_shows_tls_and_scram_on_the_source_side() -> None:
    east, west = two_clusters()
    west.secrets = {"east-cluster-ca-cert": ("ca.crt",), "mm2": ("password", "sasl.jaas.config")}
    answer, created = await say("mirror east west --topics 'orders.*' --source-user mm2 --dry-run", east, west)
    assert not created and "Cannot" not in answer
    assert ('"source": {"alias": "east", "bootstrapServers": "east:9092", "tls": {"trustedCertificates": '
            '[{"secretName": "east-cluster-ca-cert", "certificate": "ca.crt"}]}, "authentication": {"type": '
            '"scram-sha-512", "username": "mm2", "passwordSecret": {"secretName": "mm2", "password": "password"}}}'
            ) in answer
    assert '"target": {"alias": "west", "bootstrapServers": "west:9092", "groupId"' in answer  # plaintext target
    assert "east-cluster-ca-cert (east's cluster CA), mm2 (the KafkaUser mm2 of east)" in answer


async def test_a_user_for_a_side_that_does_not_authenticate_and_an_unknown_listener_are_refused() -> None:
    east, west = two_clusters()
    west.secrets = {"east-cluster-ca-cert": ("ca.crt",), "kafka-chatops": ("password",)}
    answer, created = await say("mirror east west --topics 'orders.*' --target-user mm2", east, west)
    assert "--target-user mm2: the target west's listener does not authenticate clients" in answer and not created
    east.spec["listeners"] = [dict(PLAIN)]
    answer, created = await say("mirror east west --topics 'orders.*'", east, west)
    assert ("the source east: the clusters file's listener 'tls' is not in spec.kafka.listeners of Kafka "
            "kafka-east/east (its listeners: plain)") in answer and not created


# -- the pre-flight step, at run time --------------------------------------------------------------


async def test_the_preflight_fails_when_a_secret_went_missing_since_the_plan() -> None:
    """The plan found the Secrets; before the run's pre-flight someone deleted the SCRAM one: the step
    fails naming it, with its copy command, before the (approved) create step could make anything."""
    east, west = two_clusters()
    west.secrets = {"east-cluster-ca-cert": ("ca.crt",), "kafka-chatops": ("password",)}
    ports = Clusters(east, west)
    clusters = managed()
    mirrors = FakeMirrorMakers()
    runs = MemoryRunRepository()
    built = CommandService(clusters=clusters, runs=runs, locks=MemoryClusterLocks(runs.state), gateway=ports,
                           admin=ports, clock=FakeClock(), ids=SequentialIds(), mirror_makers=mirrors,
                           canary=FakeMirrorCanary())
    steps = await built.mirrors.planning.plan(clusters["west"], MirrorParams(source="east", target="west",
                                                                              topics="orders.*"))
    spec = steps[0]
    args = spec.args
    assert isinstance(args, MirrorPreflightArgs)
    ctx = StepContext(cluster=clusters["west"].ref, gateway=ports, admin=ports, clock=FakeClock(),
                      clusters={n: c.ref for n, c in clusters.items()}, mirror_makers=mirrors)
    step = Step(spec=spec)
    assert (await MirrorPreflightStep().done(ctx, step, args)).done
    del west.secrets["kafka-chatops"]
    result = await MirrorPreflightStep().done(ctx, step, args)
    assert not result.done and result.failure is not None
    assert "Secret kafka-west/kafka-chatops (the KafkaUser kafka-chatops of east) does not exist" in result.failure
    assert re.search(r"`kubectl get secret kafka-chatops -n kafka-east .* \| kubectl apply -n kafka-west -f -`",
                     result.failure)
    assert not mirrors.created


# -- the clusters file's keys, as the runbook sees them --------------------------------------------


def test_the_clusters_files_security_keys_and_kube_context_reach_the_managed_cluster(tmp_path: Path) -> None:
    path = tmp_path / "clusters.yaml"
    path.write_text("clusters:\n"
                    "  east:\n    namespace: kafka-east\n    approvers: [U01ANA]\n    listener: tls\n"
                    "    tls: {ca_secret: east-ca}\n    authentication: {kafka_user: kafka-chatops}\n"
                    "    context: prod-a\n"
                    "  west:\n    namespace: kafka-west\n    approvers: [U01ANA]\n")
    clusters = load_clusters(path)
    assert clusters["east"].kafka_client == KafkaClientKeys(tls=True, ca_secret="east-ca", kafka_user="kafka-chatops")
    assert clusters["east"].kubectl_flags == ("--context", "prod-a")
    assert clusters["west"].kafka_client.plaintext and clusters["west"].kubectl_flags == ()
