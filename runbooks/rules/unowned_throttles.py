"""Replication throttles that no run owns, and the ``kafka-configs.sh`` commands that clear them.

A throttle left on (by hand, by another tool, or by a run that crashed before its cleanup) caps
every out-of-sync follower of the listed partitions for as long as it stays, long after anyone
remembers it. The runbooks that move replicas set throttles and clear them in a cleanup step; while
one of them is active on a cluster, the throttles there are its own. Otherwise they are unowned and
the health check says so, with the exact commands to clear them: the bot never clears them itself,
since it cannot know what another tool still needs.

``kafka-configs.sh --alter --delete-config`` refuses a key that is not set on the entity, so each
command deletes exactly the keys found set on it, and entities with the same keys share a shell loop.
"""

from __future__ import annotations

import shlex
from collections.abc import Collection, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

# The runbooks that set replication throttles for their moves and clear them in their cleanup step:
# while one of them is active on a cluster, the throttles there are its own.
REPLICA_MOVING_RUNBOOKS = frozenset({"replace-broker", "scale"})

LEADER_RATE, FOLLOWER_RATE = "leader.replication.throttled.rate", "follower.replication.throttled.rate"
LEADER_REPLICAS, FOLLOWER_REPLICAS = "leader.replication.throttled.replicas", "follower.replication.throttled.replicas"
_RATE_NAMES = {LEADER_RATE: "leader", FOLLOWER_RATE: "follower"}
_UNLIMITED = 2**63 - 1  # Kafka's default rate (Long.MAX_VALUE): a set key that throttles nothing
TOPICS_NAMED = 10  # topics named in the summary line; the count says how many more
TOPICS_PER_COMMAND = 40  # topics in one loop: a Slack message holds about 3,000 characters


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class ThrottlesSeen(_Frozen):
    """What a DescribeConfigs poll found: each broker's rate keys in effect (its own or the
    cluster-wide default), the cluster-wide default rate keys where some broker inherits them,
    and each topic's non-empty throttled-replica lists (Kafka's ``partition:broker,...`` or ``*``)."""

    brokers: dict[int, dict[str, str]] = Field(default_factory=dict)
    default_rates: dict[str, str] = Field(default_factory=dict)
    topics: dict[str, dict[str, str]] = Field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.brokers and not self.default_rates and not self.topics

    def own_rates(self, broker: int) -> dict[str, str]:
        """The broker's rate keys that are its own, not the cluster-wide default it inherits. A
        broker's own value equal to the default is taken as the default: deleting the default then
        leaves it, and the next poll shows it as the broker's own."""
        return {k: v for k, v in self.brokers.get(broker, {}).items() if self.default_rates.get(k) != v}


class UnownedThrottles(_Frozen):
    """Throttles on a cluster that no active run owns: what to show and how to clear them."""

    seen: ThrottlesSeen
    summary: tuple[str, ...]
    commands: tuple[str, ...]

    @property
    def broker_count(self) -> int:
        return len(self.seen.brokers)

    @property
    def topic_count(self) -> int:
        return len(self.seen.topics)


def owned(active_runbooks: Collection[str]) -> bool:
    """Whether one of the cluster's active runs (by runbook name) is one that moves replicas."""
    return any(name in REPLICA_MOVING_RUNBOOKS for name in active_runbooks)


def unowned_throttles(seen: ThrottlesSeen, active_runbooks: Collection[str], bootstrap: str
                      ) -> UnownedThrottles | None:
    """The throttles of ``seen`` when there are any and none of ``active_runbooks`` (the runbook
    names of the cluster's active runs) moves replicas; None otherwise."""
    if seen.empty or owned(active_runbooks):
        return None
    return UnownedThrottles(seen=seen, summary=tuple(summary_lines(seen)),
                            commands=tuple(clear_commands(seen, bootstrap)))


def rate_text(value: str) -> str:
    """``52428800`` -> ``50 MiB/s`` (binary units, one decimal at most); Kafka's unlimited default
    as such; anything else as it is."""
    try:
        rate = int(value)
    except ValueError:
        return value
    if rate >= _UNLIMITED:
        return "unlimited"
    size, unit = float(rate), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            break
        size /= 1024
    return f"{round(size, 1):g} {unit}/s"


