"""How the chart tests get helm: .ci/build-helm refuses a version it cannot build, reuses its cached
binary (printing its path, outside the repository), and a missing helm fails the tests under CI
(CI=true) instead of skipping them; elsewhere they skip naming `make helm`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.helm_chart import HELM_VERSION, ROOT

pytestmark = pytest.mark.timeout(60)

BUILD = ROOT / ".ci" / "build-helm"


def test_a_version_that_is_not_helm_4_is_refused() -> None:
    result = subprocess.run([str(BUILD), "v3.22.1"], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "VERSION must be a helm.sh/helm/v4 module version such as v4.3.2, not 'v3.22.1'" in result.stderr


def test_a_cached_binary_is_reused_and_its_path_printed(tmp_path: Path) -> None:
    """Nothing is built (a build would replace the stub and take minutes): the cached binary under
    $KAFKA_CHATOPS_HELM_CACHE/<version>/helm is the answer."""
    cached = tmp_path / HELM_VERSION / "helm"
    cached.parent.mkdir()
    cached.write_text("#!/bin/sh\n")
    cached.chmod(0o755)
    env = {**os.environ, "KAFKA_CHATOPS_HELM_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([str(BUILD)], capture_output=True, text=True, timeout=30, check=False, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(cached)
    assert cached.read_text() == "#!/bin/sh\n"


@pytest.mark.parametrize(("ci", "outcome"), [("true", "Failed"), ("", "Skipped")])
def test_missing_helm_fails_under_ci_and_skips_elsewhere(tmp_path: Path, ci: str, outcome: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HELM", "CI")}
    env.update({"KAFKA_CHATOPS_HELM_CACHE": str(tmp_path), "PATH": "/nonexistent", "CI": ci})
    code = ("from tests.deploy.helm_chart import helm_binary\n"
            "try:\n    helm_binary()\nexcept BaseException as exc:\n    print(type(exc).__name__, exc)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False,
                            cwd=ROOT, env=env)
    assert result.stdout.startswith(outcome), result.stdout + result.stderr
    assert "`make helm` builds helm" in result.stdout
