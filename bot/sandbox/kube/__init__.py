"""A Kubernetes API emulator that the unmodified ``kubernetes`` client talks to.

No package registry ships a Kubernetes API server, so the sandbox serves the REST protocol itself
from a local aiohttp server and points a kubeconfig at it. We wrote our own rather than use kmock
(PyPI, 0.8): its ``KubernetesEmulator`` keeps no resourceVersion or generation, ignores label
selectors and never answers 409 or 410, and those are exactly the behaviours the bot must handle
(optimistic concurrency, "did the operator see my change", watch expiry and re-list).

Modules:
- ``resources``: the served types (Strimzi CRs in v1 and v1beta2, StrimziPodSet, pods, PVCs,
  configmaps, events, namespaces, secrets, serviceaccounts, RBAC objects) and their write rules;
- ``store``: ``ObjectStore``, the objects and the API server's semantics, also used in-process by
  the simulated Strimzi operator; ``history``: the change history watches replay;
- ``selectors``, ``patching``, ``scale``, ``objects``, ``api_errors``: the pieces of those semantics;
- ``server``, ``watch_stream``, ``discovery``: the HTTP face; ``kubeconfig``: the file clients load;
- ``service_accounts``, ``rbac``: ServiceAccount tokens (TokenRequest) and the RBAC that requests
  made with one answer to (Roles, bindings; everyone else keeps full access).
"""

from bot.sandbox.kube.api_errors import ApiError
from bot.sandbox.kube.history import WatchEvent
from bot.sandbox.kube.kubeconfig import write_kubeconfig
from bot.sandbox.kube.server import STORE_KEY, create_app, start_server
from bot.sandbox.kube.store import ObjectStore
from bot.sandbox.kube.watch_stream import WatchSettings

__all__ = [
    "STORE_KEY",
    "ApiError",
    "ObjectStore",
    "WatchEvent",
    "WatchSettings",
    "create_app",
    "start_server",
    "write_kubeconfig",
]
