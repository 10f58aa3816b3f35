"""Every Redis key the store touches, named in one place.

Layout: ``<prefix>:<kind>:<id>``. The variable part (a run id or a cluster name) is always the
*last* segment, so two different (kind, id) pairs can never produce the same key even when an id
contains ``:`` (``lock:a:fence`` can only be the lock of cluster ``a:fence``, never a fence key).

Keys are not hash-tagged: ``save_run`` touches a run's record and the global indexes in one
script, which Redis Cluster would refuse anyway. The store targets a single Redis (or a
primary with replicas / Sentinel), which is what a chat-ops bot needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ID_LENGTH = 200
_WHITESPACE = re.compile(r"\s")  # for str patterns, what str.isspace() says is whitespace


def check_id(kind: str, value: str) -> str:
    """Reject ids that would make unreadable or ambiguous keys; returns the value unchanged."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{kind} must be a non-empty string, got {value!r}")
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{kind} is longer than {MAX_ID_LENGTH} characters: {value[:40]!r}...")
    if _WHITESPACE.search(value):
        # Whitespace in a key is legal for Redis but makes redis-cli sessions during an
        # incident error-prone; run ids and cluster names never need it.
        raise ValueError(f"{kind} must not contain whitespace: {value!r}")
    return value


@dataclass(frozen=True)
class Keys:
    prefix: str = "kco"

    def __post_init__(self) -> None:
        check_id("key prefix", self.prefix)

    # --- runs -------------------------------------------------------------------------------
    def run(self, run_id: str) -> str:
        """Hash: doc (JSON), version, cluster, seq (creation order), op (last writer's token)."""
        return f"{self.prefix}:run:{check_id('run_id', run_id)}"

    def audit(self, run_id: str) -> str:
        """Stream: one entry per transition, never trimmed."""
        return f"{self.prefix}:audit:{check_id('run_id', run_id)}"

    @property
    def run_seq(self) -> str:
        """Counter giving each run its creation order (scores of the indexes below)."""
        return f"{self.prefix}:seq:runs"

    @property
    def active_all(self) -> str:
        """Sorted set of active run ids, scored by creation order."""
        return f"{self.prefix}:active"

    def active_cluster(self, cluster: str) -> str:
        return f"{self.prefix}:active-cluster:{check_id('cluster', cluster)}"

    @property
    def recent_all(self) -> str:
        """Sorted set of recent run ids (active and finished), capped, scored by creation order."""
        return f"{self.prefix}:recent"

    def recent_cluster(self, cluster: str) -> str:
        return f"{self.prefix}:recent-cluster:{check_id('cluster', cluster)}"

    # --- coordination -----------------------------------------------------------------------
    def lock(self, cluster: str) -> str:
        """Hash: run (holder run id), token (its fencing token). No TTL, on purpose."""
        return f"{self.prefix}:lock:{check_id('cluster', cluster)}"

    def fence(self, cluster: str) -> str:
        """Counter behind the fencing tokens; never deleted, so tokens only grow."""
        return f"{self.prefix}:fence:{check_id('cluster', cluster)}"

    def lease(self, run_id: str) -> str:
        """String: owner id, with a PX expiry."""
        return f"{self.prefix}:lease:{check_id('run_id', run_id)}"

    def signals(self, run_id: str) -> str:
        """List: pending signals (JSON), oldest first."""
        return f"{self.prefix}:signals:{check_id('run_id', run_id)}"

    @property
    def signals_channel(self) -> str:
        """Pub/sub channel that carries the run id of every published signal (a wake-up hint only)."""
        return f"{self.prefix}:signals-notify"
