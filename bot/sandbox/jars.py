"""Apache Kafka jars from Maven Central, one flat ``libs/`` directory per Kafka version.

Kafka publishes no runnable distribution on Maven Central, only artifacts, so the twin asks Maven
for the runtime closure of ``kafka_2.13`` + ``kafka-tools`` (plus the logging binding the tarball
adds, see ``pom.xml``) and launches ``java -cp '<libs>/*'``. One directory per version, side by
side, so a rolling upgrade really swaps the binaries of one node at a time.

Layout: ``<cache_root>/<version>/libs/*.jar`` (+ ``<version>/cds/``, see ``cds_archive``), and for
MirrorMaker 2 ``<cache_root>/<version>/mirror-libs/*.jar`` (``mirror-pom.xml``: Kafka Connect and the
Mirror connectors, kept off the brokers' classpath; ``fetch_mirror``). A fetch
downloads into ``<cache_root>/.tmp/``, checks the result, then renames it into place, so a
half-finished fetch (Ctrl-C, network error) never looks fetched. A file lock in
``<cache_root>/.locks/`` serialises concurrent fetches of one version (two test sessions, the CLI).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from bot.sandbox.errors import SandboxError

CACHE_ENV = "KAFKA_CHATOPS_KAFKA_CACHE"
# One Log4j2 version for every Kafka version: the newest 2.25 patch, which the 4.2 and 4.3 branches
# moved to (KAFKA-20791). Binding, core and api must match (see pom.xml).
LOG4J_VERSION = "2.25.5"
SLF4J_VERSION = "1.7.36"
KNOWN_GOOD_VERSIONS = ("4.2.2", "4.3.1")
# Release lines whose connect-mirror Maven Central lacks (4.2.2 has none) -> the release whose
# MirrorMaker 2 jars their sandboxes run instead (see mirror_version).
MIRROR_FALLBACK = {"4.2": "4.3.1"}
MIN_JAVA = 17
_INSTALL_HINT = "install them with: apt-get install openjdk-17-jdk-headless maven"
_VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
# `java -version` prints e.g. 'openjdk version "17.0.15" 2025-04-15' or 'java version "1.8.0_392"'.
_JAVA_VERSION_RE = re.compile(r'version "(\d+)(?:\.(\d+))?[^"]*"')
_MVN_TIMEOUT_S = 900.0
# AppCDS: the first broker JVM of a version dumps the classes it loaded into a dynamic archive at
# exit; later JVMs of that version map it instead of parsing and verifying ~10k classes again.
# Measured: ~40% less CPU to reach RUNNING (see node.py). The JVM validates the archive (JVM build,
# jar sizes/mtimes) and runs without it on a mismatch, so a stale file costs only the speed-up.
# KAFKA_CHATOPS_CDS=0 turns it off (e.g. to rule it out while debugging a startup problem).
USE_CDS = os.environ.get("KAFKA_CHATOPS_CDS", "1") != "0"
_CDS_CLAIM_MAX_AGE_S = 3600.0
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
_MVN_BOILERPLATE_RE = re.compile(r"-e switch|-X switch|possible solutions|\[Help 1\] http|^\[ERROR\] *$")

_java_checked: dict[str, str] = {}  # java path -> its `-version` text, once it passed (a check costs a JVM start)


def cache_root() -> Path:
    """``$KAFKA_CHATOPS_KAFKA_CACHE`` or ``~/.cache/kafka-chatops/kafka``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "kafka-chatops" / "kafka"


def libs_dir(version: str) -> Path:
    validate_version_string(version)
    return cache_root() / version / "libs"


def validate_version_string(version: str) -> None:
    """Reject anything but a plain release number before it reaches Maven or a path."""
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise SandboxError(
            f"Kafka version {version!r} is not a release number like 4.3.1 "
            f"(known to work: {', '.join(KNOWN_GOOD_VERSIONS)}); 'latest', ranges and wildcards "
            "are not accepted, the twin runs exact versions."
        )


