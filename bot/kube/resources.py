"""``ResourceCalls``: the few core/v1, apps/v1 and events.k8s.io/v1 calls the bot makes, in place of
the client's generated ``CoreV1Api``, ``AppsV1Api`` and ``EventsV1Api``.

Why: the modules of those classes import every model their hundreds of methods name and wrap each
method in pydantic's ``validate_call``; loading them costs a bot about 26 MB resident, for seven
calls whose answers it reads as raw JSON anyway (``_preload_content=False``, see bot.kube.gateway).

Each call here is built as the generated one builds it (the same path, query parameters, headers and
the ``BearerToken`` auth the client applies, with its token refresh and client certificates), and
answers as the generated one does with ``_preload_content=False``: the urllib3 response, with an
``ApiException`` for any status outside 2xx. That is also what ``kubernetes.watch.Watch.stream``
expects of the list calls it is given.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

# The generated calls' keyword arguments the bot passes (itself, or Watch.stream for a watch), and
# their query parameter; in the generated calls' order, so a request's URL is the same.
_QUERY = {
    "field_selector": "fieldSelector",
    "label_selector": "labelSelector",
    "resource_version": "resourceVersion",
    "timeout_seconds": "timeoutSeconds",
    "watch": "watch",
}


class ResourceCalls:
    def __init__(self, api_client: client.ApiClient) -> None:
        self._api = api_client

    def list_namespaced_pod(self, namespace: str, **kwargs: Any) -> Any:
        return self._call("GET", "/api/v1/namespaces/{namespace}/pods", {"namespace": namespace}, **kwargs)

    def read_namespaced_pod(self, name: str, namespace: str, **kwargs: Any) -> Any:
        return self._call("GET", "/api/v1/namespaces/{namespace}/pods/{name}",
                          {"name": name, "namespace": namespace}, **kwargs)

    def patch_namespaced_pod(self, name: str, namespace: str, body: Any, **kwargs: Any) -> Any:
        return self._call("PATCH", "/api/v1/namespaces/{namespace}/pods/{name}",
                          {"name": name, "namespace": namespace}, body=body, **kwargs)

    def read_namespaced_secret(self, name: str, namespace: str, **kwargs: Any) -> Any:
        return self._call("GET", "/api/v1/namespaces/{namespace}/secrets/{name}",
                          {"name": name, "namespace": namespace}, **kwargs)

    def read_namespaced_config_map(self, name: str, namespace: str, **kwargs: Any) -> Any:
        return self._call("GET", "/api/v1/namespaces/{namespace}/configmaps/{name}",
                          {"name": name, "namespace": namespace}, **kwargs)

    def read_namespaced_deployment(self, name: str, namespace: str, **kwargs: Any) -> Any:
        return self._call("GET", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
                          {"name": name, "namespace": namespace}, **kwargs)

    def list_namespaced_event(self, namespace: str, **kwargs: Any) -> Any:
        """events.k8s.io/v1 Events, as ``EventsV1Api.list_namespaced_event``."""
        return self._call("GET", "/apis/events.k8s.io/v1/namespaces/{namespace}/events",
                          {"namespace": namespace}, **kwargs)

    def _call(
        self, method: str, path: str, path_params: dict[str, str], *, body: Any = None,
        _content_type: str | None = None, _preload_content: bool = True, _request_timeout: Any = None,
        **params: Any,
    ) -> Any:
        if _preload_content:  # the generated calls' models are what this module exists to avoid
            raise TypeError("ResourceCalls answers raw responses only: pass _preload_content=False")
        unknown = sorted(set(params) - set(_QUERY))
        if unknown:
            raise TypeError(f"ResourceCalls: unexpected arguments {', '.join(unknown)}")
        headers = {"Accept": "application/json"}
        if _content_type:
            headers["Content-Type"] = _content_type
        request = self._api.param_serialize(
            method=method, resource_path=path, path_params=path_params,
            query_params=[(_QUERY[key], params[key]) for key in _QUERY if params.get(key) is not None],
            header_params=headers, body=body, auth_settings=["BearerToken"],
        )
        response = self._api.call_api(*request, _request_timeout=_request_timeout)
        if not 200 <= response.status <= 299:
            response.read()  # type: ignore[no-untyped-call]
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response.response
