"""Run records in Redis: versioned JSON documents with compare-and-set, indexes and an audit stream.

The store is generic over JSON documents; the worker converts its pydantic models. Every write
that changes a run is one Lua script, so the record, its version, its audit entry and the
indexes change together or not at all: a crash between "saved" and "audited" cannot happen.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bot.store.codec import JsonText, from_json, new_op_token, require_decoded, to_json
from bot.store.errors import ClusterHeld, RunExists, VersionConflict, translate_errors
from bot.store.keys import Keys
from bot.store.replication import ReplicaWait, run_script

Document = dict[str, Any]
Writable = Document | JsonText  # what a write takes: a dict, or its JSON text already encoded
AuditArg = Writable | Sequence[Writable] | None


@dataclass(frozen=True)
class Event:
    """A message to publish with a write: ``header``, a newline, then the document as written.
    Published by the write's own script, so subscribers hear of a write if and only if it happened."""

    channel: str
    header: str

    def __post_init__(self) -> None:
        if not self.channel or "\n" in self.header:
            raise ValueError("an event needs a channel and a one-line header")


def _event_args(event: Event | None) -> list[str]:
    return [event.channel, event.header] if event is not None else ["", ""]


def _audit_args(audit: AuditArg) -> tuple[str, list[str]]:
    """The first entry and the rest, encoded: one decision may make several transitions."""
    entries = [audit] if isinstance(audit, dict | JsonText) else list(audit or ())
    encoded = [to_json(e, "audit entry") for e in entries]
    return (encoded[0] if encoded else ""), encoded[1:]

# KEYS: run, audit, active_all, active_cluster, recent_all, recent_cluster, seq[, lock, fence]
# ARGV: run_id, doc, cluster, audit entry ('' = none), op token, recent cap,
#       event channel ('' = none), event header, token field ('' = take no lock), more audit entries...
# Returns {1, fencing token (1 when no lock is taken)} | {0, current version} (the id is taken)
#       | {-1, holder} (another run holds the cluster). Only the first writes anything.
# With a token field, the run takes the cluster's lock in the same step, and its document (an
# object without that field) gets the lock's fencing token as its first field.
_CREATE = """
local locking = ARGV[9] ~= ''
local holder = {false, false}
if locking then
  holder = redis.call('HMGET', KEYS[8], 'run', 'token')
  if holder[1] and holder[1] ~= ARGV[1] then return {-1, holder[1]} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  local cur = redis.call('HMGET', KEYS[1], 'version', 'op')
  if cur[1] == '1' and cur[2] == ARGV[5] then  -- our own create, retried
    return {1, tonumber(holder[2]) or 1}
  end
  return {0, tonumber(cur[1]) or 0}
end
local doc = ARGV[2]
local token = 1
if locking then
  token = tonumber(holder[2]) or redis.call('INCR', KEYS[9])
  redis.call('HSET', KEYS[8], 'run', ARGV[1], 'token', token)
  doc = '{"' .. ARGV[9] .. '":' .. token .. ',' .. string.sub(doc, 2)
end
local seq = redis.call('INCR', KEYS[7])
redis.call('HSET', KEYS[1], 'doc', doc, 'version', 1, 'cluster', ARGV[3], 'seq', seq, 'op', ARGV[5])
if ARGV[4] ~= '' then redis.call('XADD', KEYS[2], '*', 'entry', ARGV[4], 'version', 1) end
for i = 10, #ARGV do redis.call('XADD', KEYS[2], '*', 'entry', ARGV[i], 'version', 1) end
redis.call('ZADD', KEYS[3], seq, ARGV[1])
redis.call('ZADD', KEYS[4], seq, ARGV[1])
local cap = tonumber(ARGV[6])
redis.call('ZADD', KEYS[5], seq, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -cap - 1)
redis.call('ZADD', KEYS[6], seq, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -cap - 1)
if ARGV[7] ~= '' then redis.call('PUBLISH', ARGV[7], ARGV[8] .. '\\n' .. doc) end
return {1, token}
"""