def is_fetched(version: str) -> bool:
    d = libs_dir(version)
    return d.is_dir() and not _self_check_problems(d, version)


def fetch(version: str, *, force: bool = False) -> Path:
    """Resolve the jars of ``version`` into the cache (once) and return its libs directory."""
    validate_version_string(version)
    return _fetch_into(libs_dir(version), version, pom=render_pom(version), force=force,
                       problems=lambda d: _self_check_problems(d, version),
                       what=f"Kafka {version} (org.apache.kafka:kafka_2.13/kafka-tools {version})")


def mirror_version(kafka_version: str) -> str:
    """The Kafka release whose MirrorMaker 2 jars a sandbox of ``kafka_version`` runs.

    The same release where Maven Central has ``connect-mirror``; for 4.2.x (no ``connect-mirror``
    4.2.2 on Central) the newest known 4.3.x: MirrorMaker 2 is a client, and Kafka clients and
    brokers of neighbouring releases speak the same protocol.
    """
    validate_version_string(kafka_version)
    line = ".".join(kafka_version.split(".")[:2])
    return MIRROR_FALLBACK.get(line, kafka_version)


def mirror_libs_dir(kafka_version: str) -> Path:
    """``<cache_root>/<mirror version>/mirror-libs``: the Kafka Connect + MirrorMaker 2 classpath."""
    return cache_root() / mirror_version(kafka_version) / "mirror-libs"


def is_mirror_fetched(kafka_version: str) -> bool:
    d = mirror_libs_dir(kafka_version)
    return d.is_dir() and not _mirror_check_problems(d, mirror_version(kafka_version))


def fetch_mirror(kafka_version: str, *, force: bool = False) -> Path:
    """Resolve the MirrorMaker 2 jars for a sandbox of ``kafka_version`` (once); their directory."""
    version = mirror_version(kafka_version)
    template = resources.files("bot.sandbox").joinpath("mirror-pom.xml").read_text(encoding="utf-8")
    pom = template.replace("@KAFKA_VERSION@", version).replace("@LOG4J_VERSION@", LOG4J_VERSION)
    return _fetch_into(mirror_libs_dir(kafka_version), f"{version}-mirror", pom=pom, force=force,
                       problems=lambda d: _mirror_check_problems(d, version),
                       what=f"MirrorMaker 2 {version} (org.apache.kafka:connect-mirror {version})")


