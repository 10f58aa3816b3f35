"""The Topic Operator: KafkaTopic objects become real topics (Strimzi's unidirectional TO).

For every KafkaTopic labelled ``strimzi.io/cluster=<cluster>``: create the topic (partitions,
replicas, config; unset = the broker's defaults), grow partitions, set and remove topic configs,
and report ``status.conditions`` (Ready / NotReady), ``topicName``, ``topicId`` and
``observedGeneration``. A finalizer (``strimzi.io/topic-operator``) makes deleting the KafkaTopic
delete the topic first. Decreasing partitions and changing the replication factor are refused as
Strimzi does without Cruise Control (reason ``NotSupported``); Kafka's own refusals are reported
with reason ``KafkaError``. ``strimzi.io/managed: "false"`` and ``pause-reconciliation`` are honoured.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.sandbox.kube.store import ApiError, ObjectStore
from bot.sandbox.operator import names
from bot.sandbox.operator import status as st
from bot.sandbox.operator.brokerconfig import render_value
from bot.sandbox.operator.kafka_admin import AdminError, OperatorAdmin, topic_id_string

log = logging.getLogger(__name__)
FINALIZER = "strimzi.io/topic-operator"
# Like Strimzi's Topic Operator, the twin makes a topic's config what its KafkaTopic says and deletes
# what it does not, throttled-replica lists included (strimzi#9972: a throttled reassignment then
# copies unthrottled). Strimzi leaves these keys to Cruise Control when the Kafka deploys it; so does
# the twin. Without Cruise Control they are stripped, as a real cluster may: the bot must cope.
THROTTLED_REPLICAS_KEYS = ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas")


class TopicProblem(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TopicOperator:
    def __init__(self, store: ObjectStore, *, namespace: str, cluster: str) -> None:
        self.store = store
        self.namespace = namespace
        self.cluster = cluster

    async def reconcile_all(self, admin: OperatorAdmin) -> None:
        kts, _ = self.store.list(names.KAFKA_GROUP, names.TOPICS, self.namespace,
                                 label_selector=f"{names.LABEL_CLUSTER}={self.cluster}")
        if not kts:
            return
        existing = {t["name"]: t for t in await admin.describe_all_topics()}
        wanted = {str((kt.get("spec") or {}).get("topicName") or kt["metadata"]["name"]) for kt in kts}
        overrides = await admin.topic_overrides(wanted & set(existing))  # one call for all topics
        kept = THROTTLED_REPLICAS_KEYS if self._cruise_control() else ()
        claimed: dict[str, str] = {}
        for kt in kts:
            meta = kt["metadata"]
            topic = str((kt.get("spec") or {}).get("topicName") or meta["name"])
            owner = claimed.setdefault(topic, meta["name"])
            try:
                if owner != meta["name"]:
                    raise TopicProblem("ResourceConflict", f"Managed by Ref{{namespace='{self.namespace}', "
                                       f"name='{owner}'}}")
                await self._reconcile_one(admin, kt, topic, existing, overrides.get(topic, {}), kept)
            except TopicProblem as e:
                self._write_status(kt, topic, None, [st.not_ready(e.reason, str(e))])
            except AdminError as e:
                self._write_status(kt, topic, None, [st.not_ready("KafkaError", str(e))])

    def _cruise_control(self) -> bool:
        """Whether the Kafka deploys Cruise Control (``spec.cruiseControl``)."""
        try:
            kafka = self.store.get(names.KAFKA_GROUP, names.KAFKAS, self.namespace, self.cluster)
        except ApiError:
            return False
        return (kafka.get("spec") or {}).get("cruiseControl") is not None

    async def _reconcile_one(self, admin: OperatorAdmin, kt: dict[str, Any], topic: str,
                             existing: dict[str, dict[str, Any]], current_cfg: dict[str, str],
                             kept: tuple[str, ...] = ()) -> None:
        meta = kt["metadata"]
        annotations = meta.get("annotations") or {}
        unmanaged = str(annotations.get(names.ANNO_TOPIC_MANAGED, "true")).lower() == "false"
        if meta.get("deletionTimestamp"):
            if FINALIZER in (meta.get("finalizers") or []):
                if topic in existing and not unmanaged:
                    await admin.delete_topic(topic)
                    log.info("KafkaTopic %s deleted: topic %s deleted", meta["name"], topic)
                self._set_finalizer(kt, present=False)
            return
        if names.is_true(annotations, names.ANNO_PAUSE):
            self._write_status(kt, topic, None, [st.paused()], keep_generation=True)
            return
        if unmanaged:
            self._set_finalizer(kt, present=False)
            self._write_status(kt, topic, None, [st.ready()])
            return
        self._set_finalizer(kt, present=True)
        spec = kt.get("spec") or {}
        partitions = int(spec.get("partitions") or -1)
        replicas = int(spec.get("replicas") or -1)
        wanted_cfg = {str(k): render_value(v) for k, v in (spec.get("config") or {}).items() if v is not None}
        if topic not in existing:
            await admin.create_topic(topic, partitions=partitions, replicas=replicas, configs=wanted_cfg)
            log.info("KafkaTopic %s: created topic %s", meta["name"], topic)
            existing.update({t["name"]: t for t in await admin.describe_all_topics() if t["name"] == topic})
        else:
            await self._update(admin, topic, existing[topic], partitions, replicas, wanted_cfg,
                               {k: v for k, v in current_cfg.items() if k not in kept})
        topic_id = topic_id_string(existing.get(topic, {}).get("topic_id"))
        self._write_status(kt, topic, topic_id, [st.ready()])

    async def _update(self, admin: OperatorAdmin, topic: str, desc: dict[str, Any], partitions: int,
                      replicas: int, wanted: dict[str, str], current: dict[str, str]) -> None:
        parts = desc.get("partitions") or []
        current_partitions = len(parts)
        if partitions > 0 and partitions < current_partitions:
            raise TopicProblem("NotSupported", "Decreasing partitions not supported")
        current_rf = max((len(p.get("replica_nodes") or []) for p in parts), default=0)
        if replicas > 0 and replicas != current_rf:
            raise TopicProblem("NotSupported", "Replication factor change not supported, but required for "
                               "reconciliation")
        if partitions > current_partitions:
            await admin.create_partitions(topic, partitions)
        to_set = {k: v for k, v in wanted.items() if current.get(k) != v}
        to_delete = [k for k in current if k not in wanted]
        if to_set or to_delete:
            await admin.alter_topic_configs(topic, to_set, to_delete)

    def _set_finalizer(self, kt: dict[str, Any], *, present: bool) -> None:
        finalizers = list(kt["metadata"].get("finalizers") or [])
        if (FINALIZER in finalizers) == present:
            return
        finalizers = [*finalizers, FINALIZER] if present else [f for f in finalizers if f != FINALIZER]
        try:
            self.store.merge_patch(names.KAFKA_GROUP, names.TOPICS, self.namespace, kt["metadata"]["name"],
                                   {"metadata": {"finalizers": finalizers}})
        except ApiError as e:
            log.debug("finalizer of KafkaTopic %s not updated: %s", kt["metadata"]["name"], e)

    def _write_status(self, kt: dict[str, Any], topic: str, topic_id: str | None,
                      conditions: list[dict[str, Any]], *, keep_generation: bool = False) -> None:
        old = kt.get("status") or {}
        generation = old.get("observedGeneration", 0) if keep_generation else kt["metadata"].get("generation", 1)
        new: dict[str, Any] = {"conditions": st.keep_transition_times(conditions, old.get("conditions")),
                               "observedGeneration": generation, "topicName": topic}
        if topic_id or old.get("topicId"):
            new["topicId"] = topic_id or old.get("topicId")
        if st.without_times(new) == st.without_times(old):
            return
        try:
            current = self.store.get(names.KAFKA_GROUP, names.TOPICS, self.namespace, kt["metadata"]["name"])
            current["status"] = new
            self.store.replace(names.KAFKA_GROUP, names.TOPICS, self.namespace, kt["metadata"]["name"], current,
                               subresource="status")
        except ApiError as e:
            log.debug("KafkaTopic %s status not written: %s", kt["metadata"]["name"], e)
