"""A cluster's TLS side, as Strimzi's cluster operator keeps it: the cluster and clients CAs, their
Secrets, each broker's certificate and keystore, and the listeners' ports and status.

Strimzi creates both CAs with every Kafka (whether or not a listener uses TLS), publishes the public
halves as ``<cluster>-cluster-ca-cert`` / ``<cluster>-clients-ca-cert`` (``ca.crt``) and the keys as
``<cluster>-cluster-ca`` / ``<cluster>-clients-ca`` (``ca.key``), owned by the Kafka. Each broker's
certificate names the pod's DNS names and, since the twin's brokers all listen on 127.0.0.1, that
address, so clients verify the host name as they would in Kubernetes.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.sandbox.kube.store import ObjectStore
from bot.sandbox.node_spec import free_ports
from bot.sandbox.operator import names, secrets
from bot.sandbox.operator.certs import CertificateAuthority, IssuedCertificate, require_openssl
from bot.sandbox.operator.listeners import Listener, TlsFiles, broker_listener_config, listener_status, parse_listeners
from bot.sandbox.operator.pods import BrokerPod

log = logging.getLogger(__name__)
_INTERNAL_KEYS = ("listeners", "advertised.listeners", "listener.security.protocol.map")


class ClusterSecurity:
    def __init__(self, store: ObjectStore, *, namespace: str, cluster: str, directory: Path) -> None:
        self.store = store
        self.namespace = namespace
        self.cluster = cluster
        self.directory = directory
        self.listeners: list[Listener] = parse_listeners(None)
        self.cluster_ca = CertificateAuthority(directory / "cluster-ca")
        self.clients_ca = CertificateAuthority(directory / "clients-ca")
        self._ports: dict[tuple[int, str], int] = {}  # (node id, listener) -> the port it listens on

    # -- CAs ---------------------------------------------------------------------------------
    def set_listeners(self, listeners: Sequence[Listener]) -> None:
        """The listeners of this reconciliation; makes the CAs first (SandboxError without openssl
        when a listener needs TLS; without one, a missing openssl only leaves the CAs out)."""
        self.listeners = list(listeners)
        self.ensure_cas(required=any(lst.tls for lst in self.listeners))

    def ensure_cas(self, *, required: bool = True) -> bool:
        if shutil.which("openssl") is None and not required:
            log.warning("no `openssl` command: cluster %s gets no CAs (TLS listeners and KafkaUsers need it)",
                        self.cluster)
            return False
        require_openssl()
        self.cluster_ca.ensure("cluster-ca v0")
        self.clients_ca.ensure("clients-ca v0")
        return True

    def has_cas(self) -> bool:
        return self.cluster_ca.cert_path.is_file() and self.clients_ca.cert_path.is_file()

    def publish_ca_secrets(self, owner: Mapping[str, Any] | None) -> None:
        """The four CA Secrets, recreated if someone deleted them (Strimzi does so every reconciliation)."""
        if not self.has_cas():
            return
        for ca, prefix in ((self.cluster_ca, f"{self.cluster}-cluster-ca"),
                           (self.clients_ca, f"{self.cluster}-clients-ca")):
            labels = {names.LABEL_CLUSTER: self.cluster, names.LABEL_KIND: "Kafka", names.LABEL_NAME: "strimzi",
                      names.LABEL_COMPONENT_TYPE: "certificate-authority"}
            secrets.apply(self.store, secrets.secret_body(
                f"{prefix}-cert", self.namespace, {"ca.crt": ca.cert_pem()}, labels=labels,
                annotations={"strimzi.io/ca-cert-generation": "0"}, owner=owner))
            secrets.apply(self.store, secrets.secret_body(
                prefix, self.namespace, {"ca.key": ca.key_pem()}, labels=labels,
                annotations={"strimzi.io/ca-key-generation": "0"}, owner=owner))

    # -- brokers -----------------------------------------------------------------------------
    def port(self, node_id: int, listener: Listener, internal_port: int) -> int:
        if listener.internal:
            return internal_port
        key = (node_id, listener.name)
        if key not in self._ports:
            self._ports[key] = free_ports(1)[0]
        return self._ports[key]

    def broker_certificate(self, pod: BrokerPod) -> IssuedCertificate:
        """The broker's certificate, made once per node (it names the pod, which keeps its name)."""
        cert = IssuedCertificate(self.directory / "brokers" / str(pod.node_id))
        if not cert.exists():
            svc = f"{self.cluster}-kafka-brokers"
            bootstrap = f"{self.cluster}-kafka-bootstrap"
            sans = [f"DNS:{pod.name}.{svc}.{self.namespace}.svc", f"DNS:{pod.name}.{svc}.{self.namespace}.svc."
                    "cluster.local", f"DNS:{bootstrap}", f"DNS:{bootstrap}.{self.namespace}.svc",
                    f"DNS:{bootstrap}.{self.namespace}.svc.cluster.local", "DNS:localhost",
                    f"IP:{pod.node.spec.host}"]
            self.cluster_ca.issue(cert.directory, f"{self.cluster}-kafka", sans=sans, organization="io.strimzi")
        return cert

    def broker_config(self, pod: BrokerPod, cfg: Mapping[str, str]) -> dict[str, str]:
        """The listener properties of a broker pod; ``cfg`` is its config so far (the internal listener)."""
        if not pod.is_broker:
            return {}
        spec = pod.node.spec
        base = pod.node.base_config()
        internal = {k: cfg.get(k, base[k]) for k in _INTERNAL_KEYS}
        tls = None
        if any(lst.tls for lst in self.listeners):
            cert = self.broker_certificate(pod)
            tls = TlsFiles(keystore=str(cert.p12_path), keystore_password=cert.password(),
                           clients_ca=str(self.clients_ca.cert_path))
        ports = {lst.name: self.port(pod.node_id, lst, spec.client_port) for lst in self.listeners}
        return broker_listener_config(self.listeners, ports, host=spec.host, internal=internal, tls=tls)

    def status(self, brokers: Sequence[BrokerPod]) -> list[dict[str, Any]]:
        addresses = {lst.name: [(p.node.spec.host, self.port(p.node_id, lst, p.node.spec.client_port))
                                for p in brokers] for lst in self.listeners}
        ca = self.cluster_ca.cert_pem() if self.cluster_ca.cert_path.is_file() else None
        return listener_status(self.listeners, addresses, ca)
