"""The bot's Kubernetes gateway over real HTTP against the sandbox's API emulator served in-process,
with an RBAC denial in front of it: what the adapter tests share. ``forbid(path)`` names the object a
request may not read (kind as the API writes it, API group, name), or None to let it through."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.kube import KubeClusterGateway, load_api_client
from bot.sandbox.kube import ObjectStore, create_app, start_server, write_kubeconfig

Forbid = Callable[[str], tuple[str, str, str] | None]


def forbidden(resource: str, group: str, name: str, namespace: str) -> web.Response:
    """A 403 as the API server answers it when the bot's Role does not allow ``get``."""
    kind = f"{resource}.{group}" if group else resource
    return web.json_response(
        {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
         "message": f'{kind} "{name}" is forbidden: User "system:serviceaccount:bots:chatops" cannot get resource '
                    f'"{resource}" in API group "{group}" in the namespace "{namespace}"'}, status=403)


@asynccontextmanager
async def emulator_gateway(tmp_path: Path, namespace: str, forbid: Forbid
                           ) -> AsyncIterator[tuple[ObjectStore, KubeClusterGateway]]:
    store = ObjectStore()
    app = create_app(store)

    @web.middleware
    async def rbac(request: web.Request, handler: Any) -> web.StreamResponse:
        denied = forbid(request.path)
        if denied is not None:
            resource, group, name = denied
            return forbidden(resource, group, name, request.path.split("/namespaces/", 1)[1].split("/", 1)[0])
        response: web.StreamResponse = await handler(request)
        return response

    app.middlewares.append(rbac)
    runner, url = await start_server(store, app=app)
    gateway = KubeClusterGateway(load_api_client(str(write_kubeconfig(tmp_path / "kubeconfig", url,
                                                                       namespace=namespace, context_name="test"))))
    try:
        yield store, gateway
    finally:
        gateway.close()
        await runner.cleanup()
