"""One run superseding another: the new run is written, the old one finished, and the cluster's
lock passed from the old to the new, in one atomic step.

An undo replaces the paused run it undoes. Done as "finish the old run (release the lock), then
create the new one (take it)", another request could take the cluster in between and the undo
would be refused on a cluster broken by the very run it repairs; done the other way round, the new
run would be written while the old still holds the cluster. One script does all of it: the old
run must still hold the lock and still be at the version its caller judged, the new run gets a
fresh fencing token (so any step of the old run still in flight is fenced out), and both writes
are published, or nothing at all happens.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.store.codec import new_op_token, to_json
from bot.store.errors import ClusterHeld, RunExists, VersionConflict, translate_errors
from bot.store.replication import run_script
from bot.store.runs import _FIELD_NAME, Event, RunStore, Writable

# KEYS: new run, new audit, active_all, active_cluster, recent_all, recent_cluster, seq, lock, fence,
#       old run, old audit
# ARGV: new id, new doc, cluster, op token, recent cap, event channel ('' = none), new header, token field,
#       old id, old doc, old expected version, old header, count of new audit entries, new entries..., old entries...
# Returns {1, token} | {0, version} (the new id is taken) | {-1, holder} (the old run does not hold the lock)
#       | {-2, version} (the old run moved on) | {-3, 0} (no old run). Only {1, ...} writes anything.
_SUPERSEDE = """
local cur = redis.call('HMGET', KEYS[1], 'version', 'op')
if cur[1] then
  if cur[1] == '1' and cur[2] == ARGV[4] then  -- our own write, retried
    return {1, tonumber(redis.call('HGET', KEYS[8], 'token')) or 0}
  end
  return {0, tonumber(cur[1]) or 0}
end
local holder = redis.call('HGET', KEYS[8], 'run')
if holder ~= ARGV[9] then return {-1, holder or ''} end
local old = redis.call('HGET', KEYS[10], 'version')
if not old then return {-3, 0} end
local old_version = tonumber(old)
if old_version ~= tonumber(ARGV[11]) then return {-2, old_version} end
local token = redis.call('INCR', KEYS[9])
redis.call('HSET', KEYS[8], 'run', ARGV[1], 'token', token)
local doc = '{"' .. ARGV[8] .. '":' .. token .. ',' .. string.sub(ARGV[2], 2)
local seq = redis.call('INCR', KEYS[7])
redis.call('HSET', KEYS[1], 'doc', doc, 'version', 1, 'cluster', ARGV[3], 'seq', seq, 'op', ARGV[4])
local count = tonumber(ARGV[13])
for i = 14, 13 + count do redis.call('XADD', KEYS[2], '*', 'entry', ARGV[i], 'version', 1) end
redis.call('ZADD', KEYS[3], seq, ARGV[1])
redis.call('ZADD', KEYS[4], seq, ARGV[1])
local cap = tonumber(ARGV[5])
redis.call('ZADD', KEYS[5], seq, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -cap - 1)
redis.call('ZADD', KEYS[6], seq, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -cap - 1)
old_version = old_version + 1
redis.call('HSET', KEYS[10], 'doc', ARGV[10], 'version', old_version, 'op', ARGV[4])
for i = 14 + count, #ARGV do redis.call('XADD', KEYS[11], '*', 'entry', ARGV[i], 'version', old_version) end
redis.call('ZREM', KEYS[3], ARGV[9])
redis.call('ZREM', KEYS[4], ARGV[9])
if ARGV[6] ~= '' then
  redis.call('PUBLISH', ARGV[6], ARGV[12] .. '\\n' .. ARGV[10])
  redis.call('PUBLISH', ARGV[6], ARGV[7] .. '\\n' .. doc)
end
return {1, token}
"""


def _entries(audit: Sequence[Writable]) -> list[str]:
    return [to_json(e, "audit entry") for e in audit]


class Supersessions:
    """``create_run_superseding`` over a :class:`RunStore`'s keys and client."""

    def __init__(self, runs: RunStore) -> None:
        self._runs = runs
        self._client = runs.client
        self._script = runs.client.register_script(_SUPERSEDE)

    async def create_run_superseding(
        self, run_id: str, cluster: str, document: Writable, *, token_field: str, audit: Sequence[Writable],
        superseded_id: str, superseded_document: Writable, superseded_version: int,
        superseded_audit: Sequence[Writable], events: tuple[Event, Event] | None = None,
    ) -> int:
        """Write the new run holding the cluster's lock with a new fencing token (returned), and the
        superseded run's finished document (no longer active) at ``superseded_version`` + 1, both
        audited and both published (``events``: the new run's, then the old run's). Raises
        :class:`ClusterHeld` if the superseded run does not hold the lock, :class:`VersionConflict`
        if it moved since ``superseded_version``, :class:`RunExists` if the new id is taken: then
        nothing is written."""
        if not _FIELD_NAME.fullmatch(token_field):
            raise ValueError(f"token_field must be a plain field name, got {token_field!r}")
        doc = to_json(document, "run document")
        if not doc.startswith('{"'):
            raise ValueError("a run document must be a non-empty JSON object")
        keys = self._runs.keys
        new_entries, old_entries = _entries(audit), _entries(superseded_audit)
        channel = events[0].channel if events else ""
        headers = (events[0].header, events[1].header) if events else ("", "")
        with translate_errors(self._client):
            status, value = await run_script(
                self._client, self._script,
                [keys.run(run_id), keys.audit(run_id), keys.active_all, keys.active_cluster(cluster),
                 keys.recent_all, keys.recent_cluster(cluster), keys.run_seq, keys.lock(cluster),
                 keys.fence(cluster), keys.run(superseded_id), keys.audit(superseded_id)],
                [run_id, doc, cluster, new_op_token(), self._runs.recent_cap, channel, headers[0], token_field,
                 superseded_id, to_json(superseded_document, "run document"), int(superseded_version),
                 headers[1], len(new_entries), *new_entries, *old_entries],
                self._runs.replica_wait,
            )
        status = int(status)
        if status == 1:
            return int(value)
        if status == -1:
            raise ClusterHeld(cluster, str(value) or "nobody")
        if status == 0:
            raise RunExists(run_id, int(value) or None)
        raise VersionConflict(superseded_id, superseded_version, int(value) if status == -2 else None)

