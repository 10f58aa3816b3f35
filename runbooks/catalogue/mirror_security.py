"""How the KafkaMirrorMaker2 of the mirror runbook connects to secured clusters, the way Strimzi
spells it (``KafkaMirrorMaker2ClusterSpec`` of the v1 API: ``tls.trustedCertificates`` and
``authentication`` on ``spec.target`` and on each ``spec.mirrors[].source``).

Strimzi mounts every Secret those fields name from the KafkaMirrorMaker2's own namespace, the
target's. A source cluster in another namespace therefore needs its CA Secret and its KafkaUser's
Secret copied there first; the plan names each Secret, checks it is there (the world reads that,
by name, through the cluster port) and refuses with the ``kubectl`` commands that copy it when it
is not. When the copy would take the name of a Secret the target side uses (two clusters both named
``my-cluster``, one KafkaUser name on both sides), the copy is named ``<source>-<name>``.

Only names are ever handled here: no Secret value reaches the plan, the card or a message.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from runbooks.engine.models import PlanRefused

CA_KEY = "ca.crt"
SCRAM_KEY = "password"
USER_CERT, USER_KEY = "user.crt", "user.key"
SUPPORTED_AUTH = ("scram-sha-512", "tls")  # from a KafkaUser's Secret, as the bot's own clients


class SideSecurity(BaseModel):
    """How one cluster's listener is reached, from the clusters file and the Kafka resource: names only."""

    model_config = ConfigDict(frozen=True)

    tls: bool = False
    ca_secret: str = ""  # the cluster CA Secret in the cluster's namespace (default <kafka>-cluster-ca-cert)
    authentication: str | None = None  # scram-sha-512, tls, plain, oauthbearer; None: none
    kafka_user: str | None = None  # whom MirrorMaker 2 authenticates as: --source-user/--target-user, or the bot's
    user_given: bool = False  # kafka_user came from --source-user/--target-user, not the clusters file
    problem: str = ""  # why the bot cannot tell (the named listener is not in the Kafka resource)


class SecretNeed(BaseModel):
    """A Secret the KafkaMirrorMaker2 names, which must be in the target's namespace."""

    model_config = ConfigDict(frozen=True)

    name: str  # in the target's namespace
    keys: tuple[str, ...]
    what: str  # for people: "east's cluster CA", "the KafkaUser mm2 of east"
    cluster: str  # the cluster it belongs to
    origin_namespace: str  # where the original is
    origin_name: str


class SecretState(BaseModel):
    """What the target's namespace holds under a needed name: found with these keys, missing, or not readable."""

    model_config = ConfigDict(frozen=True)

    name: str
    found: bool
    keys: tuple[str, ...] = ()
    forbidden: str = ""  # the Kubernetes API refused the read (RBAC): the API's words


def check_side(role: str, option: str, cluster: str, side: SideSecurity) -> None:
    """Refuse what the runbook cannot set up on one side, saying why and what would do."""
    if side.problem:
        raise PlanRefused(f"the {role} {cluster}: {side.problem}")
    kind = side.authentication
    if kind is not None and kind not in SUPPORTED_AUTH:
        raise PlanRefused(f"the {role} {cluster}'s listener authenticates with {kind}: the mirror runbook sets "
                          f"MirrorMaker 2 up with {' or '.join(SUPPORTED_AUTH)} (a KafkaUser's Secret) only; "
                          "write that KafkaMirrorMaker2 by hand, or name another listener in the clusters file")
    if kind is None and side.user_given:
        raise PlanRefused(f"{option} {side.kafka_user}: the {role} {cluster}'s listener does not authenticate "
                          f"clients, so there is no user to be; leave out {option}")
    if kind is not None and side.kafka_user is None:
        raise PlanRefused(f"the {role} {cluster}'s listener authenticates with {kind} and no KafkaUser is known for "
                          f"MirrorMaker 2: give {option} <KafkaUser> (a dedicated one is better) or "
                          f"authentication.kafka_user in the clusters file")
    if kind == "tls" and not side.tls:
        raise PlanRefused(f"the {role} {cluster} authenticates with client certificates (tls) on a listener "
                          "without TLS: name a listener with tls: true in the clusters file")


def secrets_needed(source: str, source_ns: str, src: SideSecurity,
                   target: str, target_ns: str, tgt: SideSecurity) -> list[SecretNeed]:
    """The Secrets the resource names, target side first, each under its name in the target's namespace."""
    needs = _side_needs(target, target_ns, tgt, taken=set(), rename=False)
    taken = {n.name for n in needs}
    for need in _side_needs(source, source_ns, src, taken=taken, rename=source_ns != target_ns):
        if need.name not in {n.name for n in needs}:
            needs.append(need)
    return needs


