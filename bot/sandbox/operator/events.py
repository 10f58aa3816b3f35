"""Restart events as Strimzi >= 0.46 publishes them (``KubernetesRestartEventPublisher``).

One ``events.k8s.io/v1`` Event per restart reason: action ``StrimziInitiatedPodRestart``, reason the
PascalCase ``RestartReason``, ``regarding`` the Kafka CR, ``related`` the Pod, note
"Rolling Pod <pod> due to <the reason's note>".
"""

from __future__ import annotations

import logging
from enum import Enum

from bot.sandbox.kube.store import ApiError, ObjectStore
from bot.sandbox.operator import names
from bot.sandbox.operator.status import now_micro

log = logging.getLogger(__name__)
ACTION = "StrimziInitiatedPodRestart"
REPORTING_CONTROLLER = "strimzi.io/cluster-operator"


class RestartReason(Enum):
    """The restart reasons the twin can have, with Strimzi's default notes (RestartReason.java)."""

    CONFIG_CHANGE_REQUIRES_RESTART = "Pod needs to be restarted, because reconfiguration cannot be done dynamically"
    MANUAL_ROLLING_UPDATE = "Pod was manually annotated to be rolled"
    POD_HAS_OLD_REVISION = "Pod has old revision"
    POD_STUCK = "Pod needs to be restarted, because it seems to be stuck and restart might help"

    @property
    def pascal(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def note(self) -> str:
        return str(self.value)


def publish_restart_events(
    store: ObjectStore, *, namespace: str, cluster: str, pod: str, reasons: list[RestartReason],
) -> None:
    for reason in reasons:
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"generateName": "strimzi-event", "namespace": namespace},
            "action": ACTION,
            "reason": reason.pascal,
            "type": "Normal",
            "note": f"Rolling Pod {pod} due to {reason.note}"[:1000],
            "eventTime": now_micro(),
            "reportingController": REPORTING_CONTROLLER,
            "reportingInstance": names.OPERATOR_NAME,
            "regarding": {"kind": "Kafka", "namespace": namespace, "name": cluster},
            "related": {"kind": "Pod", "namespace": namespace, "name": pod},
        }
        try:
            store.create(names.EVENTS_GROUP, names.EVENTS, namespace, body)
        except ApiError as e:  # as in Strimzi: a failed event never fails the roll
            log.warning("restart event for %s not published: %s", pod, e)
