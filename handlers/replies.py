"""What a use case answers: text for humans, plus the run it concerns, if any."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from runbooks.models import Run


class Reply(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    ok: bool = True
    ephemeral: bool = False  # only the person who asked sees it (errors, refusals)
    run: Run | None = None

    @classmethod
    def error(cls, text: str) -> Reply:
        return cls(text=text, ok=False, ephemeral=True)