def _rates_text(rates: Mapping[str, str]) -> str:
    return ", ".join(f"{_RATE_NAMES.get(k, k)} {rate_text(v)}" for k, v in sorted(rates.items(), reverse=True))


def throttled_replica_count(lists: Mapping[str, str]) -> int | None:
    """Distinct ``partition:broker`` entries over a topic's leader and follower lists; None for ``*``
    (every replica of the topic)."""
    entries: set[str] = set()
    for value in lists.values():
        for entry in value.split(","):
            entry = entry.strip()
            if entry == "*":
                return None
            if entry:
                entries.add(entry)
    return len(entries)


def _ids(brokers: Sequence[int]) -> str:
    return ("broker " if len(brokers) == 1 else "brokers ") + ", ".join(str(b) for b in brokers)


def summary_lines(seen: ThrottlesSeen) -> list[str]:
    """The brokers with their rates (grouped when equal) and the topics with their replica counts."""
    lines: list[str] = []
    by_rates: dict[tuple[tuple[str, str], ...], list[int]] = {}
    inheriting: list[int] = []
    for broker in sorted(seen.brokers):
        own = seen.own_rates(broker)
        if own:
            by_rates.setdefault(tuple(sorted(own.items())), []).append(broker)
        if len(own) < len(seen.brokers[broker]):
            inheriting.append(broker)
    if by_rates:
        lines.append("Broker rates: " + "; ".join(f"{_ids(brokers)}: {_rates_text(dict(rates))}"
                                                  for rates, brokers in by_rates.items()))
    if seen.default_rates:
        users = f" (in effect on {_ids(inheriting)})" if inheriting else ""
        lines.append(f"Cluster-wide default rate{users}: {_rates_text(seen.default_rates)}")
    if seen.topics:
        named = []
        for topic in sorted(seen.topics)[:TOPICS_NAMED]:
            count = throttled_replica_count(seen.topics[topic])
            named.append(f"{topic} ({'all replicas' if count is None else _replicas(count)})")
        more = len(seen.topics) - TOPICS_NAMED
        lines.append("Topics with throttled replicas: " + ", ".join(named) + (f" and {more} more" if more > 0 else ""))
    return lines


def _replicas(count: int) -> str:
    return f"{count} throttled replica{'' if count == 1 else 's'}"


def clear_commands(seen: ThrottlesSeen, bootstrap: str) -> list[str]:
    """The ``kafka-configs.sh`` lines that delete every throttle of ``seen``: per broker its own rate
    keys, the cluster-wide default with ``--entity-default``, per topic its lists; entities with the
    same keys in one loop."""
    tool = f"kafka-configs.sh --bootstrap-server {shlex.quote(bootstrap)}"
    commands: list[str] = []
    brokers: dict[tuple[str, ...], list[str]] = {}
    for broker in sorted(seen.brokers):
        own = seen.own_rates(broker)
        if own:
            brokers.setdefault(tuple(sorted(own, reverse=True)), []).append(str(broker))
    for keys, ids in brokers.items():
        commands.append(_delete(tool, "brokers", "id", ids, keys))
    if seen.default_rates:
        commands.append(f"{tool} --entity-type brokers --entity-default --alter --delete-config "
                        f"{','.join(sorted(seen.default_rates, reverse=True))}")
    topics: dict[tuple[str, ...], list[str]] = {}
    for topic in sorted(seen.topics):
        topics.setdefault(tuple(sorted(seen.topics[topic], reverse=True)), []).append(topic)
    left = 0
    for keys, names in topics.items():
        shown, rest = names[:TOPICS_PER_COMMAND], names[TOPICS_PER_COMMAND:]
        left += len(rest)
        commands.append(_delete(tool, "topics", "t", [shlex.quote(n) for n in shown], keys))
    if left:
        commands.append(f"# and {left} more topics: this alert lists them once these are cleared")
    return commands


def _delete(tool: str, entity_type: str, variable: str, names: Sequence[str], keys: Sequence[str]) -> str:
    delete = f"--alter --delete-config {','.join(keys)}"
    if len(names) == 1:
        return f"{tool} --entity-type {entity_type} --entity-name {names[0]} {delete}"
    return (f"for {variable} in {' '.join(names)}; do {tool} --entity-type {entity_type} "
            f"--entity-name \"${variable}\" {delete}; done")
