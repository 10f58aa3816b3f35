"""Redis adapter: durable runs, the per-cluster lock, run leases, signals and the audit stream.

Everything here talks to Redis through ``redis.asyncio`` and raises only the exceptions below,
so callers never need to import redis. Build a client with :func:`connect`.
"""

from bot.store.client import connect
from bot.store.codec import JsonText
from bot.store.errors import (
    ClusterHeld,
    NotReplicated,
    RunExists,
    SentinelUnavailable,
    StoreError,
    StoreUnavailable,
    UnknownSentinelMaster,
    VersionConflict,
    redact_url,
)
from bot.store.keys import Keys
from bot.store.locks import ClusterLock, RunLease
from bot.store.runs import Event, RunStore
from bot.store.signals import Signals
from bot.store.supersede import Supersessions

__all__ = [
    "ClusterHeld",
    "ClusterLock",
    "Event",
    "JsonText",
    "Keys",
    "NotReplicated",
    "RunExists",
    "RunLease",
    "RunStore",
    "SentinelUnavailable",
    "Signals",
    "StoreError",
    "StoreUnavailable",
    "Supersessions",
    "UnknownSentinelMaster",
    "VersionConflict",
    "connect",
    "redact_url",
]