# KEYS: run, audit, active_all, active_cluster
# ARGV: run_id, doc, expected version, audit entry ('' = none), active ('1'/'0'), op token,
#       event channel ('' = none), event header, more audit entries...
# Returns {1, new_version} | {0, current_version} | {-1, 0} (no such run).
_SAVE = """
local cur = redis.call('HMGET', KEYS[1], 'version', 'op', 'seq')
if not cur[1] then return {-1, 0} end
local version = tonumber(cur[1])
local expected = tonumber(ARGV[3])
if version ~= expected then
  -- The reply to our own successful write was lost and redis-py retried: report success.
  if version == expected + 1 and cur[2] == ARGV[6] then return {1, version} end
  return {0, version}
end
version = version + 1
redis.call('HSET', KEYS[1], 'doc', ARGV[2], 'version', version, 'op', ARGV[6])
if ARGV[4] ~= '' then redis.call('XADD', KEYS[2], '*', 'entry', ARGV[4], 'version', version) end
for i = 9, #ARGV do redis.call('XADD', KEYS[2], '*', 'entry', ARGV[i], 'version', version) end
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[3], 'NX', cur[3], ARGV[1])
  redis.call('ZADD', KEYS[4], 'NX', cur[3], ARGV[1])
else
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
end
if ARGV[7] ~= '' then redis.call('PUBLISH', ARGV[7], ARGV[8] .. '\\n' .. ARGV[2]) end
return {1, version}
"""

