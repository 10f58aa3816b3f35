"""The rules for the values of ``/kafka lag``, ``/kafka alerts`` and ``/kafka snooze``: a consumer
group id, an alert id, a snooze duration. Each reads one word and returns it or raises
``InvalidValue`` with text for the person who typed it (see ``handlers.commands.values``)."""

from __future__ import annotations

import re
from datetime import timedelta

from handlers.commands.values import InvalidValue, duration, format_duration, prefixed_id
from handlers.replies import quote

MAX_GROUP_ID = 255  # Kafka sets no limit; a longer "group" is a paste gone wrong
MAX_SNOOZE = timedelta(days=7)
_ALERT_ID = re.compile(r"a-[0-9a-f]{8}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def group_id(token: str) -> str:
    """A consumer group id as Kafka stores it: any text (quote it if it has spaces), without
    control characters."""
    if not token:
        raise InvalidValue("the group id is empty")
    if len(token) > MAX_GROUP_ID:
        raise InvalidValue(f"{quote(token)} is not a consumer group id: it has {len(token)} characters, "
                           f"the limit here is {MAX_GROUP_ID}")
    if _CONTROL.search(token):
        raise InvalidValue(f"{quote(token)} is not a consumer group id: it contains a control character")
    return token


def alert_id(token: str) -> str:
    """An alert id as alert messages and /kafka alerts show it: ``a-`` and 8 hex digits."""
    return prefixed_id(token, _ALERT_ID, prefix="a-", what="alert id", example="a-1b2c3d4e",
                       hint=" (see /kafka alerts <cluster>)")


def snooze_duration(token: str) -> str:
    """How long to snooze, like 30m, 2h or 1d; at most 7 days. Kept as text (normalised, e.g.
    90m -> 1h30m) so a command writes back exactly as it reads."""
    value = duration(token)
    if value > MAX_SNOOZE:
        raise InvalidValue(f"{quote(token)} is too long to snooze: the most is 7d, so the next incident is not "
                           "muted too; fix the cause or change the rule in the clusters file")
    return format_duration(value)