def _fetch_into(target: Path, lock_name: str, *, pom: str, force: bool,
                problems: Callable[[Path], list[str]], what: str) -> Path:
    if not force and target.is_dir() and not problems(target):
        return target
    require_java()  # no point downloading 50 MB for a machine that cannot run them
    mvn = _require_mvn()
    root = cache_root()
    # Lock and temp dir live outside <version>/, so a failed fetch (e.g. of an unreleased version)
    # leaves no <version> directory behind; the temp dir shares the filesystem for an atomic rename.
    (root / ".locks").mkdir(parents=True, exist_ok=True)
    with _locked(root / ".locks" / f"{lock_name}.lock"):
        if not force and target.is_dir() and not problems(target):  # another process finished meanwhile
            return target
        (root / ".tmp").mkdir(exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{lock_name}-", dir=root / ".tmp"))
        try:
            pom_path = tmp / "pom.xml"
            pom_path.write_text(pom, encoding="utf-8")
            out_dir = tmp / "libs"
            _run_mvn(mvn, pom_path, out_dir, what)
            found = problems(out_dir)
            if found:
                raise SandboxError(
                    f"Maven resolved {what}, but the jar set fails the self-check: "
                    f"{'; '.join(found)}. Check bot/sandbox/pom.xml and mirror-pom.xml."
                )
            if target.exists():  # force, or a broken leftover: replace it
                shutil.rmtree(target)
                if target.name == "libs":  # a CDS archive records the broker jars it was built from
                    shutil.rmtree(target.parent / "cds", ignore_errors=True)
            target.parent.mkdir(parents=True, exist_ok=True)
            out_dir.rename(target)  # same filesystem: atomic
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def render_pom(version: str) -> str:
    """The packaged template with the version filled in."""
    validate_version_string(version)
    template = resources.files("bot.sandbox").joinpath("pom.xml").read_text(encoding="utf-8")
    return template.replace("@KAFKA_VERSION@", version).replace("@LOG4J_VERSION@", LOG4J_VERSION)


def require_java() -> str:
    """Path of a ``java`` >= 17 (``$JAVA_HOME/bin/java`` first, then ``PATH``)."""
    java: str | None = None
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home) / "bin" / "java", os.X_OK):
        java = str(Path(java_home) / "bin" / "java")
    else:
        java = shutil.which("java")
    if java is None:
        raise SandboxError(f"No `java` found (JAVA_HOME or PATH). The sandbox needs Java {MIN_JAVA}+ and Maven; "
                           f"{_INSTALL_HINT}.")
    if java in _java_checked:
        return java
    try:
        proc = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SandboxError(f"`{java} -version` failed: {e}. {_INSTALL_HINT}.") from e
    text = proc.stderr + proc.stdout
    m = _JAVA_VERSION_RE.search(text)
    if not m:
        raise SandboxError(f"Cannot read the Java version from `{java} -version`: {text.strip()[:300]!r}")
    major = int(m.group(1))
    if major == 1 and m.group(2):  # "1.8.0_x" style = Java 8
        major = int(m.group(2))
    if major < MIN_JAVA:
        raise SandboxError(f"{java} is Java {major}; Kafka 4.x brokers need Java {MIN_JAVA}+. {_INSTALL_HINT} "
                           "(or point JAVA_HOME at a newer JDK).")
    _java_checked[java] = text
    return java


def java_fingerprint() -> str:
    """Short hash of the java path and its ``-version`` text (keys artifacts tied to one JVM build)."""
    java = require_java()
    return hashlib.sha256(f"{java}\n{_java_checked[java]}".encode()).hexdigest()[:12]


def _require_mvn() -> str:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SandboxError(f"No `mvn` (Maven) on PATH; the sandbox fetches Kafka's jars with it. {_INSTALL_HINT}.")
    return mvn


