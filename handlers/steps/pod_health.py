"""The rules of ``runbooks.rules.harm`` over the ports: what a step waiting on the operator looks at.

Every step that waits for the operator to act on a change the run made uses them: following one
broker's restart (``follow-roll``), a patch the operator applies live (``patch-kafka`` with
``wait: settled``) and the end of the reconciliation (``await-operator``). Each check answers the
sentence that pauses the run (which broker, what its pod or the Kafka resource says), or None to
keep waiting.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from handlers.ports import BrokerPod, KafkaResourceStatus
from handlers.steps.base import StepContext
from runbooks.engine.models import Step
from runbooks.rules.harm import fatal_condition, overdue, restart_allowance
from runbooks.rules.rolls import BrokerPodState


def pod_state(pod: BrokerPod) -> str:
    """What Kubernetes says about a pod that is not Ready, in its own words."""
    parts = [pod.waiting_reason or ("terminating" if pod.terminating else "running, not Ready")]
    if pod.restart_count:
        parts.append(f"{pod.restart_count} container restart{'s' if pod.restart_count > 1 else ''}")
        if pod.last_exit:
            parts.append(f"last exit: {pod.last_exit}")
    return ", ".join(parts)


def down_text(pod: BrokerPod) -> str:
    return f"broker {pod.node_id} is down (pod {pod.name}: {pod_state(pod)})"


def stuck_pods(pods: Iterable[BrokerPod], *, ignore: Iterable[int] = ()) -> list[BrokerPod]:
    skip = set(ignore)
    return [p for p in pods if p.stuck and p.node_id not in skip]


def operator_verdict(status: KafkaResourceStatus) -> str | None:
    return fatal_condition(ready=status.ready, reason=status.reason, message=status.message,
                           generation=status.generation, observed_generation=status.observed_generation)


def late_pods(pods: Iterable[BrokerPod], candidates: Iterable[BrokerPod], *, now: datetime,
              since: datetime | None) -> str | None:
    """The sentence naming each candidate (a pod the operator created for this change) that is not
    Ready within the allowance the other brokers' own start-up times give; None if all are in time."""
    watched = [p for p in candidates if not p.ready and not p.terminating and (p.created_at or p.started_at)]
    if not watched:
        return None
    ids = {p.node_id for p in watched}
    samples = {p.node_id: s for p in pods if p.node_id not in ids and (s := p.startup_s) is not None}
    allowance = restart_allowance(samples)
    late = []
    for pod in watched:
        born = pod.created_at or pod.started_at
        assert born is not None
        counted_from = max(born, since) if since is not None else born
        if overdue((now - counted_from).total_seconds(), allowance):
            late.append(f"broker {pod.node_id}'s pod {pod.name}, created {(now - born).total_seconds():.0f} s ago, is "
                        f"not Ready ({pod_state(pod)})")
    if not late:
        return None
    return "; ".join(late) + f". A healthy restart here takes at most {allowance.seconds:.0f} s: {allowance.basis}"


async def harm_after_change(ctx: StepContext, step: Step, *, restarted: Iterable[BrokerPod] | None = None,
                            ignore: Iterable[int] = ()) -> str | None:
    """For a step waiting on the operator after the run's change: a stuck broker pod, the operator's
    fatal verdict on the latest spec, or a pod it created (``restarted``; None: every pod not
    Ready) that is not back in time. ``ignore``: brokers whose state is not this step's business."""
    pods = await ctx.gateway.broker_pods(ctx.cluster)
    stuck = stuck_pods(pods, ignore=ignore)
    if stuck:
        return ("; ".join(down_text(p) for p in stuck) + " since the change was applied; the operator cannot bring "
                "it back by waiting")
    verdict = operator_verdict(await ctx.gateway.kafka_status(ctx.cluster))
    if verdict is not None:
        return verdict
    candidates = [p for p in pods if p.node_id not in set(ignore)] if restarted is None else list(restarted)
    return late_pods(pods, candidates, now=ctx.clock.now(), since=step.attempt_started_at)


def pod_states(pods: list[BrokerPod]) -> tuple[BrokerPodState, ...]:
    return tuple(BrokerPodState(id=p.node_id, pod=p.name, uid=p.uid, ready=p.ready, kafka_version=p.kafka_version,
                                restart_count=p.restart_count, stuck=p.stuck,
                                state="" if p.ready else pod_state(p)) for p in pods)


def not_ready_reason(status: KafkaResourceStatus) -> str:
    return f"{status.reason}: {status.message}".strip(": ") if status.reason or status.message else ""
