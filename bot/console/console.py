"""``kafka-chatops console``: read commands line by line, print replies and run events.

Text mode prints replies and the run card whenever a run needs a human or finishes; ``--json``
prints one JSON object per line (replies, errors and every run event) for scripts. Approvals
typed here pass the same checks as Slack buttons: the console user is just another id. Its commands
come from the place ``console`` (``runbooks.engine.access``): a cluster bound to channels takes them
only when its ``channels`` list ``console``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Coroutine
from typing import IO, Any

from bot.alerting.console_channel import ConsoleAlertChannel
from bot.app import Runtime
from bot.store.run_events import RunEvent
from handlers.commands.grammar import ParseError, parse
from handlers.replies import Reply
from handlers.runs.run_text import event_record, run_card
from runbooks.engine.models import Actor

# The reply to the command that created a run already shows its card.
CARD_EVENTS = {"step_awaiting_approval", "step_paused", "run_finished"}


class Console:
    def __init__(self, runtime: Runtime, *, user: str, json_mode: bool, out: IO[str] = sys.stdout) -> None:
        self._runtime = runtime
        self._actor = Actor(id=user)
        self._json = json_mode
        self._out = out
        if runtime.alerting is not None:  # alerts print here, like run cards
            runtime.alerting.attach(ConsoleAlertChannel(self._emit, json_mode=json_mode))

    def _emit(self, record: dict[str, Any] | str) -> None:
        self._out.write((json.dumps(record) if isinstance(record, dict) else record) + "\n")
        self._out.flush()

    async def on_run_event(self, event: RunEvent) -> None:
        if not event.notes:
            return
        run = event.run  # as it was at the event: a nonce printed is the one that was asked
        if self._json:
            for note in event.notes:
                self._emit(event_record(run, note))
            return
        for note in event.notes:
            if note.event in CARD_EVENTS:
                self._emit(run_card(run))
            elif note.text:
                step = f" [{note.step_id}]" if note.step_id else ""
                self._emit(f"· {run.id}{step} {note.event.replace('_', ' ')}: {note.text}")

    def reply(self, reply: Reply) -> None:
        if self._json:
            self._emit({
                "event": "reply" if reply.ok else "error", "ok": reply.ok, "text": reply.text,
                **({"run_id": reply.run.id, "state": reply.run.state.value} if reply.run else {}),
            })
        else:
            self._emit(reply.text if reply.ok else f"error: {reply.text}")

    async def handle(self, line: str) -> None:
        line = line.strip()
        if not line or line.startswith("#"):
            return
        reply = await self._runtime.service.handle_text(line, self._actor, console=True)
        self.reply(reply)

    async def run(self, stdin: IO[str] = sys.stdin) -> None:
        loop = asyncio.get_running_loop()
        interactive = stdin.isatty()
        self._runtime.bus.add_listener(self.on_run_event)
        lanes = _Lanes()
        try:
            while True:
                if interactive:
                    self._out.write("kafka> ")
                    self._out.flush()
                line = await loop.run_in_executor(None, stdin.readline)
                if not line:
                    break
                if line.strip() in ("quit", "exit"):
                    break
                lanes.submit(_lane(line), self.handle(line))
        except BaseException:
            lanes.cancel()
            raise
        await lanes.drain()  # the input ended: every command typed still gets its answer


def _lane(line: str) -> str | None:
    """Commands about one cluster (or one run) run in the order typed; the others at once."""
    try:
        command = parse(line.strip())
    except ParseError:
        return None
    cluster, run_id = getattr(command, "cluster", None), getattr(command, "run_id", None)
    return f"cluster:{cluster}" if cluster else f"run:{run_id}" if run_id else None


class _Lanes:
    """A command waiting for a cluster that does not answer holds up only the commands typed after
    it about the same cluster, never `help` or another cluster (each command is its own task)."""

    def __init__(self) -> None:
        self._last: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def submit(self, lane: str | None, work: Coroutine[Any, Any, None]) -> None:
        before = self._last.get(lane) if lane else None
        task = asyncio.create_task(self._after(before, work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if lane:
            self._last[lane] = task
            task.add_done_callback(lambda done: self._last.pop(lane) if self._last.get(lane) is done else None)

    @staticmethod
    async def _after(before: asyncio.Task[None] | None, work: Coroutine[Any, Any, None]) -> None:
        if before is not None:
            await asyncio.wait([before])
        await work

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.wait(list(self._tasks))

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