def _side_needs(cluster: str, namespace: str, side: SideSecurity, *, taken: set[str],
                rename: bool) -> list[SecretNeed]:
    wanted: list[tuple[str, tuple[str, ...], str]] = []
    if side.tls:
        wanted.append((side.ca_secret, (CA_KEY,), f"{cluster}'s cluster CA"))
    if side.authentication in SUPPORTED_AUTH and side.kafka_user:
        keys: tuple[str, ...] = (SCRAM_KEY,) if side.authentication == "scram-sha-512" else (USER_CERT, USER_KEY)
        wanted.append((side.kafka_user, keys, f"the KafkaUser {side.kafka_user} of {cluster}"))
    out = []
    for origin, keys, what in wanted:
        name = f"{cluster}-{origin}"[:253] if rename and origin in taken else origin
        out.append(SecretNeed(name=name, keys=keys, what=what, cluster=cluster, origin_namespace=namespace,
                              origin_name=origin))
    return out


def side_fields(cluster: str, side: SideSecurity, needs: list[SecretNeed]) -> dict[str, Any]:
    """``tls`` and ``authentication`` of one side of the resource (nothing for a plaintext listener)."""
    mine = {n.origin_name: n.name for n in needs if n.cluster == cluster}
    fields: dict[str, Any] = {}
    if side.tls:
        fields["tls"] = {"trustedCertificates": [{"secretName": mine[side.ca_secret], "certificate": CA_KEY}]}
    if side.authentication == "scram-sha-512" and side.kafka_user:
        fields["authentication"] = {"type": "scram-sha-512", "username": side.kafka_user,
                                    "passwordSecret": {"secretName": mine[side.kafka_user], "password": SCRAM_KEY}}
    elif side.authentication == "tls" and side.kafka_user:
        fields["authentication"] = {"type": "tls", "certificateAndKey": {
            "secretName": mine[side.kafka_user], "certificate": USER_CERT, "key": USER_KEY}}
    return fields


def copy_command(need: SecretNeed, target_ns: str, *, source_flags: tuple[str, ...] = (),
                 target_flags: tuple[str, ...] = ()) -> str:
    """One shell line copying the Secret into the target's namespace: data and type only, so no
    ownerReference (which would point across namespaces) nor the original's uid comes along."""
    get = " ".join(("kubectl", *source_flags, "get", "secret", need.origin_name, "-n", need.origin_namespace,
                    "-o", "json"))
    apply = " ".join(("kubectl", *target_flags, "apply", "-n", target_ns, "-f", "-"))
    return f"{get} | jq '{{apiVersion, kind, type, data, metadata: {{name: \"{need.name}\"}}}}' | {apply}"


def refuse_missing(needs: list[SecretNeed], found: tuple[SecretState, ...], target: str, target_ns: str, *,
                   flags: dict[str, tuple[str, ...]] | None = None) -> None:
    """PlanRefused naming every needed Secret not in the target's namespace (with the commands that
    copy it there), without a key MirrorMaker 2 reads, or that the bot may not read."""
    states = {s.name: s for s in found}
    flags = flags or {}
    problems, commands = [], []
    for need in needs:
        state = states.get(need.name)
        if state is None or (not state.found and not state.forbidden):
            if need.origin_namespace != target_ns or need.origin_name != need.name:
                problems.append(f"Secret {target_ns}/{need.name} ({need.what}) does not exist")
                commands.append(copy_command(need, target_ns, source_flags=flags.get(need.cluster, ()),
                                             target_flags=flags.get(target, ())))
            else:  # its own namespace: Strimzi writes it (the CA) or the User Operator does (a KafkaUser's)
                problems.append(f"Secret {target_ns}/{need.name} ({need.what}) does not exist: "
                                + (f"create the KafkaUser {need.origin_name} for {need.cluster} (its Secret has its "
                                   "name), or name an existing one" if need.keys != (CA_KEY,) else
                                   "is the cluster's listener TLS, and tls.ca_secret right in the clusters file?"))
        elif state.forbidden:
            problems.append(f"the bot may not read Secret {target_ns}/{need.name} ({need.what}), so cannot check it "
                            f"is there ({state.forbidden[:200]}): allow get on it by name in the bot's Role in "
                            f"{target_ns} (Helm: rbac.secretNames)")
        else:
            lacking = [k for k in need.keys if k not in state.keys]
            if lacking:
                problems.append(f"Secret {target_ns}/{need.name} ({need.what}) has no {', '.join(lacking)} (its "
                                f"keys: {', '.join(state.keys) or 'none'})")
    if not problems:
        return
    text = (f"the KafkaMirrorMaker2 in {target}'s namespace {target_ns} mounts these Secrets from there, and "
            + "; ".join(problems))
    if commands:
        text += (". Copy each into " + target_ns + " (needs jq; a copy does not follow the original's renewals, so "
                 "copy it again after a CA renewal or a password change): " + " ; ".join(f"`{c}`" for c in commands))
    raise PlanRefused(text)
