"""Replies never echo input without bound: a key or value shown is cut, with an ellipsis and its
length; a config change lists its first few problems and counts the rest; an absurd number of keys
is refused before any work. Every reply here stays small and is computed quickly. Through the real
service, with the in-memory Strimzi fake at the ports (these are refused before any run exists)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from handlers.clusters import ManagedCluster
from handlers.commands.service import CommandService
from handlers.ports import ClusterRef
from handlers.replies import Reply
from handlers.runs.run_text import plan_text, run_card
from runbooks.catalogue.step_args import PatchKafkaArgs
from runbooks.engine.models import Actor, ApprovalPolicy, Run, Step, StepSpec
from tests.fakes.strimzi import FakeStrimzi

CLUSTER = "kraft"
USER = Actor(id="U_ANY")
SMALL = 1500  # characters: a reply that fits a chat message comfortably
HUGE = 100_000

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def service() -> CommandService:
    """Only read-only planning is exercised: no run is ever created, so no store is needed."""
    fake = FakeStrimzi(CLUSTER, version="4.2.0", zookeeper=False)
    cluster = ManagedCluster(ref=ClusterRef(name=CLUSTER, namespace="kafka", kafka=CLUSTER),
                             policy=ApprovalPolicy(approvers=("U_APP",)))
    return CommandService(clusters={CLUSTER: cluster}, runs=None, locks=None, gateway=fake, admin=fake,  # type: ignore[arg-type]
                          clock=None, ids=None)  # type: ignore[arg-type]


async def answer(service: CommandService, text: str) -> tuple[Reply, float]:
    started = time.monotonic()
    reply = await service.handle_text(text, USER)
    return reply, time.monotonic() - started


@pytest.mark.parametrize("text", [
    f"config {CLUSTER} set {'a' * HUGE}=1 --dry-run",
    f"config {CLUSTER} unset {'a' * HUGE} --dry-run",
    f"config {CLUSTER} set {'b' * HUGE}=1 {'b' * HUGE}=2",
    f"config {CLUSTER} set {'c' * HUGE}",
    f"config {CLUSTER} unset {'e' * HUGE}=1",
], ids=["set", "unset", "twice", "set-without-value", "unset-with-value"])
async def test_a_huge_key_is_shown_cut_with_its_length(service: CommandService, text: str) -> None:
    """A 100,000-character key: refused, shown as its start, an ellipsis and "100,000 characters"."""
    reply, seconds = await answer(service, text)
    assert not reply.ok and len(reply.text) < SMALL and seconds < 0.5, (len(reply.text), seconds)
    assert "…" in reply.text and "100,000 characters" in reply.text, reply.text


@pytest.mark.parametrize("key", ["log.retention.ms", "compression.type"])
async def test_a_huge_value_is_shown_cut_with_its_length(service: CommandService, key: str) -> None:
    """A 100,000-character value the planner refuses: the refusal shows it cut, with its length."""
    reply, seconds = await answer(service, f"config {CLUSTER} set {key}={'9' * HUGE} --dry-run")
    assert not reply.ok and len(reply.text) < SMALL and seconds < 0.5, (len(reply.text), seconds)
    assert key in reply.text and "…" in reply.text and "100,000 characters" in reply.text, reply.text


async def test_many_bad_keys_list_the_first_few_and_count_the_rest(service: CommandService) -> None:
    """40 keys the brokers do not know: the first five are named, then "and 35 more problems"."""
    keys = " ".join(f"nosuch.key{i}=1" for i in range(40))
    reply, seconds = await answer(service, f"config {CLUSTER} set {keys} --dry-run")
    assert not reply.ok and len(reply.text) < SMALL and seconds < 0.5, (len(reply.text), seconds)
    assert "nosuch.key0" in reply.text and "nosuch.key4" in reply.text and "nosuch.key5" not in reply.text
    assert "and 35 more problems" in reply.text, reply.text


async def test_thousands_of_keys_are_refused_at_once(service: CommandService) -> None:
    """12,500 unknown keys: refused before any planning, quickly, saying the limit (it took 5.8 s
    and answered 476 KB)."""
    keys = " ".join(f"nosuch.key{i}=1" for i in range(12_500))
    reply, seconds = await answer(service, f"config {CLUSTER} set {keys}")
    assert not reply.ok and len(reply.text) < SMALL and seconds < 0.5, (len(reply.text), seconds)
    assert "at most 50 keys" in reply.text and "12,500" in reply.text, reply.text


def test_a_plan_and_a_card_show_a_huge_value_cut() -> None:
    """A value no rule refuses (a free-text key) still reaches the dry-run plan and the run card cut,
    with its length; bootstrap lists and names of ordinary length stay whole."""
    value = "x" * HUGE
    bootstrap = ",".join(f"broker-{i}.kafka-brokers.kafka.svc.cluster.local:9093" for i in range(3))
    spec = StepSpec(id="patch-config", title="Patch spec.kafka.config", args=PatchKafkaArgs(edits=()),
                    summary=f"Diff of spec.kafka.config: some.free.text: (not set) -> {value}. Brokers {bootstrap}")
    plan = plan_text(CLUSTER, "Config change", [spec])
    now = datetime(2026, 12, 6, tzinfo=UTC)
    run = Run(id="r-0123abcd", runbook="config", cluster=CLUSTER, params={"change": f"set some.free.text={value}"},
              requested_by="U_REQ", created_at=now, updated_at=now, steps=(Step(spec=spec),), plan_hash="h",
              policy=ApprovalPolicy())
    card = run_card(run, now)  # its title shows the change typed
    assert len(plan) < SMALL and "100,000 characters" in plan and bootstrap in plan, plan[:300]
    assert len(card) < SMALL and "set some.free.text=xxx" in card and "100,000 characters" in card, card[:300]
