"""The Kubernetes REST API over HTTP, enough for the unmodified ``kubernetes`` client.

Serves discovery (``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<group>[/<version>]``),
OpenAPI v3 for the Strimzi resources (``openapi.py``), and, for every type in ``resources.py``,
get/list/watch/create/update/patch/delete/deletecollection on
``[/namespaces/<ns>]/<plural>[/<name>[/status|/scale]]``, plus ``pods/<name>/log`` (``pod_logs.py``).
Objects read through a version show that version in ``apiVersion`` (Strimzi's v1 and v1beta2 share
one storage). A GET, list or watch whose Accept header asks for a ``meta.k8s.io`` Table gets one
(``tables.py``): that is how ``kubectl get`` prints its columns.

Patch types: merge patch, JSON patch, and strategic merge patch served as a merge patch (lists are
replaced, not merged by key) for built-in types only: custom resources answer 415 to it, as a real
API server does. Server-side apply (``apply-patch+yaml``) answers 415. Writes honour
``fieldValidation`` (``field_validation.py``) and refuse ``dryRun``. A request bearing a
ServiceAccount token (minted by ``POST .../serviceaccounts/<name>/token``) is authorized by the
stored Roles and bindings (``service_accounts.py``, ``rbac.py``); any other credentials are accepted
with full access.

A daemon that wants routes of its own (``/sandbox/...``) adds them to the app ``create_app``
returns and hands it to ``start_server``; ``STORE_KEY`` gets the store back from a request. Whoever
runs the processes behind pods passes ``pod_logs`` so that ``kubectl logs`` can read them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.sandbox.kube import discovery, openapi
from bot.sandbox.kube.api_errors import (
    ApiError,
    bad_request,
    conflict,
    internal_error,
    method_not_allowed,
    unknown_resource,
    unsupported_media_type,
)
from bot.sandbox.kube.field_validation import check_fields, field_validation_mode, warning_headers
from bot.sandbox.kube.pod_logs import PodLogSource, serve_pod_log
from bot.sandbox.kube.resources import CORE_GROUP, ResourceType, lookup_resource_type
from bot.sandbox.kube.service_accounts import TOKEN_PATH, TokenRegistry, access_control, token_request_handler
from bot.sandbox.kube.store import ObjectStore
from bot.sandbox.kube.tables import TableRequest, table_request, to_table
from bot.sandbox.kube.watch_stream import WatchRequest, WatchSettings, serve_watch

log = logging.getLogger(__name__)

STORE_KEY = web.AppKey("kube_store", ObjectStore)
WATCH_SETTINGS_KEY = web.AppKey("kube_watch_settings", WatchSettings)
_STOPPING_KEY = web.AppKey("kube_stopping", asyncio.Event)
_POD_LOGS_KEY = web.AppKey("kube_pod_logs", object)
TOKENS_KEY = web.AppKey("kube_service_account_tokens", TokenRegistry)

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


@dataclass(frozen=True)
class ResourcePath:
    """What a resource URL names: a collection (no name), an object, or an object's subresource."""

    rtype: ResourceType
    version: str
    namespace: str | None
    name: str | None
    subresource: str | None


def create_app(store: ObjectStore, *, watch_settings: WatchSettings | None = None,
               pod_logs: PodLogSource | None = None) -> web.Application:
    """The API app, not started: add routes to it, then pass it to ``start_server``."""
    tokens = TokenRegistry()
    app = web.Application(middlewares=[_errors_as_status, access_control(store, tokens)])
    app[STORE_KEY] = store
    app[TOKENS_KEY] = tokens
    app[WATCH_SETTINGS_KEY] = watch_settings or WatchSettings()
    app[_STOPPING_KEY] = asyncio.Event()
    app[_POD_LOGS_KEY] = pod_logs
    app.on_shutdown.append(_stop_watches)
    app.router.add_get("/version", _version)
    app.router.add_get("/version/", _version)  # VersionApi asks with the slash
    for probe in ("/healthz", "/readyz", "/livez"):
        app.router.add_get(probe, _healthy)
    app.router.add_post(TOKEN_PATH, token_request_handler(store, tokens))  # before /api/..., which would 404
    app.router.add_route("*", "/api", _core_api)
    app.router.add_route("*", "/api/{path:.*}", _core_api)
    app.router.add_route("*", "/apis", _named_apis)
    app.router.add_route("*", "/apis/{path:.*}", _named_apis)
    openapi.add_routes(app)
    return app


