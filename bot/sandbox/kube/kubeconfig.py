"""A kubeconfig file that points the unmodified ``kubernetes`` client (or kubectl) at the emulator."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml

# The emulator gives any credentials but a ServiceAccount's token full access; a token keeps clients
# that insist on one happy.
SANDBOX_TOKEN = "kafka-chatops-sandbox"


def write_kubeconfig(path: Path, server_url: str, *, namespace: str, context_name: str,
                     token: str = SANDBOX_TOKEN) -> Path:
    """Write (atomically, mode 0600) a kubeconfig whose current context is ``context_name``.

    ``token``: a ServiceAccount's (from its TokenRequest) makes every request answer to RBAC.
    """
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context_name, "cluster": {"server": server_url}}],
        "users": [{"name": context_name, "user": {"token": token}}],
        "contexts": [
            {"name": context_name, "context": {"cluster": context_name, "user": context_name, "namespace": namespace}}
        ],
        "current-context": context_name,
        "preferences": {},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A bot that (re)loads KUBECONFIG while the sandbox restarts must never read half a file.
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            yaml.safe_dump(config, stream, sort_keys=False)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
