"""OpenAPI v3 for the Strimzi resources, what ``kubectl explain`` reads.

kubectl (1.27+) fetches ``/openapi/v3``, a map from group-version path to the URL of its document,
then ``/openapi/v3/apis/<group>/<version>`` and looks in ``components.schemas`` for the schema whose
``x-kubernetes-group-version-kind`` names the kind it explains. The schemas are the CRDs' (trimmed,
``strimzi-crds.yaml``), named as the API server names CRD schemas (reversed group, version, kind:
``io.strimzi.kafka.v1.Kafka``). Built-in types have no document here: ``kubectl explain pod``
answers that it cannot find the resource, rather than explaining from an invented schema.
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


def add_routes(app: web.Application) -> None:
    app.router.add_get(ROOT, _paths)
    app.router.add_get(ROOT + "/{path:.+}", _group_version)


def schema_name(rtype: ResourceType, version: str) -> str:
    """``io.strimzi.kafka.v1.Kafka``: the group reversed, then the version and the kind."""
    return ".".join([*reversed(rtype.group.split(".")), version, rtype.kind])


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
    """One OpenAPI document per group-version that serves a CRD: ``apis/<group>/<version>`` -> doc."""
    documents: dict[str, dict[str, Any]] = {}
    for rtype in RESOURCE_TYPES:
        crd = definition_for(rtype)
        if crd is None:
            continue
        for version in rtype.versions:
            path = f"apis/{rtype.group}/{version}"
            document = documents.setdefault(path, {
                "openapi": "3.0.0",
                "info": {"title": "Kubernetes CRD Swagger", "version": "v0.1.0"},
                "paths": {},
                "components": {"schemas": {}},
            })
            gvk = {"group": rtype.group, "kind": rtype.kind, "version": version}
            schema = copy.deepcopy(crd.schema)
            schema["properties"] = {**_TYPE_META, **schema.get("properties", {})}
            schema["x-kubernetes-group-version-kind"] = [gvk]
            name = schema_name(rtype, version)
            document["components"]["schemas"][name] = schema
            # kubectl explain finds the kind through the GET operation of the resource's path.
            scope = "namespaces/{namespace}/" if rtype.namespaced else ""
            document["paths"][f"/{path}/{scope}{rtype.plural}/{{name}}"] = {"get": {
                "operationId": f"read{rtype.kind}",
                "x-kubernetes-action": "get",
                "x-kubernetes-group-version-kind": gvk,
                "responses": {"200": {"description": "OK", "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}}},
            }}
    return documents


def _hash(path: str) -> str:
    return hashlib.sha512(json.dumps(_documents()[path], sort_keys=True).encode()).hexdigest()[:128].upper()
