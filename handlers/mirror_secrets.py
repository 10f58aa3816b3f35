"""What the MirrorMaker 2 runbook needs to know of each cluster's Kafka security, and whether the
Secrets its KafkaMirrorMaker2 mounts are in the target's namespace.

Each side is read as the bot's own clients read it (``bot.kafka.security``): the clusters file's
``listener`` names an entry of the Kafka's ``spec.kafka.listeners``, whose ``tls`` and
``authentication.type`` decide, unless the file's ``tls:`` and ``authentication.type`` say it (no
listener named). The cluster CA Secret is ``tls.ca_secret`` or Strimzi's ``<kafka>-cluster-ca-cert``
(also when the bot itself trusts a ``ca_file``: MirrorMaker 2 can only mount a Secret). Names only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from handlers.clusters import ManagedCluster
from handlers.ports import ClusterGateway, ClusterRef, KafkaResourceStatus
from runbooks.catalogue.mirror_security import SecretNeed, SecretState, SideSecurity

# Strimzi's listener authentication types as the clusters file spells them (``oauth`` is OAUTHBEARER).
_LISTENER_AUTH = {"scram-sha-512": "scram-sha-512", "tls": "tls", "oauth": "oauthbearer"}


def side_security(cluster: ManagedCluster, status: KafkaResourceStatus, user: str | None) -> SideSecurity:
    """One side as MirrorMaker 2 must reach it; ``user`` is --source-user/--target-user when given."""
    keys = cluster.kafka_client
    ca_secret = keys.ca_secret or f"{cluster.ref.kafka}-cluster-ca-cert"
    kafka_user = user or keys.kafka_user
    tls, kind = keys.tls, keys.authentication
    listener_name = cluster.ref.listener
    if listener_name is not None:
        listeners = [e for e in status.spec.get("listeners") or [] if isinstance(e, dict)]
        found: dict[str, Any] | None = next((e for e in listeners if e.get("name") == listener_name), None)
        if found is None:
            names = ", ".join(str(e.get("name")) for e in listeners) or "none"
            return SideSecurity(problem=f"the clusters file's listener {listener_name!r} is not in spec.kafka."
                                f"listeners of Kafka {cluster.ref.namespace}/{cluster.ref.kafka} (its listeners: "
                                f"{names})", kafka_user=kafka_user, user_given=user is not None)
        tls = found.get("tls") is True
        auth = found.get("authentication")
        written = auth.get("type") if isinstance(auth, dict) else None
        kind = kind or (_LISTENER_AUTH.get(str(written), str(written)) if written else None)
    return SideSecurity(tls=tls, ca_secret=ca_secret, authentication=kind,
                        kafka_user=kafka_user if kind is not None or user is not None else None,
                        user_given=user is not None)


async def secrets_in(gateway: ClusterGateway, target: ClusterRef,
                     needs: Sequence[SecretNeed]) -> tuple[SecretState, ...]:
    """Each needed Secret as the target's namespace holds it (by name; keys' names only)."""
    found = []
    for need in needs:
        lookup = await gateway.secret_keys(target, need.name)
        found.append(SecretState(name=lookup.name, found=lookup.found, keys=lookup.keys, forbidden=lookup.forbidden))
    return tuple(found)
