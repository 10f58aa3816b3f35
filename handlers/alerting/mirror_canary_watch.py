"""The canary alert of the mirrors whose target is one managed cluster: every ``mirror_canary.every``
the monitor (one replica: the monitor lease) sends a timestamped record to a mirror's canary topic on
its source (``kafka-chatops-canary-<name>``, the topic the mirror runbook created and wrote into the
resource's ``topicsPattern``, so nothing new is mirrored) and reads its remote topic on the target
under the policy's name. When no canary record arrived for ``max_silence``, ``mirror_canary`` fires
for ``mirror/<name>``, with when the last one arrived, its latency then, and what to check.

The state (sends, the last arrival and its latency, where reading stopped) is kept in the
``CanaryStates`` port, so a replica taking the lease over goes on where the other stopped, and
``/kafka mirror status`` shows the same figures. A mirror the runbook did not set up (no canary topic
in its pattern) has no canary. A probe that fails leaves that mirror's alert as it is: the bot could
not tell whether the mirror copies.

Latency: the record's produce time (the source producer's wall clock) to the moment the monitor read
it on the target. A record that arrives after its probe stopped waiting is read by the next probe,
so its latency is an upper bound, up to one ``every`` too high.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from handlers.alerting.evaluator import AlertEvaluator
from handlers.alerting.lag_models import format_seconds
from handlers.clusters import ManagedCluster
from handlers.mirror_lag import MirrorSource, mirror_sources
from handlers.mirror_ports import MONITOR_MARKER, CanaryStates, MirrorCanary, MirrorMakerStatus
from handlers.ports import ClusterRef
from runbooks.alerting.lifecycle import AlertKey, Condition, MirrorCanaryRule, Observation
from runbooks.alerting.mirror import (
    CanaryState,
    after_probe,
    canary_due,
    canary_silence_s,
    canary_text,
    mirrored_topics,
    remote_topic,
)
from runbooks.catalogue.mirror import canary_topic

log = logging.getLogger(__name__)

MAX_WAIT_S = 5.0  # a probe waits this long at most for its own record (the poll must not overrun)


def canary_source(resource: MirrorMakerStatus) -> tuple[MirrorSource, str, str] | None:
    """The mirror entry that copies ``resource``'s canary topic, the topic and its remote name."""
    topic = canary_topic(resource.name)
    for source in mirror_sources(resource.spec):
        if mirrored_topics([topic], source.topics_pattern, ()):
            remote = remote_topic(topic, source.alias, identity=source.identity, separator=source.separator)
            return source, topic, remote
    return None


def stopped_sources(resource: MirrorMakerStatus) -> str:
    """Why a mirror may be behind on purpose: its source connectors that are not RUNNING (paused or
    stopped through their ``state``, or failed), said in the lag alert."""
    stopped = [f"{c.name} is {c.state}" for c in resource.connectors
               if c.name.endswith(".MirrorSourceConnector") and c.state != "RUNNING"]
    return "; ".join(stopped)


def canary_observation(state: CanaryState, rule: MirrorCanaryRule, now: datetime, why: str = "") -> Observation | None:
    silence = canary_silence_s(state, now)
    if silence < rule.max_silence_s:
        return None
    name = state.mirror
    check = f"the connectors ({why})" if why else "the connectors' state"
    failed = f" The last probe failed: {state.last_error}." if state.last_error else ""
    return Observation(
        key=AlertKey(cluster=state.cluster, condition=Condition.MIRROR_CANARY, subject=f"mirror/{name}"),
        value=silence,
        detail=(f"No canary record sent through MirrorMaker 2 {name} ({state.topic} on {state.source} → "
                f"{state.remote_topic}) arrived for {format_seconds(silence)} "
                f"(≥ {format_seconds(rule.max_silence_s)}); "
                f"{canary_text(state, now)}.{failed} Check {check} and `/kafka mirror status {name}`."),
        facts={"mirror": name, "unit": "s",
               "last_arrival_at": state.last_arrival_at.isoformat() if state.last_arrival_at else None,
               "last_latency_ms": state.last_latency_ms,
               "next_command": f"/kafka mirror status {shlex.quote(name)}", "next_label": "Mirror status"},
    )


class CanaryWatch:
    def __init__(
        self, cluster: ManagedCluster, *, canary: MirrorCanary, states: CanaryStates, evaluator: AlertEvaluator,
        now: Callable[[], datetime], bootstrap: Callable[[], Awaitable[str | None]],
        locate: Callable[[MirrorSource], Awaitable[tuple[ClusterRef, str] | None]],
    ) -> None:
        self.cluster = cluster
        self._canary = canary
        self._states = states
        self._evaluator = evaluator
        self._now = now
        self._bootstrap = bootstrap
        self._locate = locate

    async def check(self, resources: Sequence[MirrorMakerStatus]) -> None:
        rule = self.cluster.alerts.mirror_canary
        if not rule.enabled:
            return
        observations: list[Observation] = []
        unknown: set[str] = set()
        for resource in resources:
            found = canary_source(resource)
            if found is None:
                continue
            try:
                state = await self._probe(resource.name, *found, rule)
            except Exception as exc:  # the state store, or the probe's bookkeeping: unknown
                log.warning("canary of MirrorMaker 2 %s on %s not checked: %s: %s", resource.name, self.cluster.name,
                            type(exc).__name__, exc)
                unknown.add(f"mirror/{resource.name}")
                continue
            if state.last_error is not None:
                unknown.add(f"mirror/{resource.name}")
                continue
            seen = canary_observation(state, rule, self._now(), stopped_sources(resource))
            if seen is not None:
                observations.append(seen)
        await self._evaluator.evaluate(self.cluster, {Condition.MIRROR_CANARY}, observations, unknown)

    async def _probe(self, mirror: str, source: MirrorSource, topic: str, remote: str,
                     rule: MirrorCanaryRule) -> CanaryState:
        """Send and read a canary when one is due; the stored state otherwise."""
        now = self._now()
        state = await self._states.load(self.cluster.name, mirror)
        if state is None or (state.topic, state.remote_topic, state.source) != (topic, remote, source.alias):
            state = CanaryState(cluster=self.cluster.name, mirror=mirror, source=source.alias, topic=topic,
                                remote_topic=remote, watching_since=now)
        if not canary_due(state, now, rule.every_s):
            return state
        located, target = await self._locate(source), await self._bootstrap()
        if located is None or not target:
            return state
        ref, address = located
        marker = f"{MONITOR_MARKER}{mirror}:{int(now.timestamp() * 1000)}"
        try:
            probe = await self._canary.probe(ref, address, topic, self.cluster.ref, target, remote, marker=marker,
                                             positions=state.positions, wait_s=min(MAX_WAIT_S, rule.every_s / 2))
        except Exception as exc:
            log.warning("canary probe of MirrorMaker 2 %s (%s → %s) failed: %s: %s", mirror, topic, remote,
                        type(exc).__name__, exc)
            state = after_probe(state, sent_at=None, arrivals=(), positions=state.positions,
                                error=f"{type(exc).__name__}: {exc}"[:300])
        else:
            state = after_probe(state, sent_at=now, arrivals=probe.arrivals, positions=probe.positions)
        await self._states.save(state)
        return state
