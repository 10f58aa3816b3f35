"""The first signs of harm while a step waits on the operator, and when they pause the run (pure).

A step that follows a roll (or waits for the operator to apply a patch) used to wait for its own
timeout, ten minutes, while the change it had just made kept a broker from starting. These rules
let it stop at the first sign instead; the step's timeout stays as the last resort.

1. **Crash loop, at once.** A broker pod that is down because its container keeps exiting
   (``CrashLoopBackOff``, or another waiting reason Kubernetes gives a container that cannot run,
   or restarts while not Ready) pauses the run the first time it is seen. The operator restarting
   a pod (deletion, a new pod not Ready yet) is not a crash.
2. **The operator's verdict, at once.** The Kafka resource is NotReady for the latest generation
   (``observedGeneration == generation``: the operator has judged the spec with the change in it)
   with a reason it does not retry its way out of (``FATAL_REASONS``), or a message naming a crash
   loop. A NotReady left from an older generation says nothing about this change: the status is
   only written when a reconciliation ends.
3. **Not back in time.** A broker's new pod that is not Ready within ``restart_allowance`` of its
   creation. The allowance comes from the brokers' own restarts as Kubernetes reports them: each
   Ready broker pod's start-to-Ready time (container start, or the pod's creation, to the Ready
   condition's last transition); brokers already restarted in this run report exactly that
   restart. Allowance = max(``RESTART_FLOOR_S``, ``RESTART_FACTOR`` x the slowest of them); with no
   pod reporting one, ``NO_SAMPLE_S`` (Strimzi's own operation timeout, after which its roller
   gives up too). It is counted from the new pod's creation, so the operator's own wait before it
   restarts the broker (its availability back-off) does not count, and from no earlier than when
   the step last started waiting, so Retry gives a fresh allowance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

FATAL_REASONS = frozenset({
    "FatalProblem",  # KafkaRoller: a restarted pod did not become ready, or a stuck pod it cannot fix
    "TimeoutException",  # waiting for pods to be ready timed out
    "InvalidResourceException",  # the spec itself is invalid
    "InvalidConfigurationException",
    "KafkaUpgradeException",
    "UnsupportedKafkaVersionException",
})
# Container waiting reasons that mean it cannot run (docs/strimzi.md §3: KafkaRoller calls such a pod "stuck").
STUCK_REASONS = frozenset({"CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "InvalidImageName",
                           "CreateContainerConfigError", "CreateContainerError", "RunContainerError"})

RESTART_FLOOR_S = 60.0
RESTART_FACTOR = 3.0
NO_SAMPLE_S = 300.0
_MESSAGE_LIMIT = 400  # the operator's message can carry a log excerpt: the pause reason keeps its start


def fatal_condition(*, ready: bool, reason: str, message: str, generation: int, observed_generation: int) -> str | None:
    """The operator's NotReady verdict on the latest spec, as a sentence, when it is one a wait cannot fix."""
    if ready or observed_generation < generation:
        return None
    if reason not in FATAL_REASONS and not any(stuck in message for stuck in STUCK_REASONS):
        return None
    text = message if len(message) <= _MESSAGE_LIMIT else message[: _MESSAGE_LIMIT - 1] + "…"
    return f"the Kafka resource is NotReady at generation {observed_generation}: {reason}: {text}".rstrip(": ")


@dataclass(frozen=True)
class Allowance:
    """How long a healthy broker restart may take here, and the sentence that says why."""

    seconds: float
    basis: str


def restart_allowance(samples: Mapping[int, float]) -> Allowance:
    """From each broker's start-to-Ready seconds (only brokers that report one)."""
    if not samples:
        return Allowance(NO_SAMPLE_S, f"no broker pod reports its start-up time, so Strimzi's own {NO_SAMPLE_S:.0f} s")
    broker, slowest = max(samples.items(), key=lambda item: (item[1], -item[0]))
    seconds = max(RESTART_FLOOR_S, RESTART_FACTOR * slowest)
    return Allowance(seconds, f"the larger of {RESTART_FLOOR_S:.0f} s and {RESTART_FACTOR:g} x the slowest start of "
                              f"this cluster's brokers ({slowest:.0f} s, broker {broker}, from its start to Ready as "
                              "Kubernetes reports it)")


def overdue(down_for_s: float, allowance: Allowance) -> bool:
    """Past the allowance (at it exactly is still in time)."""
    return down_for_s > allowance.seconds
