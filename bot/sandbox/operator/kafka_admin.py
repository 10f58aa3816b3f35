"""The operator's own Kafka Admin calls (kafka-python, which is synchronous: run in a thread).

Strimzi's operator talks to the brokers through the Admin API for its safety checks (topic and
partition descriptions, min.insync.replicas, quorum state), dynamic broker reconfiguration and
metadata-version updates. This is the twin's equivalent; one instance per cluster and per caller
(the cluster reconciler and the topic operator each own one, as they are separate in Strimzi).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from kafka import TopicPartition
from kafka.admin import (
    ConfigResource,
    ConfigResourceType,
    KafkaAdminClient,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from kafka.errors import (
    BrokerNotAvailableError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    NodeNotReadyError,
    NotControllerError,
    RequestTimedOutError,
    UnknownBrokerIdError,
)

from bot.sandbox.operator.availability import PartitionReplicas, VoterState

log = logging.getLogger(__name__)
T = TypeVar("T")
METADATA_VERSION_FEATURE = "metadata.version"


class AdminError(Exception):
    """An Admin call failed; the message names the call and Kafka's error."""

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        # In a NotReady condition the reason is the failing exception's class, as in Strimzi.
        self.strimzi_reason = type(cause).__name__ if cause is not None else "KafkaException"
        self.transient = cause is not None and _transient(cause)


# Errors that say "the client's view of the cluster is stale or a broker is away", not "Kafka refused":
# a roll makes these normal for a moment (a restarted broker is unknown to a client's old metadata).
_TRANSIENT = (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, BrokerNotAvailableError,
              UnknownBrokerIdError, RequestTimedOutError, NotControllerError, OSError)


def _transient(error: BaseException) -> bool:
    return isinstance(error, _TRANSIENT) or bool(getattr(error, "retriable", False))


def topic_id_string(raw: Any) -> str | None:
    """Kafka prints topic ids as base64url(16 bytes) without padding (``Uuid.toString``), as Strimzi does."""
    if raw is None:
        return None
    try:
        u = raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))
    except ValueError:
        return str(raw)
    return base64.urlsafe_b64encode(u.bytes).decode("ascii").rstrip("=")


