"""The ``MirrorMakers`` port in memory: KafkaMirrorMaker2 resources per namespace, with the API
server's bookkeeping (uid, generation bumped on a spec change) and the same checked writes as
``bot.kube.mirror_makers`` (``tests/contracts/test_mirror_maker_ports.py`` holds both to one
contract). ``operator_reports`` plays Strimzi's part: conditions and the connectors' status.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import Any

from handlers.mirror_ports import AutoRestartStatus, ConnectorStatus, MirrorMakerGone, MirrorMakerStatus
from handlers.ports import ClusterRef, PatchRejected


class FakeMirrorMakers:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], MirrorMakerStatus] = {}  # (namespace, name) -> resource
        self.created: list[tuple[str, str]] = []  # (namespace, name) created through the port, in order
        self.deleted: list[tuple[str, str]] = []
        self.spec_patches: list[tuple[str, str, dict[str, Any]]] = []

    # -- what tests (and the fake operator) do ---------------------------------------------------

    def operator_reports(self, namespace: str, name: str, *, ready: bool = True, reason: str = "",
                         message: str = "", connectors: tuple[ConnectorStatus, ...] | None = None,
                         auto_restarts: tuple[AutoRestartStatus, ...] | None = None,
                         url: str = "http://127.0.0.1:8083") -> MirrorMakerStatus:
        """The operator reconciles: it observed the latest generation and reports this status."""
        found = self.objects[(namespace, name)]
        updated = found.model_copy(update={
            "ready": ready, "reason": reason, "message": message, "observed_generation": found.generation,
            "url": url, "connectors": found.connectors if connectors is None else connectors,
            "auto_restarts": found.auto_restarts if auto_restarts is None else auto_restarts})
        self.objects[(namespace, name)] = updated
        return updated

    # -- the port --------------------------------------------------------------------------------

    async def list_mirror_makers(self, cluster: ClusterRef) -> list[MirrorMakerStatus]:
        return sorted((m for (ns, _), m in self.objects.items() if ns == cluster.namespace), key=lambda m: m.name)

    async def get_mirror_maker(self, cluster: ClusterRef, name: str) -> MirrorMakerStatus | None:
        return self.objects.get((cluster.namespace, name))

    async def create_mirror_maker(
        self, cluster: ClusterRef, name: str, spec: Mapping[str, Any], *, labels: Mapping[str, str] | None = None,
    ) -> MirrorMakerStatus:
        existing = self.objects.get((cluster.namespace, name))
        if existing is not None:
            if existing.spec != dict(spec):
                raise PatchRejected(f"a KafkaMirrorMaker2 {cluster.namespace}/{name} exists already with "
                                    "another spec")
            return existing
        made = MirrorMakerStatus(name=name, namespace=cluster.namespace, uid=str(uuid.uuid4()), generation=1,
                                 spec=copy.deepcopy(dict(spec)), labels=dict(labels or {}))
        self.objects[(cluster.namespace, name)] = made
        self.created.append((cluster.namespace, name))
        return made

    async def patch_mirror_maker_spec(
        self, cluster: ClusterRef, name: str, spec: Mapping[str, Any], *, expected_generation: int | None = None,
    ) -> MirrorMakerStatus:
        what = f"KafkaMirrorMaker2 {cluster.namespace}/{name}"
        found = self.objects.get((cluster.namespace, name))
        if found is None:
            raise MirrorMakerGone(f"{what} does not exist")
        if expected_generation is not None and found.generation != expected_generation:
            raise PatchRejected(f"{what} is at generation {found.generation}, the plan was made at "
                                f"{expected_generation}: someone changed its spec since")
        if found.spec == dict(spec):
            return found
        updated = found.model_copy(update={"spec": copy.deepcopy(dict(spec)), "generation": found.generation + 1})
        self.objects[(cluster.namespace, name)] = updated
        self.spec_patches.append((cluster.namespace, name, copy.deepcopy(dict(spec))))
        return updated

    async def delete_mirror_maker(self, cluster: ClusterRef, name: str) -> bool:
        if self.objects.pop((cluster.namespace, name), None) is None:
            return False
        self.deleted.append((cluster.namespace, name))
        return True

    async def annotate_mirror_maker(
        self, cluster: ClusterRef, name: str, annotations: Mapping[str, str | None],
    ) -> MirrorMakerStatus:
        found = self.objects.get((cluster.namespace, name))
        if found is None:
            raise MirrorMakerGone(f"KafkaMirrorMaker2 {cluster.namespace}/{name} does not exist")
        merged = dict(found.annotations)
        for key, value in annotations.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        updated = found.model_copy(update={"annotations": merged})
        self.objects[(cluster.namespace, name)] = updated
        return updated
