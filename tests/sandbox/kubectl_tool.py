"""Running a real kubectl against a sandbox: where the binary is, and how its output reads.

The kubectl is the one ``make kubectl`` (``.ci/build-kubectl``) builds from the Go module proxy at
the release in ``.ci/kubectl/VERSION``, cached at ``~/.cache/kafka-chatops/kubectl/<version>/kubectl``
(``$KAFKA_CHATOPS_KUBECTL_CACHE`` moves the directory); ``$KUBECTL`` names another binary. Whatever
kubectl is on the PATH is not used: its version would decide what the test proves.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VERSION_FILE = PROJECT_ROOT / ".ci" / "kubectl" / "VERSION"


def pinned_version() -> str:
    return VERSION_FILE.read_text(encoding="utf-8").strip()


def cached_kubectl() -> Path:
    root = os.environ.get("KAFKA_CHATOPS_KUBECTL_CACHE") or str(Path.home() / ".cache" / "kafka-chatops" / "kubectl")
    return Path(root) / pinned_version() / "kubectl"


def locate_kubectl() -> Path:
    """The kubectl to test with; under CI (``CI=true``) a missing one fails the test, else it skips."""
    chosen = os.environ.get("KUBECTL")
    path = Path(chosen) if chosen else cached_kubectl()
    if path.is_file() and os.access(path, os.X_OK):
        return path
    origin = "$KUBECTL" if chosen else f"the kubectl {pinned_version()} cache"
    message = (f"no kubectl at {path} ({origin}): `make kubectl` builds it from the Go module proxy "
               "(needs Go >= 1.26), or point $KUBECTL at a kubectl binary")
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@dataclass(frozen=True)
class Kubectl:
    binary: Path
    kubeconfig: str

    def env(self, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("KUBE")}
        return {**env, "KUBECONFIG": self.kubeconfig, **extra}

    def run(self, *args: str, check: bool = True, timeout: float = 60, stdin: str | None = None,
            **env: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([str(self.binary), *args], capture_output=True, text=True, timeout=timeout,
                              env=self.env(**env), check=False, input=stdin)
        if check and proc.returncode != 0:
            raise AssertionError(f"`kubectl {' '.join(args)}` exited {proc.returncode}:\n{proc.stderr}{proc.stdout}")
        return proc

    def out(self, *args: str, **env: str) -> str:
        return self.run(*args, **env).stdout

    def start(self, *args: str, **env: str) -> subprocess.Popen[str]:
        """kubectl in the background (``wait``, ``logs -f``, ``get -w``); the caller ends it."""
        return subprocess.Popen([str(self.binary), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=self.env(**env))


def table(text: str) -> list[dict[str, str]]:
    """kubectl's human-readable table as rows keyed by header (columns are 2+ spaces apart)."""
    lines = [line for line in text.splitlines() if line.strip()]
    headers = re.split(r"\s{2,}", lines[0].strip())
    starts = [lines[0].index(header) for header in headers]
    rows = []
    for line in lines[1:]:
        cells = [line[start:end].strip() for start, end in zip(starts, [*starts[1:], None], strict=True)]
        rows.append(dict(zip(headers, cells, strict=True)))
    return rows
