"""ServiceAccount tokens and the requests made with them.

A token is minted as on a real cluster, through the TokenRequest subresource
(``POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token``) with a JSON body (``kubectl create
token`` sends protobuf, which the sandbox does not read: 415). It is an opaque string, not a JWT:
nothing outside the emulator verifies it. It is bound to the ServiceAccount's uid (deleting the
account revokes it), expires after ``expirationSeconds`` (default one hour), and lives in the
server's memory: a restarted sandbox forgets it.

A request whose bearer token is such a token acts as ``system:serviceaccount:<ns>:<name>`` and is
authorized by RBAC (``rbac.py``): 403 Forbidden when no binding grants it, 401 Unauthorized for a
token that is unknown, expired or revoked. Any other request (no token, or the sandbox kubeconfig's
own) keeps full access, so the sandbox's admin kubeconfig, the simulated operator and every existing
client behave as before.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bot.sandbox.kube.api_errors import ApiError, bad_request, invalid, unsupported_media_type
from bot.sandbox.kube.rbac import Identity, authorized, forbidden, request_attributes
from bot.sandbox.kube.resources import CORE_GROUP, lookup_resource_type
from bot.sandbox.kube.store import ObjectStore

TOKEN_PREFIX = "sandbox-sa."
TOKEN_PATH = "/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token"
DEFAULT_EXPIRATION_S = 3600
MIN_EXPIRATION_S = 600  # the API server's own lower bound


@dataclass(frozen=True)
class _Minted:
    namespace: str
    name: str
    uid: str
    expires: datetime


class TokenRegistry:
    """The tokens minted by this server, and who each one is."""

    def __init__(self) -> None:
        self._tokens: dict[str, _Minted] = {}

    def mint(self, store: ObjectStore, namespace: str, name: str,
             expiration_seconds: int = DEFAULT_EXPIRATION_S) -> tuple[str, datetime]:
        """A new token for the ServiceAccount ``namespace/name`` (404 if it does not exist), and its expiry."""
        account = store.get(CORE_GROUP, "serviceaccounts", namespace, name)
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=expiration_seconds)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._tokens[token] = _Minted(namespace, name, account["metadata"]["uid"], expires)
        return token, expires

    def identity(self, store: ObjectStore, token: str) -> Identity | None:
        """The ServiceAccount a token stands for, or None if it is unknown, expired or revoked."""
        minted = self._tokens.get(token)
        if minted is None or minted.expires <= datetime.now(UTC):
            return None
        try:
            account = store.get(CORE_GROUP, "serviceaccounts", minted.namespace, minted.name)
        except ApiError:
            return None
        if account["metadata"]["uid"] != minted.uid:  # deleted and made again: not the same account
            return None
        return Identity.service_account(minted.namespace, minted.name)


def is_service_account_token(authorization: str) -> bool:
    scheme, _, token = authorization.partition(" ")
    return scheme.lower() == "bearer" and token.strip().startswith(TOKEN_PREFIX)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def access_control(store: ObjectStore, tokens: TokenRegistry) -> Any:
    """The middleware that authenticates ServiceAccount tokens and authorizes their requests."""

    @web.middleware
    async def control(request: web.Request, handler: Any) -> web.StreamResponse:
        authorization = request.headers.get("Authorization", "")
        if is_service_account_token(authorization):
            identity = tokens.identity(store, authorization.partition(" ")[2].strip())
            if identity is None:
                raise unauthorized()
            attributes = request_attributes(request.method, request.path, request.query)
            if not authorized(store, identity, attributes):
                raise forbidden(identity, attributes)
        response: web.StreamResponse = await handler(request)
        return response

    return control


def token_request_handler(store: ObjectStore, tokens: TokenRegistry) -> Any:
    """The handler of ``TOKEN_PATH``."""

    async def handle(request: web.Request) -> web.Response:
        return await _create_token(request, store, tokens)

    return handle


async def _create_token(request: web.Request, store: ObjectStore, tokens: TokenRegistry) -> web.Response:
    """The TokenRequest subresource: 201 with the TokenRequest, its ``status.token`` filled in."""
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    if request.content_type.startswith("application/vnd.kubernetes.protobuf"):  # kubectl create token
        raise unsupported_media_type(request.content_type, ["application/json"])
    raw = await request.read()
    try:
        body = await request.json() if raw.strip() else {}
    except ValueError as error:
        raise bad_request(f"the body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise bad_request("a TokenRequest must be a JSON object")
    spec = body.get("spec") or {}
    seconds = spec.get("expirationSeconds") or DEFAULT_EXPIRATION_S
    if not isinstance(seconds, int) or seconds < MIN_EXPIRATION_S:
        rtype = lookup_resource_type(CORE_GROUP, "serviceaccounts")
        assert rtype is not None
        raise invalid(rtype, name, f"spec.expirationSeconds: Invalid value: {seconds!r}: "
                      f"may not specify a duration less than {MIN_EXPIRATION_S} seconds")
    token, expires = tokens.mint(store, namespace, name, seconds)
    answer = {
        "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
        "spec": {"audiences": spec.get("audiences") or ["https://kubernetes.default.svc"],
                 "expirationSeconds": seconds, "boundObjectRef": spec.get("boundObjectRef")},
        "status": {"token": token, "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")},
    }
    return web.json_response(answer, status=201)