def _run_mvn(mvn: str, pom: Path, out_dir: Path, what: str) -> None:
    # -U: retry artifacts whose earlier lookup failed; otherwise Maven caches a "not found" (e.g. from
    # a network blip) in ~/.m2 for a day and keeps failing without asking Central again.
    cmd = [mvn, "-B", "-q", "-U", "-Dstyle.color=never", "-f", str(pom), "dependency:copy-dependencies",
           "-DincludeScope=runtime", f"-DoutputDirectory={out_dir}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_MVN_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as e:
        raise SandboxError(f"Maven did not finish fetching {what} within {_MVN_TIMEOUT_S:.0f} s "
                           "(is Maven Central reachable?).") from e
    if proc.returncode != 0:
        lines = [_ANSI_RE.sub("", ln).rstrip() for ln in (proc.stdout + proc.stderr).splitlines()]
        # Drop Maven's generic advice ("Re-run Maven using the -X switch", wiki links): noise here.
        lines = [ln for ln in lines if ln.strip() and not _MVN_BOILERPLATE_RE.search(ln)]
        tail = "\n".join(lines[-12:])
        raise SandboxError(
            f"Maven could not resolve {what}; is it "
            f"a released version? Known to work: {', '.join(KNOWN_GOOD_VERSIONS)}. Maven's output ends with:\n"
            f"{tail}"
        )


def _self_check_problems(d: Path, version: str) -> list[str]:
    """What is wrong with a libs directory (empty list = usable)."""
    return _jar_problems(d, (f"kafka_2.13-{version}.jar", f"kafka-tools-{version}.jar"))


def _mirror_check_problems(d: Path, version: str) -> list[str]:
    """What is wrong with a mirror-libs directory (empty list = usable)."""
    return _jar_problems(d, (f"connect-mirror-{version}.jar", f"connect-mirror-client-{version}.jar",
                             f"connect-runtime-{version}.jar"))


def _jar_problems(d: Path, required: tuple[str, ...]) -> list[str]:
    if not d.is_dir():
        return [f"{d} does not exist"]
    names = {p.name for p in d.iterdir()}
    problems = [f"{jar} missing" for jar in required if jar not in names]
    if f"slf4j-api-{SLF4J_VERSION}.jar" not in names:
        problems.append(f"slf4j-api-{SLF4J_VERSION}.jar missing")
    if any(n.startswith("slf4j-api-2") for n in names):
        problems.append("an slf4j-api 2.x jar is present (the SLF4J 1.7 binding would be ignored)")
    if not any(n.startswith("log4j-slf4j-impl-") for n in names):
        problems.append("log4j-slf4j-impl missing (SLF4J would drop every log line)")
    for art in ("log4j-slf4j-impl", "log4j-core", "log4j-api"):
        if f"{art}-{LOG4J_VERSION}.jar" not in names:
            problems.append(f"{art}-{LOG4J_VERSION}.jar missing")
    return problems


def cds_archive(version: str) -> Path:
    """Path of the AppCDS archive of ``version`` for the current JVM build (may not exist yet).

    Keyed by the JVM build because an archive only fits the JVM that wrote it.
    """
    return libs_dir(version).parent / "cds" / f"kafka-{java_fingerprint()}.jsa"


@dataclass
class CdsDump:
    """A claimed dump in flight: the JVM writes ``partial`` while exiting; ``finish`` publishes it."""

    partial: Path
    archive: Path
    claim: Path

    def finish(self, returncode: int) -> None:
        """Call once the JVM has exited."""
        try:
            # Written by a normal exit (SIGTERM included); a SIGKILLed JVM leaves nothing or a torn file.
            if returncode >= 0 and self.partial.is_file() and self.partial.stat().st_size > 0:
                self.partial.replace(self.archive)
            else:
                self.partial.unlink(missing_ok=True)
        except OSError:
            pass
        finally:
            self.claim.unlink(missing_ok=True)


def cds_flags(version: str, *, dump_tag: str | None) -> tuple[list[str], CdsDump | None]:
    """JVM flags that map the version's CDS archive; with none yet and a ``dump_tag``, flags that
    make this JVM dump one at exit (unless another JVM already is), plus the dump to finish."""
    if not USE_CDS:
        return [], None
    archive = cds_archive(version)
    if archive.is_file():
        return [f"-XX:SharedArchiveFile={archive}"], None
    if dump_tag is None:
        return [], None
    claim = archive.with_suffix(".dumping")
    try:
        archive.parent.mkdir(parents=True, exist_ok=True)
        if not claim_cds_dump(claim, archive):
            return [], None
    except OSError:  # read-only cache: run without CDS
        return [], None
    partial = archive.with_name(f"{archive.stem}.{dump_tag}.tmp.jsa")
    return [f"-XX:ArchiveClassesAtExit={partial}"], CdsDump(partial, archive, claim)


def claim_cds_dump(claim: Path, archive: Path) -> bool:
    """Exactly one JVM at a time dumps an archive: the one whose starter created ``claim``."""
    for _ in range(2):
        try:
            fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = int(claim.read_text() or "0")
                age = time.time() - claim.stat().st_mtime
            except (OSError, ValueError):
                owner, age = 0, 0.0
            if owner and _pid_alive(owner) and age < _CDS_CLAIM_MAX_AGE_S:
                return False
            # Stale: its starter died (its JVM with it, by PDEATHSIG). Drop it and its partial dumps.
            claim.unlink(missing_ok=True)
            for leftover in archive.parent.glob(f"{archive.stem}.*.tmp.jsa"):
                leftover.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
