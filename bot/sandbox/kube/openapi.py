"""OpenAPI v3, what ``kubectl explain`` and ``kubectl apply`` read.

kubectl (1.27+) fetches ``/openapi/v3``, a map from group-version path to the URL of its document,
then ``/openapi/v3/apis/<group>/<version>`` (``/openapi/v3/api/v1`` for the core group):

- ``explain`` finds the kind through the GET operation of the resource's path, then the schema in
  ``components.schemas`` whose ``x-kubernetes-group-version-kind`` names it. The schemas are the
  CRDs' (trimmed, ``strimzi-crds.yaml``), named as the API server names CRD schemas (reversed group,
  version, kind: ``io.strimzi.kafka.v1.Kafka``). Built-in types have paths but no schema here:
  ``kubectl explain pod`` answers that the kind is not in the schema, rather than explaining from
  an invented one.
- ``apply``, ``create`` and ``replace`` look whether the PATCH operation takes ``fieldValidation``;
  it does for every type (``field_validation.py``), so kubectl leaves validation to the server
  instead of downloading ``/openapi/v2``, which the sandbox does not serve. ``dryRun`` is not
  offered: kubectl then refuses ``--dry-run=server`` itself.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from typing import Any

from aiohttp import web

from bot.sandbox.kube.api_errors import unknown_resource
from bot.sandbox.kube.crds import definition_for
from bot.sandbox.kube.resources import RESOURCE_TYPES, ResourceType

ROOT = "/openapi/v3"
_TYPE_META = {
    "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this "
                   "representation of an object. Servers should convert recognized schemas to the latest internal "
                   "value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/"
                   "devel/sig-architecture/api-conventions.md#resources"},
    "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object "
             "represents. Servers may infer this from the endpoint the client submits requests to. Cannot be "
             "updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/"
             "api-conventions.md#types-kinds"},
    "metadata": {"type": "object", "description": "Standard object's metadata. More info: "
                 "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"},
}


_WRITE_PARAMETERS = [
    {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True},
     "description": "fieldValidation instructs the server on how to handle objects in the request containing "
     "unknown or duplicate fields. Valid values are: Ignore, Warn (the default), Strict."},
    {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": True},
     "description": "fieldManager is a name associated with the actor or entity that is making these changes."},
]


def add_routes(app: web.Application) -> None:
    app.router.add_get(ROOT, _paths)
    app.router.add_get(ROOT + "/{path:.+}", _group_version)


def schema_name(rtype: ResourceType, version: str) -> str:
    """``io.strimzi.kafka.v1.Kafka``: the group reversed, then the version and the kind."""
    group = rtype.group.split(".") if rtype.group else ["core"]
    return ".".join([*reversed(group), version, rtype.kind])


async def _paths(request: web.Request) -> web.Response:
    paths = {path: {"serverRelativeURL": f"{ROOT}/{path}?hash={_hash(path)}"} for path in _documents()}
    return web.json_response({"paths": paths})


async def _group_version(request: web.Request) -> web.Response:
    document = _documents().get(request.match_info["path"])
    if document is None:
        raise unknown_resource(request.path)
    return web.json_response(document, headers={"Cache-Control": "public, immutable"})


@functools.cache
def _documents() -> dict[str, dict[str, Any]]:
    """One OpenAPI document per served group-version: ``apis/<group>/<version>`` (or ``api/v1``) -> doc."""
    documents: dict[str, dict[str, Any]] = {}
    for rtype in RESOURCE_TYPES:
        crd = definition_for(rtype)
        for version in rtype.versions:
            path = f"apis/{rtype.group}/{version}" if rtype.group else f"api/{version}"
            document = documents.setdefault(path, {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes", "version": "v1.33.0"},
                "paths": {},
                "components": {"schemas": {}},
            })
            gvk = {"group": rtype.group, "kind": rtype.kind, "version": version}
            name = schema_name(rtype, version)
            response: dict[str, Any] = {"description": "OK"}
            if crd is not None:
                schema = copy.deepcopy(crd.schema)
                schema["properties"] = {**_TYPE_META, **schema.get("properties", {})}
                schema["x-kubernetes-group-version-kind"] = [gvk]
                document["components"]["schemas"][name] = schema
                response["content"] = {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}
            scope = "namespaces/{namespace}/" if rtype.namespaced else ""
            document["paths"][f"/{path}/{scope}{rtype.plural}/{{name}}"] = {
                "get": {"operationId": f"read{rtype.kind}", "x-kubernetes-action": "get",
                        "x-kubernetes-group-version-kind": gvk, "responses": {"200": response}},
                "patch": {"operationId": f"patch{rtype.kind}", "x-kubernetes-action": "patch",
                          "x-kubernetes-group-version-kind": gvk, "parameters": _WRITE_PARAMETERS,
                          "responses": {"200": response}},
            }
    return documents


def _hash(path: str) -> str:
    return hashlib.sha512(json.dumps(_documents()[path], sort_keys=True).encode()).hexdigest()[:128].upper()