_CLUSTER_CACHE_MAX = 10_000
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class RunStore:
    """Versioned run documents, active/recent indexes and per-run audit streams."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "kco", recent_cap: int = 1000,
                 replica_wait: ReplicaWait | None = None) -> None:
        require_decoded(client)
        if recent_cap < 1:
            raise ValueError("recent_cap must be at least 1")
        self._client = client
        self._keys = Keys(prefix)
        self._recent_cap = recent_cap
        # Set: every run write waits for that many replicas (bot.store.replication), or fails.
        self.replica_wait = replica_wait
        self._create = client.register_script(_CREATE)
        self._save = client.register_script(_SAVE)
        # run_id -> cluster. A run never changes cluster, so this cache cannot go stale; it
        # saves a round trip per save (the script must name the per-cluster index key).
        self._cluster_of: dict[str, str] = {}

    @property
    def keys(self) -> Keys:
        return self._keys

    @property
    def client(self) -> aioredis.Redis:
        return self._client

    @property
    def recent_cap(self) -> int:
        return self._recent_cap

    async def create_run(
        self, run_id: str, cluster: str, document: Writable, *, audit: AuditArg = None, event: Event | None = None,
    ) -> int:
        """Store a new run at version 1 and index it as active; :class:`RunExists` if taken.
        ``event``: published in the same atomic step, only if the run was written (see :class:`Event`)."""
        await self._create_run(run_id, cluster, to_json(document, "run document"), audit=audit, event=event)
        return 1

    async def create_run_holding_lock(
        self, run_id: str, cluster: str, document: Writable, *, token_field: str, audit: AuditArg = None,
        event: Event | None = None,
    ) -> int:
        """:meth:`create_run` and :meth:`ClusterLock.acquire` in one atomic step, so a run never holds
        a cluster it was not written for, and the request costs one round trip instead of two.

        ``document`` is a JSON object without ``token_field``: the stored document (and the event's)
        gets the lock's fencing token under that name. Returns the token. Raises
        :class:`ClusterHeld` if another run holds the cluster, :class:`RunExists` if the id is
        taken; either way nothing is written.
        """
        if not _FIELD_NAME.fullmatch(token_field):
            raise ValueError(f"token_field must be a plain field name, got {token_field!r}")
        doc = to_json(document, "run document")
        if not doc.startswith('{"'):
            raise ValueError("a run document must be a non-empty JSON object")
        return await self._create_run(run_id, cluster, doc, audit=audit, event=event, token_field=token_field)

    async def _create_run(self, run_id: str, cluster: str, doc: str, *, audit: AuditArg, event: Event | None,
                          token_field: str = "") -> int:
        k = self._keys
        entry, more = _audit_args(audit)
        keys = [k.run(run_id), k.audit(run_id), k.active_all, k.active_cluster(cluster), k.recent_all,
                k.recent_cluster(cluster), k.run_seq]
        if token_field:
            keys += [k.lock(cluster), k.fence(cluster)]
        with translate_errors(self._client):
            status, value = await run_script(
                self._client, self._create, keys,
                [run_id, doc, cluster, entry, new_op_token(), self._recent_cap, *_event_args(event), token_field,
                 *more],
                self.replica_wait,
            )
        if int(status) == -1:
            raise ClusterHeld(cluster, str(value))
        if int(status) != 1:
            raise RunExists(run_id, int(value) or None)
        self._remember_cluster(run_id, cluster)
        return int(value)

    async def load_run(self, run_id: str) -> tuple[Document, int] | None:
        """The stored document and its version, or None if there is no such run."""
        with translate_errors(self._client):
            raw_doc, raw_version, cluster = await self._client.hmget(
                self._keys.run(run_id), ["doc", "version", "cluster"]
            )
        if raw_doc is None or raw_version is None:
            return None
        if cluster is not None:
            self._remember_cluster(run_id, str(cluster))
        return from_json(str(raw_doc), f"run {run_id}"), int(raw_version)

    async def save_run(
        self,
        run_id: str,
        document: Writable,
        *,
        expected_version: int,
        audit: AuditArg = None,
        active: bool = True,
        event: Event | None = None,
    ) -> int:
        """Compare-and-set: write ``document`` only if the stored version is ``expected_version``.

        In the same atomic step: bump the version, append ``audit`` to the run's audit stream and
        set the run's membership of the active indexes to ``active``, and publish ``event``.
        Returns the new version; raises :class:`VersionConflict` (and changes nothing) otherwise.
        """
        k = self._keys
        doc = to_json(document, "run document")
        entry, more = _audit_args(audit)
        cluster = await self._cluster(run_id)
        if cluster is None:
            raise VersionConflict(run_id, expected_version, None)
        with translate_errors(self._client):
            status, version = await run_script(
                self._client, self._save, [k.run(run_id), k.audit(run_id), k.active_all, k.active_cluster(cluster)],
                [run_id, doc, int(expected_version), entry, "1" if active else "0", new_op_token(),
                 *_event_args(event), *more],
                self.replica_wait,
            )
        status, version = int(status), int(version)
        if status == 1:
            return version
        raise VersionConflict(run_id, expected_version, version if status == 0 else None)

    async def active_runs(self, cluster: str | None = None) -> list[str]:
        """Run ids not yet finished, oldest first."""
        key = self._keys.active_all if cluster is None else self._keys.active_cluster(cluster)
        with translate_errors(self._client):
            members = await self._client.zrange(key, 0, -1)
        return [str(m) for m in members]

    async def recent_runs(self, cluster: str | None = None, limit: int = 20) -> list[str]:
        """Run ids newest first, finished ones included (the index keeps the last ``recent_cap``)."""
        if limit <= 0:
            return []
        key = self._keys.recent_all if cluster is None else self._keys.recent_cluster(cluster)
        with translate_errors(self._client):
            members = await self._client.zrevrange(key, 0, limit - 1)
        return [str(m) for m in members]

    async def audit_entries(self, run_id: str) -> list[Document]:
        """The run's audit entries exactly as appended, oldest first."""
        with translate_errors(self._client):
            records = await self._client.xrange(self._keys.audit(run_id), "-", "+")
        entries: list[Document] = []
        for entry_id, fields in records or []:
            if not fields or "entry" not in fields:
                continue  # not written by this store (e.g. a hand-added entry); skip, do not fail
            entries.append(from_json(str(fields["entry"]), f"audit entry {entry_id!s} of run {run_id}"))
        return entries

    async def append_audit(self, run_id: str, entry: Writable) -> str:
        """Append an entry outside a transition (e.g. a refused click); returns the stream id."""
        raw = to_json(entry, "audit entry")
        with translate_errors(self._client):
            entry_id = await self._client.xadd(self._keys.audit(run_id), {"entry": raw})
        return str(entry_id)

    async def _cluster(self, run_id: str) -> str | None:
        cached = self._cluster_of.get(run_id)
        if cached is not None:
            return cached
        with translate_errors(self._client):
            cluster = await self._client.hget(self._keys.run(run_id), "cluster")
        if cluster is None:
            return None
        self._remember_cluster(run_id, str(cluster))
        return str(cluster)

    def _remember_cluster(self, run_id: str, cluster: str) -> None:
        if len(self._cluster_of) >= _CLUSTER_CACHE_MAX:
            self._cluster_of.clear()  # crude bound; a miss costs one HGET
        self._cluster_of[run_id] = cluster
