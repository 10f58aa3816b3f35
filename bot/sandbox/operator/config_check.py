"""Kafka's own verdict on ``spec.kafka.config``, before anything rolls (Strimzi's config validation).

Strimzi checks the user's config in ``KafkaCluster.fromCrd`` against a model generated from Kafka's
``ConfigDef`` and, on a bad value, fails the reconciliation with ``InvalidResourceException: Kafka
<ns>/<name> has invalid spec.kafka.config: <errors joined by ", ">`` before it touches a pod. The
twin asks Kafka itself instead of a model: ``ConfigCheck.java`` (package data) builds each node's
rendered properties with ``KafkaConfig.fromProps``, exactly as ``kafka.Kafka`` does at start-up, so
the errors are Kafka's wording ("Invalid value 5.0 for configuration log.cleaner.min.cleanable.ratio:
Value must be no more than 1") where Strimzi's model has its own.

A JVM costs about 0.9 CPU seconds (0.5 when it maps the brokers' CDS archive, which accepts a
class path with an entry appended), so verdicts are cached by content: a reconciliation of an
unchanged spec starts no JVM. The class is compiled once per Kafka version and JVM build into the
jar cache (``<version>/configcheck/``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import shutil
import subprocess
import tempfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

from bot.sandbox import jars
from bot.sandbox.errors import SandboxError
from bot.sandbox.node_files import render_properties
from bot.sandbox.operator.status import ReconcileFailure

log = logging.getLogger(__name__)

SOURCE_NAME = "ConfigCheck.java"
CLASS_NAME = "ConfigCheck"
RUN_TIMEOUT_S = 120.0  # generous: a starved 2-core box can take seconds just to start a JVM
# Small and quick: the check loads KafkaConfig and its ConfigDefs, nothing else. The JVM's own
# warnings (unified logging writes them to stdout by default) go to stderr: stdout is the verdicts.
_JVM_FLAGS = ("-Xmx128m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Djava.awt.headless=true",
              "-Xlog:disable", "-Xlog:all=warning:stderr")


def invalid_config(namespace: str, name: str, problems: Sequence[str]) -> ReconcileFailure:
    """The failure Strimzi reports for a bad spec.kafka.config (its wording around Kafka's)."""
    return ReconcileFailure("InvalidResourceException",
                            f"Kafka {namespace}/{name} has invalid spec.kafka.config: {', '.join(problems)}")


class KafkaConfigChecker:
    """Runs ConfigCheck over rendered broker properties; remembers the last verdicts by content."""

    def __init__(self, *, cache_size: int = 32) -> None:
        self._cache: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._cache_size = cache_size
        self.jvm_runs = 0  # how many times a JVM was started (the cache's effect, for logs and tests)

    async def problems(self, version: str, configs: Sequence[Mapping[str, str]], *,
                       cache_key: str | None = None) -> list[str]:
        """What Kafka refuses in these node configs: distinct messages, [] when valid.

        ``cache_key`` (default: the configs themselves) names the content for the cache.
        """
        key = _content_key(version, configs) if cache_key is None else hashlib.sha256(cache_key.encode()).hexdigest()
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return list(cached)
        verdicts = await self.verdicts(version, configs)
        found = tuple(dict.fromkeys(problem for node in verdicts for problem in node))
        self._cache[key] = found
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return list(found)

    async def verdicts(self, version: str, configs: Sequence[Mapping[str, str]]) -> list[list[str]]:
        """Per node, Kafka's problems with its properties ([] = it would start); one JVM, no cache."""
        launch = await asyncio.to_thread(_launch_args, version)
        with tempfile.TemporaryDirectory(prefix="kc-configcheck-") as tmp:
            files = []
            for i, cfg in enumerate(configs):
                path = Path(tmp) / f"node-{i}.properties"
                path.write_text(render_properties(cfg), encoding="utf-8")
                files.append(str(path))
            self.jvm_runs += 1
            proc = await asyncio.create_subprocess_exec(
                jars.require_java(), *_JVM_FLAGS, *launch, *files,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            try:
                out, err = await asyncio.wait_for(proc.communicate(), timeout=RUN_TIMEOUT_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise SandboxError(f"the Kafka config check did not answer in {RUN_TIMEOUT_S:.0f} s") from None
        lines = out.decode("utf-8", "replace").splitlines()
        if proc.returncode != 0 or len(lines) != len(files):
            detail = (err or out).decode("utf-8", "replace").strip()[-1000:]
            raise SandboxError(f"the Kafka config check failed (exit {proc.returncode}): {detail}")
        verdicts: list[list[str]] = []
        for line in lines:
            verdict, *problems = line.split("\t")
            verdicts.append([] if verdict == "ok" else [p for p in problems if p] or [line])
        return verdicts


def _content_key(version: str, configs: Sequence[Mapping[str, str]]) -> str:
    text = json.dumps([version, [sorted(c.items()) for c in configs]])
    return hashlib.sha256(text.encode()).hexdigest()


def _source() -> str:
    return resources.files("bot.sandbox").joinpath(SOURCE_NAME).read_text(encoding="utf-8")


def _launch_args(version: str) -> list[str]:
    """``-cp ... ConfigCheck`` with the compiled class; the source launcher when there is no javac."""
    libs = jars.libs_dir(version)
    classes = _compiled(version)
    if classes is not None:
        cds, _ = jars.cds_flags(version, dump_tag=None)  # never dumps: only maps the brokers' archive
        return [*cds, "-cp", f"{libs}/*:{classes}", CLASS_NAME]
    with resources.as_file(resources.files("bot.sandbox").joinpath(SOURCE_NAME)) as source:
        return ["-cp", f"{libs}/*", str(source)]


def _compiled(version: str) -> Path | None:
    """Directory holding ConfigCheck.class for this version and JVM build, compiled on first use."""
    source = _source()
    digest = hashlib.sha256(f"{source}\n{jars.java_fingerprint()}".encode()).hexdigest()[:12]
    target = jars.libs_dir(version).parent / "configcheck" / digest
    if (target / f"{CLASS_NAME}.class").is_file():
        return target
    javac = Path(jars.require_java()).resolve().parent / "javac"
    if not javac.is_file():
        log.info("no javac next to java: the Kafka config check runs from source (slower)")
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".compile-", dir=target.parent))
    try:
        (tmp / SOURCE_NAME).write_text(source, encoding="utf-8")
        proc = subprocess.run([str(javac), "-nowarn", "-d", str(tmp), "-cp", f"{jars.libs_dir(version)}/*",
                               str(tmp / SOURCE_NAME)], capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            raise SandboxError(f"compiling the Kafka config check failed: {(proc.stderr or proc.stdout)[-1000:]}")
        try:
            tmp.rename(target)  # atomic; another process may have won the race, which is as good
        except OSError:
            if not (target / f"{CLASS_NAME}.class").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
