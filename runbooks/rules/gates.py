"""The health gates a step passes before it touches a broker: pure functions over what Kafka and
Kubernetes report, so every runbook judges a cluster by the same rules and each rule has a direct test.

``assess`` (``runbooks.rules.health``) is the whole-cluster gate every runbook shares: every expected
broker registered and unfenced, no under-replicated partition (reassignment-corrected), none under
its effective min ISR, none offline, no reassignment in flight, and a KRaft quorum whose majority is
caught up. ``restart_gate`` adds what restarting one broker needs on top: its pod and every other
broker pod Ready, Strimzi's ``canRoll`` for that broker, and its ``canRollController``.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from runbooks.rules.health import ClusterSnapshot, assess, can_restart, can_roll_controller


class BrokerRisk(BaseModel):
    """What restarting one broker now would do: Strimzi's canRoll and canRollController for it."""

    model_config = ConfigDict(frozen=True)

    findings: tuple[str, ...]  # the partitions at risk, each with why
    unsafe: str | None  # canRoll's summary when it refuses
    quorum: str | None  # canRollController's reason when it refuses

    def problems(self, broker: int, *, when: str = "") -> list[str]:
        """The refusals as sentences (``when``: e.g. " now", said after "restarting broker N")."""
        found = [f"restarting broker {broker}{when} is not safe: {self.unsafe}"] if self.unsafe is not None else []
        return found + ([f"controller quorum: {self.quorum}"] if self.quorum is not None else [])


def broker_restart_risk(snapshot: ClusterSnapshot, broker: int) -> BrokerRisk:
    check = can_restart(snapshot, broker)
    quorum = can_roll_controller(snapshot.quorum, broker) if snapshot.quorum is not None else (True, "")
    return BrokerRisk(findings=tuple(f"{r.partition}: {r.reason}" for r in check.at_risk),
                      unsafe=None if check.ok else check.summary(), quorum=None if quorum[0] else quorum[1])


class GateVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    ok: bool
    findings: tuple[str, ...] = ()  # what is at risk, shown to the approver whether or not it blocks
    reason: str


def restart_gate(snapshot: ClusterSnapshot, broker: int, pods_ready: Mapping[int, bool]) -> GateVerdict:
    """May ``broker`` be restarted now? ``pods_ready``: every broker pod Kubernetes runs, by node id."""
    problems: list[str] = []
    if not pods_ready.get(broker, False):
        problems.append(f"pod of broker {broker} is not Ready")
    not_ready = sorted(b for b, ready in pods_ready.items() if not ready and b != broker)
    if not_ready:
        problems.append(f"other brokers not Ready: {', '.join(map(str, not_ready))}")
    problems += assess(snapshot, expected_brokers=pods_ready).problems
    risk = broker_restart_risk(snapshot, broker)
    problems += risk.problems(broker)
    if problems:
        return GateVerdict(ok=False, findings=risk.findings, reason="; ".join(problems))
    return GateVerdict(ok=True, findings=risk.findings, reason=f"broker {broker} can restart. At risk: none.")
