"""The version-upgrade runbook: refusals, then the KRaft plan or the legacy ZooKeeper plan.

KRaft (docs/strimzi.md §4): pin ``spec.kafka.metadataVersion`` at the current level, so the operator
cannot raise it on its own right after the binaries roll (which would make a downgrade
impossible); patch ``spec.kafka.version`` and follow the operator's one roll broker by broker;
wait for the operator to report the new version; after a final approval raise
``metadataVersion`` (UpdateFeatures, no roll); verify the status and every broker's running
version. ZooKeeper (Strimzi <= 0.45): keep ``inter.broker.protocol.version`` (and, from a release
older than 3.0 or where it is set, ``log.message.format.version``) pinned, roll the binaries, then
one roll per protocol bump. Each roll is approved once and followed broker by broker
(``runbooks.rules.rolls`` says why).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from runbooks.catalogue.runbook import Runbook
from runbooks.catalogue.step_args import (
    AwaitOperatorArgs,
    ClusterCheckArgs,
    PatchKafkaArgs,
    PatchStatus,
    RollExpectation,
    VerifyUpgradeArgs,
    edit,
    follow_steps,
)
from runbooks.engine.models import PlanRefused, StepSpec
from runbooks.rules.health import ClusterSnapshot, assess
from runbooks.rules.rolls import SETTLE_TIMEOUT_S, BrokerPodState, roll_summary
from runbooks.rules.strimzi_releases import SupportedKafkaVersions, resolve_supported
from runbooks.rules.versions import (
    ClusterMode,
    VersionError,
    default_metadata,
    line_key,
    metadata_level,
    parse_version,
    release_line,
)

RUNBOOK = "upgrade"
IBP = "inter.broker.protocol.version"
LMFV = "log.message.format.version"


class UpgradeParams(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: str


class UpgradeInput(BaseModel):
    """What the planner needs to know about the cluster, read through the ports."""

    model_config = ConfigDict(frozen=True)

    mode: ClusterMode
    ready: bool
    not_ready_reason: str = ""
    settled: bool = True  # the operator has reconciled the latest spec
    kafka_version: str | None = None  # status.kafkaVersion
    metadata_version: str | None = None  # status.kafkaMetadataVersion
    spec_metadata_version: str | None = None
    spec_config: dict[str, Any] = {}
    brokers: tuple[BrokerPodState, ...]
    snapshot: ClusterSnapshot | None = None
    snapshot_error: str = ""
    # What the cluster's operator supports (runbooks.rules.strimzi_releases); None: the shipped table's
    # newest release (the last with ZooKeeper for a ZooKeeper cluster), nothing read.
    supported: SupportedKafkaVersions | None = None

    def supported_versions(self) -> SupportedKafkaVersions:
        if self.supported is not None:
            return self.supported
        return resolve_supported(mode=self.mode, unread="the operator Deployment was not read")


def check_upgrade(params: UpgradeParams, world: UpgradeInput) -> str:
    """The running version, or PlanRefused with the reason (unsupported, downgrade, not Ready, sick)."""
    supported = world.supported_versions()
    try:
        target = parse_version(params.version)
    except VersionError as exc:
        raise PlanRefused(str(exc)) from None
    if not supported.supports(params.version):
        raise PlanRefused(supported.refusal(params.version))
    if world.mode is ClusterMode.KRAFT:
        try:
            default_metadata(params.version)
        except VersionError:
            raise PlanRefused(f"the operator supports Kafka {params.version}, but the bot does not know the "
                              f"metadata version of the {release_line(params.version)} line, so it cannot plan "
                              "the metadata raise: upgrade the bot first") from None
    if not world.ready:
        raise PlanRefused(f"the Kafka resource is not Ready ({world.not_ready_reason or 'no reason given'}): "
                          "an upgrade starts only from a Ready cluster; `/kafka status` shows what is wrong")
    if not world.settled:
        raise PlanRefused("the operator has not reconciled the latest change to the Kafka resource yet; "
                          "try again once it is Ready at the current generation")
    current = world.kafka_version
    running = sorted({b.kafka_version or "?" for b in world.brokers})
    if current is None or len(running) != 1 or running[0] != current:
        raise PlanRefused(f"the brokers run {', '.join(running)} while the status says {current}: a roll is "
                          "unfinished; let the operator finish it first")
    if target < parse_version(current):
        raise PlanRefused(f"{params.version} is older than the running {current}: this command only upgrades. "
                          "A downgrade lowers the metadata version first and is a separate, manual procedure")
    if target == parse_version(current) and not _metadata_behind(params.version, world):
        raise PlanRefused(f"the cluster already runs Kafka {current}"
                          + (f" with metadata {world.metadata_version}" if world.metadata_version else "")
                          + ": nothing to upgrade")
    if world.snapshot is None:
        raise PlanRefused(f"Kafka did not answer, so its health cannot be checked: {world.snapshot_error}")
    report = assess(world.snapshot, expected_brokers=[b.id for b in world.brokers])
    if not report.ok:
        raise PlanRefused(f"the cluster is not healthy: {report.summary()}. Fix that first: an upgrade "
                          "restarts every broker")
    return current


def _metadata_behind(version: str, world: UpgradeInput) -> bool:
    if world.mode is not ClusterMode.KRAFT or world.metadata_version is None:
        return False
    return metadata_level(world.metadata_version) < metadata_level(default_metadata(version))


def plan_upgrade(params: UpgradeParams, world: UpgradeInput) -> list[StepSpec]:
    current = check_upgrade(params, world)
    if world.mode is ClusterMode.KRAFT:
        return _plan_kraft(params.version, current, world)
    return _plan_zookeeper(params.version, current, world)


def _preflight(current: str, world: UpgradeInput) -> StepSpec:
    return StepSpec(
        id="preflight", title=f"Pre-flight: Ready, healthy, every broker on {current}",
        args=ClusterCheckArgs(kafka_version=current, brokers=tuple(b.id for b in world.brokers)), needs_approval=False,
        timeout_s=120.0)


def _uids(brokers: Sequence[BrokerPodState]) -> dict[str, str]:
    return {str(b.id): b.uid for b in brokers}


def _settled(step_id: str, version: str) -> StepSpec:
    return StepSpec(
        id=step_id, title=f"Operator done: status.kafkaVersion {version}, Ready",
        args=AwaitOperatorArgs(kafka_version=version), needs_approval=False, timeout_s=SETTLE_TIMEOUT_S)


def _plan_kraft(target: str, current: str, world: UpgradeInput) -> list[StepSpec]:
    md_now = world.metadata_version
    if md_now is None:
        raise PlanRefused("the Kafka status reports no metadata version: cannot pin it before the roll")
    md_target = default_metadata(target)
    steps = [_preflight(current, world)]
    if target != current:
        steps.append(StepSpec(
            id="pin-metadata", title=f"Pin metadataVersion at the current {md_now}",
            args=PatchKafkaArgs(edits=(edit("metadataVersion", value=md_now),),
                                expect=(edit("version", value=current),), wait="settled",
                                status=PatchStatus(metadata_version=md_now), no_roll=True),
            needs_approval=False, timeout_s=SETTLE_TIMEOUT_S,
            summary="Without the pin the operator raises the metadata version by itself right after the roll, "
                    "and a downgrade is no longer possible.",
            compensation=f"set spec.kafka.metadataVersion back to {world.spec_metadata_version or 'unset'}"))
        steps.append(StepSpec(
            id="roll-version", title=f"Roll to Kafka {target}: patch spec.kafka.version",
            args=PatchKafkaArgs(edits=(edit("version", value=target),),
                                expect=(edit("version", value=current), edit("metadataVersion", value=md_now)),
                                expect_pods=_uids(world.brokers), wait="none"),
            timeout_s=120.0,
            summary=roll_summary(world.brokers, world.snapshot,
                                 f"Sets spec.kafka.version {current} -> {target} (metadata stays {md_now})."),
            compensation=f"set spec.kafka.version back to {current} (another roll; possible while metadata "
                         f"is {md_now})"))
        steps += follow_steps("roll", world.brokers, world.snapshot, what=f"restarted on Kafka {target}",
                              expect=RollExpectation(kafka_version=target))
        steps.append(_settled("roll-done", target))
    steps.append(StepSpec(
        id="raise-metadata", title=f"Raise metadataVersion {md_now} -> {md_target} (no roll)",
        args=PatchKafkaArgs(edits=(edit("metadataVersion", value=md_target),), expect=(edit("version", value=target),),
                            wait="settled", status=PatchStatus(metadata_version=md_target), no_roll=True),
        timeout_s=SETTLE_TIMEOUT_S,
        summary=f"The final approval: the operator applies {md_target} live through UpdateFeatures. After this "
                f"the cluster cannot go back below Kafka {release_line(target)}."))
    steps.append(StepSpec(
        id="verify", title=f"Verify: Kafka {target}, metadata {md_target}, every broker, healthy",
        args=VerifyUpgradeArgs(kafka_version=target, metadata_version=md_target,
                               brokers=tuple(b.id for b in world.brokers)),
        needs_approval=False, timeout_s=120.0))
    return steps


def _plan_zookeeper(target: str, current: str, world: UpgradeInput) -> list[StepSpec]:
    """Strimzi 0.45's procedure (ref-upgrade-kafka-versions.adoc@0.45.0): pinned protocol, binaries
    roll, then one roll per protocol version raised."""
    from_line, to_line = release_line(current), release_line(target)
    config = world.spec_config
    # LMFV matters for a start below 3.0, or wherever someone left it set (then it must follow IBP).
    needs_lmfv = parse_version(current) < (3, 0, 0) or LMFV in config
    pin: dict[str, str] = {}
    if IBP not in config:
        pin[IBP] = from_line
    elif line_key(str(config[IBP])) > line_key(from_line):
        raise PlanRefused(f"{IBP} is {config[IBP]}, newer than the running {current}: fix it before upgrading")
    if needs_lmfv and LMFV not in config:
        pin[LMFV] = from_line
    steps = [_preflight(current, world)]
    brokers, snap = world.brokers, world.snapshot
    first_roll_pods: dict[str, str] | None = _uids(brokers)
    if pin:
        steps.append(_config_roll("pin-protocol", pin, f"Pin {', '.join(pin)} at {from_line}", brokers, snap,
                                  first_roll_pods))
        steps += follow_steps("pin", brokers, snap, what=f"restarted with {IBP} pinned",
                              expect=RollExpectation(config=pin))
        first_roll_pods = None
    steps.append(StepSpec(
        id="roll-version", title=f"Roll to Kafka {target}: patch spec.kafka.version",
        args=PatchKafkaArgs(edits=(edit("version", value=target),), expect=(edit("version", value=current),),
                            expect_pods=first_roll_pods, wait="none"),
        timeout_s=120.0,
        summary=roll_summary(brokers, snap, f"Sets spec.kafka.version {current} -> {target}; the brokers keep "
                                            f"speaking protocol {from_line}.")))
    steps += follow_steps("roll", brokers, snap, what=f"restarted on Kafka {target}",
                          expect=RollExpectation(kafka_version=target))
    steps.append(_settled("roll-done", target))
    if line_key(to_line) > line_key(from_line):
        steps.append(_config_roll("raise-protocol", {IBP: to_line}, f"Raise {IBP} to {to_line}", brokers, snap, None))
        steps += follow_steps("ibp", brokers, snap, what=f"restarted speaking {to_line}",
                              expect=RollExpectation(config={IBP: to_line}))
        if needs_lmfv:
            steps.append(_config_roll("raise-format", {LMFV: to_line}, f"Raise {LMFV} to {to_line}", brokers, snap,
                                      None))
            steps += follow_steps("lmfv", brokers, snap, what=f"restarted writing format {to_line}",
                                  expect=RollExpectation(config={LMFV: to_line}))
        steps.append(_settled("protocol-done", target))
    steps.append(StepSpec(
        id="verify", title=f"Verify: Kafka {target}, protocol {to_line}, every broker, healthy",
        args=VerifyUpgradeArgs(kafka_version=target, metadata_version=None, config={IBP: to_line},
                               brokers=tuple(b.id for b in brokers)),
        needs_approval=False, timeout_s=120.0))
    return steps


def _config_roll(step_id: str, values: dict[str, str], title: str, brokers: Sequence[BrokerPodState],
                 snapshot: ClusterSnapshot | None, expect_pods: dict[str, str] | None) -> StepSpec:
    return StepSpec(
        id=step_id, title=title,
        args=PatchKafkaArgs(edits=tuple(edit("config", key, value=value) for key, value in values.items()),
                            expect_pods=expect_pods, wait="none"),
        timeout_s=120.0,
        summary=roll_summary(brokers, snapshot, f"Sets {', '.join(f'{k}={v}' for k, v in values.items())} in "
                                                "spec.kafka.config (a change Kafka takes only on restart)."))


UPGRADE = Runbook(
    name=RUNBOOK,
    verb="upgrade",
    summary="Upgrade Kafka to a newer version: pin, one roll followed broker by broker, raise, verify.",
    description="Pins the metadata version at the current level, patches spec.kafka.version and follows the "
    "operator's roll broker by broker (each broker a health gate on the card), raises the metadata version after a "
    "final approval (no roll), and verifies every broker runs the new version. Refuses an unsupported version "
    "(with the supported list), a downgrade, and a cluster that is not Ready or not healthy. --dry-run shows the "
    "plan and changes nothing.",
    params=UpgradeParams,
    world=UpgradeInput,
    plan=plan_upgrade,
    title=lambda params: f"Upgrade to Kafka {params.version}",
    refusal=lambda cluster, params: f"Cannot upgrade {cluster} to {params.version}",
    stored=lambda params: {"version": params.version},
)
