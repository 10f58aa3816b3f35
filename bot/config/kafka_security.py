"""The clusters file's Kafka security keys, per cluster: which listener, what to trust, who to be.

```yaml
listener: tls                 # a name in spec.kafka.listeners: its bootstrap, its tls and authentication
tls: {ca_secret: prod-cluster-ca-cert}      # or {ca_file: /etc/kafka-ca/ca.crt}; default <kafka>-cluster-ca-cert
authentication: {type: scram-sha-512, kafka_user: kafka-chatops}
```

Only what the file says is checked here; what the Kafka resource says (is the listener there, is it
TLS, which authentication it wants) is judged when the bot connects (``bot.kafka.security``).
Messages name keys and Secret names, never a credential.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

AUTH_TYPES = ("scram-sha-512", "tls", "plain", "oauthbearer")
# Strimzi's listener authentication types, as the bot speaks them (``oauth`` is OAUTHBEARER).
STRIMZI_AUTH_TYPES = {"scram-sha-512": "scram-sha-512", "tls": "tls", "oauth": "oauthbearer"}
KAFKA_USER_TYPES = ("scram-sha-512", "tls")  # credentials from a KafkaUser's Secret
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_LISTENER_NAME = re.compile(r"^[a-z0-9]{1,25}$")  # Strimzi: lowercase letters and digits, up to 25


def _k8s_name(value: str, what: str) -> str:
    if len(value) > 253 or not _K8S_NAME.match(value):
        raise ValueError(f"{value[:60]!r} is not a {what}: a Kubernetes name is lowercase letters, digits, '-' and "
                         "'.', starting and ending with a letter or digit")
    return value


class SecretKey(BaseModel):
    """One key of a Secret in the cluster's namespace."""

    model_config = ConfigDict(extra="forbid")

    name: str
    key: str = Field(default="password", min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _k8s_name(value, "Secret name")


class TlsConfig(BaseModel):
    """Whom to trust: a Secret's ``ca.crt`` (read through the Kubernetes API) or a PEM file."""

    model_config = ConfigDict(extra="forbid")

    ca_secret: str | None = None
    ca_file: str | None = Field(default=None, min_length=1)

    @field_validator("ca_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        return None if value is None else _k8s_name(value, "Secret name")

    @model_validator(mode="after")
    def _one_source(self) -> TlsConfig:
        if self.ca_secret is not None and self.ca_file is not None:
            raise ValueError("ca_secret and ca_file both given: give one place to trust the cluster CA from (the "
                             "Secret's ca.crt, read through the Kubernetes API, or a PEM file)")
        return self


class AuthenticationConfig(BaseModel):
    """Who the bot is to Kafka. Without ``type``, the listener's ``authentication.type`` decides."""

    model_config = ConfigDict(extra="forbid")

    type: str | None = None
    kafka_user: str | None = None  # scram-sha-512, tls: the KafkaUser; its Secret has the same name
    username: str | None = Field(default=None, min_length=1)  # plain
    password_secret: SecretKey | None = None  # plain
    password_file: str | None = Field(default=None, min_length=1)  # plain
    token_file: str | None = Field(default=None, min_length=1)  # oauthbearer, re-read for each token

    @field_validator("type")
    @classmethod
    def _type(cls, value: str | None) -> str | None:
        if value is not None and value not in AUTH_TYPES:
            raise ValueError(f"{value[:40]!r} is not an authentication type: give one of {', '.join(AUTH_TYPES)} "
                             "(GSSAPI/Kerberos is not offered)")
        return value

    @field_validator("kafka_user")
    @classmethod
    def _user(cls, value: str | None) -> str | None:
        return None if value is None else _k8s_name(value, "KafkaUser name")

    @model_validator(mode="after")
    def _keys_of_type(self) -> AuthenticationConfig:
        given = {k for k in ("kafka_user", "username", "password_secret", "password_file", "token_file")
                 if getattr(self, k) is not None}
        kind = self.type
        if kind is None:
            if given - {"kafka_user"}:
                raise ValueError(f"{', '.join(sorted(given - {'kafka_user'}))} given without `type`: give "
                                 f"`type` ({', '.join(AUTH_TYPES)}); without it only kafka_user may be given, and "
                                 "the listener's authentication type decides")
            return self
        allowed: set[str]
        if kind in KAFKA_USER_TYPES:
            allowed = {"kafka_user"}
            if self.kafka_user is None:
                raise ValueError(f"type {kind} needs kafka_user: the KafkaUser whose Secret (same name, the cluster's "
                                 "namespace) holds the bot's credentials")
        elif kind == "plain":
            allowed = {"username", "password_secret", "password_file"}
            if self.username is None:
                raise ValueError("type plain needs username (and password_secret {name, key} or password_file)")
            if (self.password_secret is None) == (self.password_file is None):
                raise ValueError("type plain needs one password: password_secret {name, key} (a Secret in the "
                                 "cluster's namespace) or password_file (a mounted file), not "
                                 f"{'both' if self.password_file else 'neither'}")
        else:
            allowed = {"token_file"}
            if self.token_file is None:
                raise ValueError("type oauthbearer needs token_file: a file holding the access token (re-read on "
                                 "each token request, so a sidecar may renew it)")
        extra = sorted(given - allowed)
        if extra:
            raise ValueError(f"{', '.join(extra)} not used with type {kind}: it takes {', '.join(sorted(allowed))}")
        return self


class KafkaSecurityConfig(BaseModel):
    """A cluster's three keys together, as the resolver takes them."""

    model_config = ConfigDict(frozen=True)

    listener: str | None = None
    tls: TlsConfig | None = None
    authentication: AuthenticationConfig | None = None

    @property
    def plaintext(self) -> bool:
        """Nothing asked: the first listener of the status, in plaintext (the bot's behaviour before)."""
        return self.listener is None and self.tls is None and self.authentication is None


def check_listener(value: str | None) -> str | None:
    if value is not None and not _LISTENER_NAME.match(value):
        raise ValueError(f"{value[:40]!r} is not a Strimzi listener name: lowercase letters and digits, at most 25 "
                         "(the `name` of an entry in the Kafka's spec.kafka.listeners, e.g. tls)")
    return value


def check_security(listener: str | None, tls: TlsConfig | None, auth: AuthenticationConfig | None) -> None:
    """What the keys say together: mTLS needs TLS, which without a listener only `tls:` can say."""
    if listener is None and auth is not None and auth.type is None:
        raise ValueError("authentication has no `type` and no `listener` is given to take it from: give "
                         f"authentication.type ({', '.join(AUTH_TYPES)}) or `listener`")
    if listener is None and tls is None and auth is not None and auth.type == "tls":
        raise ValueError("authentication type tls (a client certificate) needs TLS: give `listener` (one with "
                         "tls: true) or a `tls:` block")

