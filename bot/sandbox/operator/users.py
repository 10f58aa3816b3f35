"""The User Operator: KafkaUser objects become real Kafka credentials and Secrets (Strimzi's UO).

For every KafkaUser labelled ``strimzi.io/cluster=<cluster>``:

- ``authentication.type: scram-sha-512``: a random 32-character password (kept from the Secret if
  it already has one), set on the brokers with AlterUserScramCredentials (SCRAM-SHA-512, 4096
  iterations), and the Secret ``<user>`` with ``password`` and ``sasl.jaas.config``;
- ``tls``: a certificate ``CN=<user>`` signed by the clients CA, and the Secret ``<user>`` with
  ``ca.crt`` (the clients CA), ``user.crt``, ``user.key``, ``user.p12`` and ``user.password``;
- ``tls-external``: no Secret; the user brings a certificate of its own.

Status: ``Ready`` with ``username`` (``CN=<user>`` for certificate users) and ``secret``. The
Secrets are owned by their KafkaUser, so deleting the KafkaUser deletes its Secret; SCRAM
credentials on the brokers without a KafkaUser are deleted, as the UO does (once the cluster has had
a KafkaUser: until then the UO twin does not even connect). ACLs and quotas are
not modelled.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from bot.sandbox.errors import SandboxError
from bot.sandbox.kube.store import ApiError, ObjectStore
from bot.sandbox.operator import names, secrets
from bot.sandbox.operator import status as st
from bot.sandbox.operator.certs import random_password
from bot.sandbox.operator.kafka_admin import AdminError, OperatorAdmin
from bot.sandbox.operator.listeners import AUTH_SCRAM, AUTH_TLS
from bot.sandbox.operator.security import ClusterSecurity

log = logging.getLogger(__name__)
AUTH_TLS_EXTERNAL = "tls-external"
_AUTH_TYPES = (AUTH_TLS, AUTH_TLS_EXTERNAL, AUTH_SCRAM)
SCRAM_KEYS = ("password", "sasl.jaas.config")
TLS_KEYS = ("ca.crt", "user.crt", "user.key", "user.p12", "user.password")


def jaas_config(user: str, password: str) -> str:
    """The ``sasl.jaas.config`` Strimzi puts next to the password."""
    return f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{user}" password="{password}";'


def user_secret_labels(cluster: str, user: str) -> dict[str, str]:
    return {names.LABEL_CLUSTER: cluster, names.LABEL_KIND: "KafkaUser",
            "app.kubernetes.io/instance": user, "app.kubernetes.io/managed-by": "strimzi-user-operator",
            "app.kubernetes.io/name": "strimzi-user-operator", "app.kubernetes.io/part-of": f"strimzi-{user}"}


class UserProblem(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class UserOperator:
    def __init__(self, store: ObjectStore, *, namespace: str, cluster: str) -> None:
        self.store = store
        self.namespace = namespace
        self.cluster = cluster
        self._applied: dict[str, str] = {}  # user -> sha256 of the password last set on the brokers

    async def reconcile_all(self, admin: OperatorAdmin, security: ClusterSecurity) -> None:
        users, _ = self.store.list(names.KAFKA_GROUP, names.USERS, self.namespace,
                                   label_selector=f"{names.LABEL_CLUSTER}={self.cluster}")
        if not users and not self._applied:
            # Nothing to do, and no admin connection for it: most sandboxes never have a KafkaUser.
            # (Strimzi's UO would also delete SCRAM credentials made by hand; this twin only those it set.)
            return
        on_brokers = await admin.scram_users()
        wanted_scram: set[str] = set()
        with_secret: set[str] = set()
        for ku in users:
            name = ku["metadata"]["name"]
            auth = ((ku.get("spec") or {}).get("authentication") or {}).get("type")
            if names.is_true(ku["metadata"].get("annotations"), names.ANNO_PAUSE):
                self._write_status(ku, [st.paused()], keep=True)
                wanted_scram.add(name)  # a paused user keeps what it has
                with_secret.add(name)
                continue
            try:
                if auth == AUTH_SCRAM:
                    wanted_scram.add(name)
                    with_secret.add(name)
                    await self._scram_user(admin, ku, present=name in on_brokers)
                    self._write_status(ku, [st.ready()], username=name, secret=name)
                elif auth == AUTH_TLS:
                    with_secret.add(name)
                    self._tls_user(ku, security)
                    self._write_status(ku, [st.ready()], username=f"CN={name}", secret=name)
                elif auth == AUTH_TLS_EXTERNAL or auth is None:
                    self._write_status(ku, [st.ready()], username=f"CN={name}" if auth else name)
                else:
                    raise UserProblem("InvalidResourceException", f"KafkaUser {name}: authentication.type must be "
                                      f"one of {', '.join(_AUTH_TYPES)}; got {auth!r}")
            except UserProblem as e:
                self._write_status(ku, [st.not_ready(e.reason, str(e))])
            except AdminError as e:
                self._write_status(ku, [st.not_ready(e.strimzi_reason, str(e))])
            except SandboxError as e:
                self._write_status(ku, [st.not_ready("InvalidConfigurationException", str(e))])
        for user in sorted(on_brokers - wanted_scram):
            await admin.delete_scram_user(user)
            self._applied.pop(user, None)
            log.info("SCRAM credential of %s deleted (no KafkaUser with scram-sha-512 authentication)", user)
        self._delete_stale_secrets(with_secret)

    async def _scram_user(self, admin: OperatorAdmin, ku: dict[str, Any], *, present: bool) -> None:
        name = ku["metadata"]["name"]
        current = secrets.read(self.store, self.namespace, name)
        password = secrets.decode(current).get("password") if current else None
        password = password or random_password()
        secrets.apply(self.store, secrets.secret_body(
            name, self.namespace, {"password": password, "sasl.jaas.config": jaas_config(name, password)},
            labels=user_secret_labels(self.cluster, name), owner=self._owner(ku)))
        digest = hashlib.sha256(password.encode()).hexdigest()
        if not present or self._applied.get(name) != digest:
            await admin.set_scram_password(name, password)
            self._applied[name] = digest
            log.info("KafkaUser %s: SCRAM-SHA-512 credential set", name)

    def _tls_user(self, ku: dict[str, Any], security: ClusterSecurity) -> None:
        name = ku["metadata"]["name"]
        if not security.has_cas():
            raise UserProblem("InvalidConfigurationException", f"KafkaUser {name}: the clients CA of {self.cluster} "
                              "does not exist (the sandbox needs the `openssl` command)")
        ca_pem = security.clients_ca.cert_pem()
        current = secrets.decode(secrets.read(self.store, self.namespace, name) or {})
        if all(k in current for k in TLS_KEYS) and current["ca.crt"] == ca_pem:
            return  # issued by the current clients CA: keep it (Strimzi renews near expiry only)
        cert = security.clients_ca.issue(security.directory / "users" / name, name)
        secrets.apply(self.store, secrets.secret_body(
            name, self.namespace, {
                "ca.crt": ca_pem, "user.crt": cert.cert_path.read_text(encoding="ascii"),
                "user.key": cert.key_path.read_text(encoding="ascii"), "user.p12": cert.p12_path.read_bytes(),
                "user.password": cert.password(),
            }, labels=user_secret_labels(self.cluster, name), owner=self._owner(ku)))
        log.info("KafkaUser %s: certificate CN=%s issued by the clients CA", name, name)

    def _delete_stale_secrets(self, keep: set[str]) -> None:
        found, _ = self.store.list(names.CORE_GROUP, names.SECRETS, self.namespace,
                                   label_selector=f"{names.LABEL_CLUSTER}={self.cluster},{names.LABEL_KIND}=KafkaUser")
        for secret in found:
            if secret["metadata"]["name"] not in keep:
                secrets.delete(self.store, self.namespace, secret["metadata"]["name"])

    @staticmethod
    def _owner(ku: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": ku["apiVersion"], "kind": "KafkaUser", "name": ku["metadata"]["name"],
                "uid": ku["metadata"]["uid"], "controller": True, "blockOwnerDeletion": False}

    def _write_status(self, ku: dict[str, Any], conditions: list[dict[str, Any]], *, keep: bool = False,
                      username: str | None = None, secret: str | None = None) -> None:
        name = ku["metadata"]["name"]
        old = ku.get("status") or {}
        new: dict[str, Any] = {
            "conditions": st.keep_transition_times(conditions, old.get("conditions")),
            "observedGeneration": old.get("observedGeneration", 0) if keep else ku["metadata"].get("generation", 1),
        }
        username, secret = (old.get("username"), old.get("secret")) if keep else (username, secret)
        if username:
            new["username"] = username
        if secret:
            new["secret"] = secret
        if st.without_times(new) == st.without_times(old):
            return
        try:
            current = self.store.get(names.KAFKA_GROUP, names.USERS, self.namespace, name)
            current["status"] = new
            self.store.replace(names.KAFKA_GROUP, names.USERS, self.namespace, name, current, subresource="status")
        except ApiError as e:
            log.debug("KafkaUser %s status not written: %s", name, e)
