"""Processes of a sandbox, from outside it: waiting for one to go, stopping the daemon's process
group, and killing whatever still runs from the sandbox's directory (``sandbox down``)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path


def wait_until_true(predicate: Callable[[], bool], limit_s: float) -> bool:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


def stop_process_group(pid: int, *, grace_s: float) -> None:
    """SIGTERM the daemon's session (it stops its brokers), SIGKILL if it does not go."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        if wait_until_true(lambda: not alive(pid), wait_s):
            return


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def kill_leftovers(directory: Path) -> int:
    """SIGKILL any process whose command line points into this sandbox's directory (and no other)."""
    root = str(directory.resolve())
    killed = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(mentions(arg.decode(errors="replace"), root) for arg in argv) and alive(int(proc.name)):
            try:
                os.kill(int(proc.name), signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def mentions(arg: str, root: str) -> bool:
    # Exact path or a path below it, never a sibling sharing the prefix (".../demo" vs ".../demo2").
    return arg == root or f"{root}/" in arg or arg.endswith(f"={root}")
