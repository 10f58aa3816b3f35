"""The executors of ``/kafka mirror pause|resume|remove`` (``runbooks.catalogue.mirror_manage``)."""

from __future__ import annotations

from typing import Any

from handlers.mirror_ports import MirrorMakerGone
from handlers.ports import PatchRejected
from handlers.steps.base import DoneResult, GateResult, StepContext, StepError, tolerant
from handlers.steps.mirror import connectors_text, failure_of, mirror_makers
from runbooks.catalogue.mirror_manage import MirrorStateArgs, RemoveMirrorArgs, with_state
from runbooks.engine.models import Step

_CONNECT_STATE = {"paused": "PAUSED", "running": "RUNNING"}


class MirrorStateStep:
    async def gate(self, ctx: StepContext, step: Step, args: MirrorStateArgs) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: MirrorStateArgs) -> dict[str, Any]:
        return {"cluster": ctx.cluster.name}  # never empty: the engine observes until it holds something

    async def act(self, ctx: StepContext, step: Step, args: MirrorStateArgs) -> str:
        port = mirror_makers(ctx)
        found = await port.get_mirror_maker(ctx.cluster, args.name)
        if found is None:
            raise StepError(f"KafkaMirrorMaker2 {args.name} is gone", permanent=True)
        try:
            await port.patch_mirror_maker_spec(ctx.cluster, args.name, with_state(found.spec, args.state),
                                               expected_generation=args.generation)
        except (PatchRejected, MirrorMakerGone) as exc:
            raise StepError(str(exc), permanent=True) from None
        return f"set state {args.state} on {', '.join(args.connectors)}"

    async def done(self, ctx: StepContext, step: Step, args: MirrorStateArgs) -> DoneResult:
        return await tolerant(self._done(ctx, step, args), "KafkaMirrorMaker2 status")

    async def _done(self, ctx: StepContext, step: Step, args: MirrorStateArgs) -> DoneResult:
        if not step.applied:
            return DoneResult(done=False)
        found = await mirror_makers(ctx).get_mirror_maker(ctx.cluster, args.name)
        if found is None:
            raise StepError(f"KafkaMirrorMaker2 {args.name} is gone", permanent=True)
        failed = failure_of(found)
        if failed is not None and args.state == "running":
            return DoneResult(done=False, failure=failed)
        want = _CONNECT_STATE[args.state]
        ours = [found.connector(n) for n in args.connectors]
        settled = found.observed_generation >= found.generation and all(
            c is not None and c.state == want and all(t.state == want for t in c.tasks) for c in ours)
        text = connectors_text(found.connectors)
        return DoneResult(done=settled, detail=text if settled else f"waiting for {want}: {text}")


class RemoveMirrorStep:
    async def gate(self, ctx: StepContext, step: Step, args: RemoveMirrorArgs) -> GateResult:
        return GateResult(ok=True)

    async def observe(self, ctx: StepContext, step: Step, args: RemoveMirrorArgs) -> dict[str, Any]:
        return {"cluster": ctx.cluster.name}  # never empty: the engine observes until it holds something

    async def act(self, ctx: StepContext, step: Step, args: RemoveMirrorArgs) -> str:
        deleted = await mirror_makers(ctx).delete_mirror_maker(ctx.cluster, args.name)
        return f"deleted KafkaMirrorMaker2 {ctx.cluster.namespace}/{args.name}" if deleted else \
            f"KafkaMirrorMaker2 {args.name} was gone already"

    async def done(self, ctx: StepContext, step: Step, args: RemoveMirrorArgs) -> DoneResult:
        found = await mirror_makers(ctx).get_mirror_maker(ctx.cluster, args.name)
        return DoneResult(done=found is None, detail="" if found is None else "being deleted")
