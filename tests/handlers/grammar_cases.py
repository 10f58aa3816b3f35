"""What the grammar tests share: a run id and the ParseError a text raises."""

from __future__ import annotations

import pytest

from handlers.commands.grammar import ParseError, parse

RUN = "r-7f3a09bc"


def parse_error(text: str) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse(text)
    return caught.value
