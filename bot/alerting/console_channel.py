"""Alert messages in the console: printed once when posted, printed again (as an update of the same
message id) when edited. ``--json`` prints one object per post or edit, which is what the tests and
scripts read: ``alert_posted`` / ``alert_updated`` with the alert id, the message id and the text."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from handlers.alerting.alert_text import AlertView
from handlers.clusters import ManagedCluster
from runbooks.alerting.lifecycle import MessageRef

CONSOLE_CHANNEL = "console"


def alert_record(event: str, message_id: str, view: AlertView) -> dict[str, Any]:
    return {
        "event": event, "alert_id": view.alert_id, "message_id": message_id, "cluster": view.cluster,
        "condition": view.condition.value, "subject": view.subject, "phase": view.phase.value, "value": view.value,
        "headline": view.headline, "text": view.text,
        "buttons": [{"label": b.label, "action": b.action, "value": b.value} for b in view.buttons],
    }


class ConsoleAlertChannel:
    def __init__(self, emit: Callable[[dict[str, Any] | str], None], *, json_mode: bool) -> None:
        self._emit = emit
        self._json = json_mode

    async def post(self, cluster: ManagedCluster, view: AlertView) -> MessageRef:
        message_id = f"{view.alert_id}.{secrets.token_hex(3)}"
        self._print("alert_posted", message_id, view)
        return MessageRef(channel=CONSOLE_CHANNEL, id=message_id)

    async def update(self, cluster: ManagedCluster, ref: MessageRef, view: AlertView) -> None:
        self._print("alert_updated", ref.id, view)

    def _print(self, event: str, message_id: str, view: AlertView) -> None:
        if self._json:
            self._emit(alert_record(event, message_id, view))
            return
        marker = "alert" if event == "alert_posted" else "alert update"
        actions = [f"[{b.label}: {'snooze ' + view.alert_id + ' ' + b.value if b.action == 'snooze' else b.value}]"
                   for b in view.buttons]
        self._emit("\n".join([f"── {marker} ── {view.text}", *(["   " + " ".join(actions)] if actions else [])]))