class OperatorAdmin:
    def __init__(self, bootstrap: Callable[[], str], *, client_id: str) -> None:
        self._bootstrap = bootstrap  # re-read on reconnect: brokers come and go on scaling
        self._client_id = client_id
        self._client: KafkaAdminClient | None = None

    async def _call(self, what: str, fn: Callable[[KafkaAdminClient], T]) -> T:
        def run(bootstrap: str) -> T:
            if self._client is None:
                self._client = KafkaAdminClient(
                    bootstrap_servers=bootstrap, client_id=self._client_id,
                    request_timeout_ms=15000,
                )
            return fn(self._client)

        for attempt in (1, 2):
            try:
                # The bootstrap list is read here, on the loop that owns the pods, not in the thread.
                return await asyncio.to_thread(run, self._bootstrap())
            except (KafkaError, OSError, ValueError, AssertionError) as e:
                await asyncio.to_thread(self.reset)  # closing may wait on sockets: not on the loop
                # One retry on a fresh connection (fresh metadata) when the error says "stale view".
                if attempt == 1 and _transient(e):
                    await asyncio.sleep(0.5)
                    continue
                raise AdminError(f"{what} failed: {type(e).__name__}: {e}", cause=e) from e
        raise AssertionError("unreachable")

    def reset(self) -> None:
        """Drop the connection; the next call reconnects (to the current bootstrap list)."""
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # closing a broken client must not hide the original error
                log.debug("closing admin client failed", exc_info=True)

    close = reset

    # -- cluster -----------------------------------------------------------------------------
    async def broker_ids(self) -> list[int]:
        desc = await self._call("describeCluster", lambda a: a.describe_cluster())
        return sorted(int(b["broker_id"]) for b in desc["brokers"])

    async def broker_racks(self) -> dict[int, str | None]:
        """Live (unfenced) broker id -> broker.rack, from DescribeCluster."""
        desc = await self._call("describeCluster", lambda a: a.describe_cluster())
        return {int(b["broker_id"]): (b.get("rack") or None) for b in desc["brokers"] if not b.get("is_fenced")}

    async def partition_sizes(self, brokers: Iterable[int]) -> dict[tuple[str, int], dict[int, int]]:
        """(topic, partition) -> broker -> bytes on that broker (DescribeLogDirs, one broker at a time)."""
        sizes: dict[tuple[str, int], dict[int, int]] = {}
        for broker in sorted(brokers):
            def ask(a: KafkaAdminClient, broker: int = broker) -> list[dict[str, Any]]:
                answers: list[dict[str, Any]] = a.describe_log_dirs(brokers=[broker])
                return answers

            answers = await self._call(f"describeLogDirs (broker {broker})", ask)
            for answer in answers:
                for log_dir in answer.get("log_dirs") or []:
                    for topic in log_dir.get("topics") or []:
                        for p in topic.get("partitions") or []:
                            if not p.get("is_future_key"):
                                key = (str(topic["name"]), int(p["partition_index"]))
                                sizes.setdefault(key, {})[int(answer.get("broker", broker))] = \
                                    int(p.get("partition_size") or 0)
        return sizes

    async def reassign(self, targets: Mapping[tuple[str, int], list[int] | None]) -> dict[str, str]:
        """AlterPartitionReassignments (None cancels); the partitions Kafka refused, with its error."""
        if not targets:
            return {}
        wanted = {TopicPartition(t, p): replicas for (t, p), replicas in targets.items()}
        answer = await self._call("alterPartitionReassignments", lambda a: a.alter_partition_reassignments(wanted))
        return {f"{tp.topic}-{tp.partition}": getattr(error, "__name__", str(error))
                for tp, error in answer.items()
                if error is not None and getattr(error, "__name__", "") != "NoReassignmentInProgressError"}

    async def reassignments_in_flight(self) -> set[tuple[str, int]]:
        moving = await self._call("listPartitionReassignments", lambda a: a.list_partition_reassignments())
        return {(tp.topic, tp.partition) for tp in moving}

    async def elect_preferred_leaders(self, partitions: Iterable[tuple[str, int]]) -> None:
        wanted: dict[str, list[int]] = {}
        for topic, partition in partitions:
            wanted.setdefault(topic, []).append(partition)
        if wanted:
            await self._call("electLeaders", lambda a: a.elect_leaders(0, wanted, raise_errors=False))

    async def quorum(self) -> tuple[int, list[VoterState]]:
        """(leader id, voters) of the KRaft metadata quorum."""
        desc = await self._call("describeMetadataQuorum", lambda a: a.describe_metadata_quorum())
        part = desc["topics"][0]["partitions"][0]
        voters = [VoterState(int(v["replica_id"]), int(v.get("last_caught_up_timestamp", -1)))
                  for v in part.get("current_voters", [])]
        return int(part.get("leader_id", -1)), voters

    async def metadata_level(self) -> int:
        feats = await self._call("describeFeatures", lambda a: a.describe_features())
        finalized = feats.get(METADATA_VERSION_FEATURE, {}).get("finalized")
        if not finalized:
            raise AdminError("describeFeatures returned no finalized metadata.version")
        return int(finalized[1])

    async def update_metadata_level(self, level: int, *, downgrade: bool) -> None:
        """UpdateFeatures on metadata.version ONLY (never the other features: kraft.version must stay)."""
        upgrade_type = "SAFE_DOWNGRADE" if downgrade else "UPGRADE"
        result = await self._call(
            "updateFeatures",
            lambda a: a.update_features({METADATA_VERSION_FEATURE: (upgrade_type, level)}),
        )
        outcome = result.get(METADATA_VERSION_FEATURE, "OK")
        if outcome != "OK":
            raise AdminError(f"updateFeatures metadata.version={level}: {outcome}")

    # -- topics and partitions ---------------------------------------------------------------
    async def describe_all_topics(self) -> list[dict[str, Any]]:
        return await self._call("describeTopics", lambda a: a.describe_topics())

    async def partitions(self) -> list[PartitionReplicas]:
        topics = await self.describe_all_topics()
        out = []
        for t in topics:
            for p in t.get("partitions") or []:
                out.append(PartitionReplicas(
                    t["name"], int(p["partition_index"]),
                    tuple(int(r) for r in p.get("replica_nodes") or []),
                    tuple(int(r) for r in p.get("isr_nodes") or []),
                ))
        return out

    async def min_isr_by_topic(self, topics: Iterable[str]) -> dict[str, int]:
        names = sorted(set(topics))
        if not names:
            return {}
        resources = [ConfigResource(ConfigResourceType.TOPIC, n, ["min.insync.replicas"]) for n in names]
        desc = await self._call("describeConfigs", lambda a: a.describe_configs(resources, config_filter="all"))
        out: dict[str, int] = {}
        for name, configs in desc.get("topic", {}).items():
            value = (configs.get("min.insync.replicas") or {}).get("value")
            out[name] = int(value) if value is not None else 1
        return out

    async def topic_overrides(self, topics: Iterable[str]) -> dict[str, dict[str, str]]:
        """Per topic, the configs set on the topic itself (DYNAMIC_TOPIC_CONFIG), in one call."""
        names = sorted(set(topics))
        if not names:
            return {}
        res = [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
        desc = await self._call("describeConfigs", lambda a: a.describe_configs(res, config_filter="all"))
        out: dict[str, dict[str, str]] = {}
        for name, configs in desc.get("topic", {}).items():
            out[name] = {k: str(v.get("value")) for k, v in configs.items()
                         if v.get("config_source") == "DYNAMIC_TOPIC_CONFIG" and v.get("value") is not None}
        return out

    async def create_topic(self, name: str, *, partitions: int, replicas: int, configs: Mapping[str, str]) -> None:
        spec = {name: {"num_partitions": partitions, "replication_factor": replicas, "configs": dict(configs)}}
        await self._call("createTopics", lambda a: a.create_topics(spec))

    async def create_partitions(self, name: str, total: int) -> None:
        await self._call("createPartitions", lambda a: a.create_partitions({name: total}))

    async def delete_topic(self, name: str) -> None:
        await self._call("deleteTopics", lambda a: a.delete_topics([name]))

    async def alter_topic_configs(self, name: str, to_set: Mapping[str, str], to_delete: Iterable[str]) -> None:
        ops: dict[str, Any] = dict(to_set)
        ops.update({k: ("DELETE", None) for k in to_delete})
        if not ops:
            return
        res = [ConfigResource(ConfigResourceType.TOPIC, name, ops)]
        result = await self._call("incrementalAlterConfigs",
                                  lambda a: a.alter_configs(res, raise_on_unknown=False, incremental=True))
        _raise_on_config_errors(result)

    # -- broker configs ----------------------------------------------------------------------
    async def alter_configs(self, rtype: ConfigResourceType, name: str, to_set: Mapping[str, str],
                            to_delete: Iterable[str] = ()) -> None:
        """IncrementalAlterConfigs on one broker or topic (throttles, for the Cruise Control twin)."""
        ops: dict[str, Any] = dict(to_set)
        ops.update({k: ("DELETE", None) for k in to_delete})
        if ops:
            res = [ConfigResource(rtype, name, ops)]
            result = await self._call("incrementalAlterConfigs",
                                      lambda a: a.alter_configs(res, raise_on_unknown=False, incremental=True))
            _raise_on_config_errors(result)

    async def alter_broker_configs(self, node_id: int, to_set: Mapping[str, str], to_delete: Iterable[str]) -> None:
        """Per-broker dynamic config through IncrementalAlterConfigs (Strimzi's dynamic reconfiguration)."""
        ops: dict[str, Any] = dict(to_set)
        ops.update({k: ("DELETE", None) for k in to_delete})
        if not ops:
            return
        res = [ConfigResource(ConfigResourceType.BROKER, str(node_id), ops)]
        result = await self._call("incrementalAlterConfigs",
                                  lambda a: a.alter_configs(res, raise_on_unknown=False, incremental=True))
        _raise_on_config_errors(result)

    # -- SCRAM credentials (the User Operator's) ---------------------------------------------
    async def scram_users(self) -> set[str]:
        """Users with a SCRAM-SHA-512 credential (DescribeUserScramCredentials)."""
        described = await self._call("describeUserScramCredentials",
                                     lambda a: a.describe_user_scram_credentials())
        return {user for user, info in described.items() if not info.get("error") and any(
            c["mechanism"] == ScramMechanism.SCRAM_SHA_512 for c in info.get("credential_infos") or [])}

    async def set_scram_password(self, user: str, password: str) -> None:
        """AlterUserScramCredentials upsert: SCRAM-SHA-512, 4096 iterations (Strimzi's and Kafka's default)."""
        change = [UserScramCredentialUpsertion(user, ScramMechanism.SCRAM_SHA_512, password, iterations=4096)]
        self._raise_on_user_errors(await self._call(
            "alterUserScramCredentials", lambda a: a.alter_user_scram_credentials(change)))

    async def delete_scram_user(self, user: str) -> None:
        change = [UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512)]
        self._raise_on_user_errors(await self._call(
            "alterUserScramCredentials", lambda a: a.alter_user_scram_credentials(change)))

    @staticmethod
    def _raise_on_user_errors(result: Mapping[str, str | None]) -> None:
        errors = [f"user {user}: {error}" for user, error in result.items() if error]
        if errors:
            raise AdminError("alterUserScramCredentials: " + "; ".join(errors))


def _raise_on_config_errors(result: Mapping[str, Mapping[str, Any]]) -> None:
    errors = [f"{rtype} {name}: {outcome}" for rtype, per in result.items()
              for name, outcome in per.items() if outcome != "OK"]
    if errors:
        raise AdminError("incrementalAlterConfigs: " + "; ".join(errors))
