"""Which Kubernetes API each managed cluster is reached through: the clusters file's ``kubeconfig``
and ``context`` keys, resolved and checked at start.

- Neither key: ``KUBECONFIG`` with its current context, or, when the bot runs in a pod
  (``KUBERNETES_SERVICE_HOST`` set) and no ``KUBECONFIG`` is given, the pod's service account. That
  is what the bot did before the keys existed.
- ``context`` alone: that context of ``KUBECONFIG`` (or ``~/.kube/config``).
- ``kubeconfig`` (a path; relative to the clusters file's folder, like the paths inside a
  kubeconfig are relative to it): that file, with ``context`` or its current context.

Clusters whose (files, context) come out the same share one target, hence one API client: three
clusters in one Kubernetes cluster cost one connection pool, not three.

A kubeconfig holds tokens and keys: messages name files, keys and context names, never contents.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config.yaml_files import YamlFileError, kind_of, read_yaml

KUBECONFIG_FORM = "a kubeconfig file (a YAML mapping with clusters, users, contexts and current-context)"
IN_CLUSTER_ENV = "KUBERNETES_SERVICE_HOST"
HOME_KUBECONFIG = "~/.kube/config"


@dataclass(frozen=True)
class KubeTarget:
    """One Kubernetes API: the kubeconfig file(s) and the context in them, or ``files=()``: the default
    loader (the pod's service account, else ``~/.kube/config``)."""

    files: tuple[str, ...] = ()
    context: str | None = None

    @property
    def kubeconfig(self) -> str | None:
        """The files as the client's loader takes them (a KUBECONFIG-style list)."""
        return os.pathsep.join(self.files) if self.files else None

    def describe(self) -> str:
        if not self.files:
            return "the in-cluster service account or ~/.kube/config"
        return f"{self.kubeconfig} context {self.context or '(current)'}"


@dataclass(frozen=True)
class ClusterKube:
    """What a cluster's entry in the clusters file says about its Kubernetes API."""

    kubeconfig: str | None = None
    context: str | None = None


class KubeTargetProblems(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _contexts_of(data: dict[str, Any]) -> list[str]:
    contexts = data.get("contexts")
    if not isinstance(contexts, list):
        return []
    return [str(c["name"]) for c in contexts if isinstance(c, dict) and c.get("name")]


def _read_kubeconfigs(files: list[Path], *, name: str) -> tuple[list[str], str | None]:
    """The context names the files hold together, and the current context (the first file's that
    names one, as kubectl merges them). KubeTargetProblems when a file is not a kubeconfig."""
    contexts: list[str] = []
    current: str | None = None
    for file in files:
        try:
            data = read_yaml(file, name=f"{name} {file}", valid=KUBECONFIG_FORM, unique_keys=False)
        except YamlFileError as exc:
            raise KubeTargetProblems([str(exc)]) from None
        if not isinstance(data, dict):
            raise KubeTargetProblems([f"{name} {file} is not a kubeconfig (its top level is {kind_of(data)}): "
                                      f"give {KUBECONFIG_FORM}"])
        found = _contexts_of(data)
        if not found:
            raise KubeTargetProblems([f"{name} {file} is not a kubeconfig: it lists no `contexts`: give "
                                      f"{KUBECONFIG_FORM}"])
        contexts += [c for c in found if c not in contexts]
        if current is None and isinstance(data.get("current-context"), str) and data["current-context"]:
            current = data["current-context"]
    return contexts, current


def _choose_context(where: str, files: str, contexts: list[str], wanted: str | None, current: str | None) -> str:
    listed = ", ".join(contexts)
    if wanted is not None:
        if wanted not in contexts:
            raise KubeTargetProblems([f"{where}.context {wanted!r} is not a context of {files}: give one of "
                                      f"{listed}"])
        return wanted
    if current is None or current not in contexts:
        said = f"its current-context {current!r} is not one of its contexts" if current else "it has no current-context"
        raise KubeTargetProblems([f"{where}: {files}: {said}: give `context`, one of {listed}"])
    return current


def _default_files(default_kubeconfig: str | None, environ: Mapping[str, str]) -> list[Path]:
    """The files KUBECONFIG names (those that exist, as kubectl reads a list), else ~/.kube/config
    when the bot does not run in a pod."""
    if default_kubeconfig:
        paths = [Path(p).expanduser() for p in default_kubeconfig.split(os.pathsep) if p]
        existing = [p for p in paths if p.exists()]
        return existing if len(paths) > 1 else paths
    if environ.get(IN_CLUSTER_ENV):
        return []
    home = Path(HOME_KUBECONFIG).expanduser()
    return [home] if home.exists() else []


def resolve_kube_targets(
    clusters: Mapping[str, ClusterKube], *, default_kubeconfig: str | None, base_dir: Path,
    environ: Mapping[str, str] | None = None,
) -> dict[str, KubeTarget]:
    """The Kubernetes API of every cluster; KubeTargetProblems naming each cluster's problem.

    ``default_kubeconfig`` is ``KUBECONFIG``; a cluster without either key keeps the unresolved
    default target (``KubeTarget(files=KUBECONFIG's)``) so the client's loader decides, as before.
    """
    environ = os.environ if environ is None else environ
    targets: dict[str, KubeTarget] = {}
    problems: list[str] = []
    read: dict[tuple[str, ...], tuple[list[str], str | None]] = {}
    for name, kube in clusters.items():
        where = f"clusters.{name}"
        try:
            if kube.kubeconfig is None and kube.context is None:
                files = [Path(p).expanduser() for p in (default_kubeconfig or "").split(os.pathsep) if p]
                targets[name] = KubeTarget(files=tuple(str(p.resolve()) for p in files))
                continue
            if kube.kubeconfig is not None:
                path = Path(kube.kubeconfig).expanduser()
                paths = [path if path.is_absolute() else base_dir / path]
                label = f"{where}.kubeconfig"
            else:
                paths = _default_files(default_kubeconfig, environ)
                label = "KUBECONFIG" if default_kubeconfig else HOME_KUBECONFIG
                if not paths:
                    raise KubeTargetProblems([
                        f"{where}.context {kube.context!r} names a context, but there is no kubeconfig to find "
                        f"it in (KUBECONFIG is not set and {HOME_KUBECONFIG} does not exist): give "
                        f"{where}.kubeconfig, the path of {KUBECONFIG_FORM}"])
            key = tuple(str(p.resolve()) for p in paths)
            if key not in read:
                read[key] = _read_kubeconfigs(paths, name=label)
            contexts, current = read[key]
            shown = os.pathsep.join(str(p) for p in paths)
            context = _choose_context(where, shown, contexts, kube.context, current)
            targets[name] = KubeTarget(files=key, context=context)
        except KubeTargetProblems as exc:
            problems += [p if p.startswith(where) else f"{where}: {p}" for p in exc.problems]
    if problems:
        raise KubeTargetProblems(problems)
    return _shared(targets, read)


def _shared(targets: dict[str, KubeTarget], read: dict[tuple[str, ...], tuple[list[str], str | None]]
            ) -> dict[str, KubeTarget]:
    """A cluster on the default target whose KUBECONFIG was also read for another cluster gets that
    file's current context spelled out, so it shares a client with a cluster naming the same
    file and context."""
    out = {}
    for name, target in targets.items():
        if target.context is None and target.files in read:
            target = KubeTarget(files=target.files, context=read[target.files][1])
        out[name] = target
    return out
