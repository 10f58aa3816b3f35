"""What a use case answers: text for humans, plus the run it concerns, if any."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from runbooks.engine.models import Run

ECHO_LIMIT = 60  # characters of one word of input shown in a reply (what quote() keeps)
_LONG_WORD = re.compile(rf"\S{{{ECHO_LIMIT + 1},}}")
_OPENERS, _CLOSERS, _PUNCTUATION = "'\"([", "'\")]", ".,;:"




def quote(token: str) -> str:
    """Quote user input for a message: bounded, with control and bidi characters escaped, so an
    echoed token can neither flood a chat message nor disguise itself."""
    shown = token if len(token) <= ECHO_LIMIT else token[: ECHO_LIMIT - 1] + "…"
    escaped = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in shown)
    return f'"{escaped}"'


class Reply(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    ok: bool = True
    ephemeral: bool = False  # only the person who asked sees it (errors, refusals)
    run: Run | None = None

    @classmethod
    def error(cls, text: str) -> Reply:
        return cls(text=text, ok=False, ephemeral=True)


def cap_echoes(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` with every word longer than ``limit`` cut to its start, an ellipsis and its length:
    for messages that carry input we did not write ourselves (a planner's refusal naming a value,
    an adapter's error, a plan's diff), so a 100 KB value cannot make a 100 KB reply."""
    pattern = _LONG_WORD if limit == ECHO_LIMIT else re.compile(rf"\S{{{limit + 1},}}")
    return pattern.sub(lambda match: _cut(match.group(0), limit), text)


def _cut(word: str, limit: int) -> str:
    core = word.lstrip(_OPENERS)
    lead = word[: len(word) - len(core)]
    tail = core[len(core.rstrip(_CLOSERS + _PUNCTUATION)):]
    core = core[: len(core) - len(tail)]
    closers = tail.rstrip(_PUNCTUATION)
    punctuation = tail[len(closers):]
    key, equals, value = core.partition("=")
    if equals and len(key) < limit:  # key=value: the key stays whole, the value is what is cut
        lead, core = lead + key + equals, value
    if len(core) <= limit:
        return word
    return f"{lead}{core[: limit - 1]}…{closers} ({len(core):,} characters){punctuation}"