async def start_server(
    store: ObjectStore,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    app: web.Application | None = None,
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` (by default ``create_app(store)``) and return its runner and base URL.

    ``port=0`` picks a free port. Stop with ``await runner.cleanup()``: open watches end at once.
    """
    app = app if app is not None else create_app(store)
    if app.get(STORE_KEY) is not store:
        raise ValueError("the app was created for another store")
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    return runner, f"http://{host}:{bound_port}"


async def _stop_watches(app: web.Application) -> None:
    # Without this, shutdown would wait for each open watch to notice on its next idle check.
    app[_STOPPING_KEY].set()
    app[STORE_KEY].interrupt_change_feeds()


@web.middleware
async def _errors_as_status(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as error:
        return _status_response(error)
    except web.HTTPNotFound:
        # Unrouted paths answer like the API server does: a Status, not aiohttp's plain text.
        return _status_response(unknown_resource(request.path))
    except web.HTTPException:
        raise
    except Exception as error:  # the client must get a Status, never a dropped connection
        log.exception("kube emulator: %s %s failed", request.method, request.path)
        return _status_response(internal_error(repr(error)))


def _status_response(error: ApiError) -> web.Response:
    return web.json_response(error.to_status(), status=error.status)


async def _version(request: web.Request) -> web.Response:
    return web.json_response(discovery.version_info())


async def _healthy(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _core_api(request: web.Request) -> web.StreamResponse:
    segments = _segments(request)
    if not segments:
        return web.json_response(discovery.core_api_versions(request.host))
    if len(segments) == 1:
        return _discovery_or_404(discovery.api_resource_list(CORE_GROUP, segments[0]), request)
    return await _serve_resource(request, _resource_path(request, CORE_GROUP, segments[0], segments[1:]))


async def _named_apis(request: web.Request) -> web.StreamResponse:
    segments = _segments(request)
    if not segments:
        return web.json_response(discovery.api_group_list())
    if len(segments) == 1:
        return _discovery_or_404(discovery.api_group(segments[0]), request)
    if len(segments) == 2:
        return _discovery_or_404(discovery.api_resource_list(segments[0], segments[1]), request)
    return await _serve_resource(request, _resource_path(request, segments[0], segments[1], segments[2:]))


def _segments(request: web.Request) -> list[str]:
    return [segment for segment in request.match_info.get("path", "").split("/") if segment]


def _discovery_or_404(document: dict[str, Any] | None, request: web.Request) -> web.Response:
    if document is None:
        raise unknown_resource(request.path)
    return web.json_response(document)


def _resource_path(request: web.Request, group: str, version: str, rest: list[str]) -> ResourcePath:
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        scoped = lookup_resource_type(group, rest[2], version)
        if scoped is not None and scoped.namespaced:
            namespace, rest = rest[1], rest[2:]
    rtype = lookup_resource_type(group, rest[0], version)
    if rtype is None or len(rest) > 3:
        raise unknown_resource(request.path)
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    # A namespaced object has no cluster-wide URL (only its collection does).
    if rtype.namespaced and namespace is None and name is not None:
        raise unknown_resource(request.path)
    if subresource is not None and subresource not in rtype.subresources:
        raise unknown_resource(request.path)
    return ResourcePath(rtype, version, namespace, name, subresource)


async def _serve_resource(request: web.Request, path: ResourcePath) -> web.StreamResponse:
    store = request.app[STORE_KEY]
    method = request.method
    if path.name is None:
        if method == "GET":
            table = table_request(request.headers.get("Accept", ""), request.query)
            if request.query.get("watch", "").lower() in ("true", "1"):
                settings = request.app[WATCH_SETTINGS_KEY]
                watch = WatchRequest.from_query(request.query, path.rtype, path.version, path.namespace, settings,
                                                table)
                return await serve_watch(request, store, watch, settings, request.app[_STOPPING_KEY])
            return _list_response(store, path, request, table)
        if method == "POST":
            if path.rtype.namespaced and path.namespace is None:
                raise method_not_allowed(method, request.path)
            body = await _json_body(request)
            warnings = _write_checks(request, path, body)
            created = store.create(path.rtype.group, path.rtype.plural, path.namespace, body)
            return _object_response(path, created, status=201, warnings=warnings)
        if method == "DELETE":
            return await _delete_collection(store, path, request)
        raise method_not_allowed(method, request.path)
    group, plural, namespace, name = path.rtype.group, path.rtype.plural, path.namespace, path.name
    if path.subresource == "log":
        if method != "GET":
            raise method_not_allowed(method, request.path)
        store.get(group, plural, namespace, name)  # 404 for a pod that does not exist
        source: Any = request.app[_POD_LOGS_KEY]
        return await serve_pod_log(request, source, namespace or "", name, request.app[_STOPPING_KEY])
    if method == "GET":
        if path.subresource == "scale":
            return web.json_response(store.get_scale(group, plural, namespace, name))
        obj = store.get(group, plural, namespace, name)
        table = table_request(request.headers.get("Accept", ""), request.query)
        if table is not None:
            return web.json_response(to_table(table, path.rtype, path.rtype.api_version(path.version), [obj],
                                              obj["metadata"].get("resourceVersion")))
        return _object_response(path, obj)
    if method == "PUT":
        body = await _json_body(request)
        warnings = _write_checks(request, path, body)
        replaced = store.replace(group, plural, namespace, name, body, subresource=path.subresource)
        return _object_response(path, replaced, warnings=warnings)
    if method == "PATCH":
        patched, warnings = await _patch(store, path, request)
        return _object_response(path, patched, warnings=warnings)
    if method == "DELETE":
        return await _delete(store, path, request)
    raise method_not_allowed(method, request.path)


async def _patch(store: ObjectStore, path: ResourcePath, request: web.Request) -> tuple[dict[str, Any], list[str]]:
    assert path.name is not None
    content_type = request.content_type
    accepted = [JSON_PATCH, MERGE_PATCH] + ([] if path.rtype.is_custom else [STRATEGIC_MERGE_PATCH])
    if content_type not in accepted:
        raise unsupported_media_type(content_type, accepted)
    body = await _json_body(request)
    args = (path.rtype.group, path.rtype.plural, path.namespace, path.name)
    if content_type == JSON_PATCH:
        if not isinstance(body, list):
            raise bad_request("a JSON patch must be a list of operations")
        _write_checks(request, path, None)
        return store.json_patch(*args, body, subresource=path.subresource), []
    if not isinstance(body, dict):
        raise bad_request("a merge patch must be a JSON object")
    warnings = _write_checks(request, path, body)
    return store.merge_patch(*args, body, subresource=path.subresource), warnings


def _write_checks(request: web.Request, path: ResourcePath, body: Any) -> list[str]:
    """Refuse what the sandbox cannot honour, and check the body's fields (``field_validation.py``)."""
    if request.query.get("dryRun"):
        raise bad_request("dryRun: not supported by the sandbox, which cannot run a write without making it; "
                          "leave out --dry-run=server")
    mode = field_validation_mode(request.query)
    if path.subresource == "scale" or body is None:
        return []
    return check_fields(path.rtype, path.version, body, mode)


async def _delete(store: ObjectStore, path: ResourcePath, request: web.Request) -> web.Response:
    assert path.name is not None
    rtype = path.rtype
    options = await _json_body(request, required=False) or {}
    preconditions = options.get("preconditions") if isinstance(options, dict) else None
    if preconditions:
        metadata = store.get(rtype.group, rtype.plural, path.namespace, path.name)["metadata"]
        for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted = preconditions.get(field)
            if wanted and wanted != metadata[field]:
                raise conflict(rtype, path.name, f"Precondition failed: {label} in precondition: {wanted}, "
                               f"{label} in object meta: {metadata[field]}")
    deleted = store.delete(rtype.group, rtype.plural, path.namespace, path.name)
    if rtype.returns_deleted_object:
        return _object_response(path, deleted)
    details = {"name": path.name, "kind": rtype.plural, "uid": deleted["metadata"]["uid"]}
    if rtype.group:
        details["group"] = rtype.group
    return web.json_response(
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
    )


async def _delete_collection(store: ObjectStore, path: ResourcePath, request: web.Request) -> web.Response:
    rtype = path.rtype
    items, _ = store.list(
        rtype.group,
        rtype.plural,
        path.namespace,
        label_selector=request.query.get("labelSelector"),
        field_selector=request.query.get("fieldSelector"),
    )
    deleted = []
    for item in items:
        metadata = item["metadata"]
        deleted.append(store.delete(rtype.group, rtype.plural, metadata.get("namespace"), metadata["name"]))
    return web.json_response(_list_document(path, deleted, str(store.resource_version)))


def _list_response(
    store: ObjectStore, path: ResourcePath, request: web.Request, table: TableRequest | None
) -> web.Response:
    rtype = path.rtype
    items, resource_version = store.list(
        rtype.group,
        rtype.plural,
        path.namespace,
        label_selector=request.query.get("labelSelector"),
        field_selector=request.query.get("fieldSelector"),
    )
    if table is not None:
        return web.json_response(to_table(table, rtype, rtype.api_version(path.version), items, resource_version))
    return web.json_response(_list_document(path, items, resource_version))


def _list_document(path: ResourcePath, items: list[dict[str, Any]], resource_version: str) -> dict[str, Any]:
    api_version = path.rtype.api_version(path.version)
    for item in items:
        item["apiVersion"] = api_version
    return {
        "apiVersion": api_version,
        "kind": f"{path.rtype.kind}List",
        "metadata": {"resourceVersion": resource_version},
        "items": items,
    }


def _object_response(
    path: ResourcePath, obj: dict[str, Any], *, status: int = 200, warnings: list[str] | None = None
) -> web.Response:
    if obj.get("kind") == path.rtype.kind:  # not a Scale
        obj["apiVersion"] = path.rtype.api_version(path.version)
    response = web.json_response(obj, status=status)
    for name, value in warning_headers(warnings or []):
        response.headers.add(name, value)
    return response


async def _json_body(request: web.Request, *, required: bool = True) -> Any:
    if request.content_type.startswith("application/vnd.kubernetes.protobuf"):  # typed clients' default
        raise unsupported_media_type(request.content_type, ["application/json"] + (
            [MERGE_PATCH, JSON_PATCH] if request.method == "PATCH" else []))
    raw = await request.read()
    if not raw.strip():
        if required:
            raise bad_request("the request has no body")
        return None
    try:
        return json.loads(raw)
    except ValueError as error:
        raise bad_request(f"the body is not valid JSON: {error}") from error
