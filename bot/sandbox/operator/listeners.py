"""``spec.kafka.listeners`` -> the brokers' listener properties and ``status.listeners``.

Strimzi names a listener ``<NAME>-<PORT>`` in the broker config (``TLS-9093``), maps
``tls``/``authentication`` to a security protocol, keeps the brokers' own replication listener
apart, and reports every declared listener in ``status.listeners`` (with the cluster CA under
``certificates`` when it is a TLS listener). The twin's brokers all run on 127.0.0.1, so a listener
cannot keep its declared port: each node gets a free port per listener instead, and the status
says which.

The twin's own internal listener (``PLAINTEXT``, the inter-broker and operator one, Strimzi's
``REPLICATION-9091``) always exists. The first declared plaintext listener without authentication
is served by it, so a sandbox whose Kafka declares only ``plain`` runs exactly as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.sandbox.errors import SandboxError

AUTH_SCRAM = "scram-sha-512"
AUTH_TLS = "tls"
_AUTH_TYPES = (AUTH_SCRAM, AUTH_TLS)
_TYPES = ("internal", "cluster-ip", "route", "tlsroute", "loadbalancer", "nodeport", "ingress")
_NAME_RE = re.compile(r"^[a-z0-9]{1,11}$")  # Strimzi's GenericKafkaListener name pattern
_RESERVED_PORTS = (9090, 9091)  # the controller and replication listeners Strimzi keeps for itself
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"

# The listeners `kafka-chatops sandbox up --listeners` offers, as a user would declare them.
PRESETS: dict[str, dict[str, Any]] = {
    "plain": {"name": "plain", "port": 9092, "type": "internal", "tls": False},
    "tls": {"name": "tls", "port": 9093, "type": "internal", "tls": True,
            "authentication": {"type": AUTH_SCRAM}},
    "mtls": {"name": "mtls", "port": 9094, "type": "internal", "tls": True,
             "authentication": {"type": AUTH_TLS}},
}


def validate_listener_choice(text: str) -> str:
    """``up --listeners``: comma-separated preset names, each once, at least one."""
    chosen = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in PRESETS]
    if not chosen or unknown or len(set(chosen)) != len(chosen):
        raise SandboxError(f"--listeners {text!r} is not valid: give one or more of {', '.join(PRESETS)}, "
                           "comma-separated, each once (e.g. plain,tls,mtls)")
    return ",".join(chosen)


def listener_lines(listeners: Mapping[str, str], cluster: str) -> str:
    """What ``sandbox up`` prints about the listeners beyond the first (and where TLS clients find the CA)."""
    if len(listeners) <= 1 and all(n == "plain" for n in listeners):
        return ""
    lines = [f"  listener {name:<8}{bootstrap}\n" for name, bootstrap in listeners.items()]
    lines.append(f"  cluster CA       Secret {cluster}-cluster-ca-cert (ca.crt); users: KafkaUser -> Secret <user>\n")
    return "".join(lines)


class ListenerError(ValueError):
    """The listeners are invalid; the message says which and what is valid."""


@dataclass(frozen=True)
class Listener:
    name: str
    port: int
    tls: bool
    auth: str | None  # None, AUTH_SCRAM or AUTH_TLS
    internal: bool = False  # served by the brokers' own PLAINTEXT listener

    @property
    def kafka_name(self) -> str:
        return f"{self.name.upper()}-{self.port}"

    @property
    def prefix(self) -> str:
        """Kafka's per-listener config prefix (``ListenerName.configPrefix`` lower-cases the name)."""
        return f"listener.name.{self.kafka_name.lower()}."

    @property
    def protocol(self) -> str:
        if self.auth == AUTH_SCRAM:
            return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"
        return "SSL" if self.tls else "PLAINTEXT"


def parse_listeners(raw: Any) -> list[Listener]:
    """The declared listeners, validated as Strimzi's KafkaListenersValidator does (the parts modelled)."""
    if raw is None or raw == []:
        # Strimzi's schema requires listeners; the twin has always defaulted to one plain listener.
        raw = [PRESETS["plain"]]
    if not isinstance(raw, list):
        raise ListenerError("spec.kafka.listeners must be a list of listeners")
    out: list[Listener] = []
    errors: list[str] = []
    for i, item in enumerate(raw):
        try:
            out.append(_parse_one(item, i))
        except ListenerError as e:
            errors.append(str(e))
    for what, values in (("name", [lst.name for lst in out]), ("port", [str(lst.port) for lst in out])):
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            errors.append(f"every listener needs a unique {what}; used more than once: {', '.join(dupes)}")
    if errors:
        raise ListenerError("; ".join(errors))
    plain = next((i for i, lst in enumerate(out) if lst.protocol == "PLAINTEXT"), None)
    if plain is not None:
        first = out[plain]
        out[plain] = Listener(first.name, first.port, first.tls, first.auth, internal=True)
    return out


