"""The files a sandbox node writes and reads: its server.properties and its log.

Apart from ``bot.sandbox.node`` (the JVM's lifecycle) so the operator's config check can render a
properties file without a node, and so the node module stays about its process.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def render_properties(cfg: Mapping[str, str]) -> str:
    """A java.util.Properties text of ``cfg``, one ``key=value`` line each."""
    return "".join(f"{k}={_escape_prop(v)}\n" for k, v in cfg.items())


def _escape_prop(value: str) -> str:
    # java.util.Properties: backslash escapes; newlines would start a new key.
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def read_from(path: Path, start: int, max_bytes: int) -> str:
    """``path`` from byte ``start`` on (at most its last ``max_bytes``); "" if it does not exist yet."""
    try:
        with path.open("rb") as f:
            end = f.seek(0, os.SEEK_END)
            f.seek(max(start, end - max_bytes))
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