def _parse_one(item: Any, index: int) -> Listener:
    if not isinstance(item, Mapping):
        raise ListenerError(f"listener #{index} must be an object with name, port, type and tls")
    name = item.get("name")
    where = f"listener {name!r}" if name else f"listener #{index}"
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ListenerError(f"{where}: name must be 1-11 lowercase letters or digits")
    port = item.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or port < 9092 or port > 65535 \
            or port in _RESERVED_PORTS:
        raise ListenerError(f"{where}: port must be a number from 9092 to 65535 (9090 and 9091 are reserved "
                            f"for Strimzi's own listeners); got {port!r}")
    ltype = item.get("type")
    if ltype not in _TYPES:
        raise ListenerError(f"{where}: type must be one of {', '.join(_TYPES)}; got {ltype!r}")
    tls = item.get("tls")
    if not isinstance(tls, bool):
        raise ListenerError(f"{where}: tls must be true or false")
    auth = item.get("authentication")
    auth_type = None
    if auth is not None:
        auth_type = auth.get("type") if isinstance(auth, Mapping) else None
        if auth_type not in _AUTH_TYPES:
            raise ListenerError(f"{where}: authentication.type must be one of {', '.join(_AUTH_TYPES)} in the "
                                f"sandbox; got {auth_type!r}")
    if auth_type == AUTH_TLS and not tls:
        raise ListenerError(f"{where}: TLS Client Authentication can be used only with enabled TLS encryption!")
    return Listener(name, port, tls, auth_type)


@dataclass(frozen=True)
class TlsFiles:
    """What a broker's TLS listeners are configured with."""

    keystore: str  # PKCS#12 with the broker's key and certificate chain
    keystore_password: str
    clients_ca: str  # PEM: the CA an mTLS listener trusts client certificates from


def broker_listener_config(listeners: Sequence[Listener], ports: Mapping[str, int], *, host: str,
                           internal: Mapping[str, str], tls: TlsFiles | None) -> dict[str, str]:
    """The listener properties of a broker: its ``internal`` ones (listeners, advertised.listeners,
    listener.security.protocol.map as the node has them) plus one per declared listener, on
    ``ports[listener.name]``."""
    extra = [lst for lst in listeners if not lst.internal]
    if not extra:
        return {}
    cfg = {
        "listeners": ",".join([internal["listeners"], *(f"{lst.kafka_name}://{host}:{ports[lst.name]}"
                                                       for lst in extra)]),
        "advertised.listeners": ",".join([internal["advertised.listeners"],
                                          *(f"{lst.kafka_name}://{host}:{ports[lst.name]}" for lst in extra)]),
        "listener.security.protocol.map": ",".join([internal["listener.security.protocol.map"],
                                                    *(f"{lst.kafka_name}:{lst.protocol}" for lst in extra)]),
    }
    for lst in extra:
        if lst.tls:
            if tls is None:
                raise ListenerError(f"listener {lst.name!r} needs TLS, but no broker certificate exists")
            cfg[lst.prefix + "ssl.keystore.type"] = "PKCS12"
            cfg[lst.prefix + "ssl.keystore.location"] = tls.keystore
            cfg[lst.prefix + "ssl.keystore.password"] = tls.keystore_password
        if lst.auth == AUTH_SCRAM:
            cfg[lst.prefix + "sasl.enabled.mechanisms"] = "SCRAM-SHA-512"
            cfg[lst.prefix + "scram-sha-512.sasl.jaas.config"] = SCRAM_JAAS
        elif lst.auth == AUTH_TLS and tls is not None:
            cfg[lst.prefix + "ssl.client.auth"] = "required"
            cfg[lst.prefix + "ssl.truststore.type"] = "PEM"
            cfg[lst.prefix + "ssl.truststore.location"] = tls.clients_ca
    return cfg


def listener_status(listeners: Sequence[Listener], addresses: Mapping[str, list[tuple[str, int]]],
                    cluster_ca_pem: str | None) -> list[dict[str, Any]]:
    """``status.listeners`` as Strimzi writes it: name, addresses, bootstrapServers, certificates (TLS)."""
    out = []
    for lst in listeners:
        addrs = addresses.get(lst.name) or []
        entry: dict[str, Any] = {
            "name": lst.name,
            "addresses": [{"host": h, "port": p} for h, p in addrs],
            "bootstrapServers": ",".join(f"{h}:{p}" for h, p in addrs),
        }
        if lst.tls and cluster_ca_pem:
            entry["certificates"] = [cluster_ca_pem]
        out.append(entry)
    return out
