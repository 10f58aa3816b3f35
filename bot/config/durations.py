"""Durations in the clusters file: a number of seconds, or written as in Slack (``90s``, ``30m``, ``1h30m``).

Its own module so the settings and the alert rules both read durations without importing each other.
"""

from __future__ import annotations

from handlers.commands.values import span


def parse_duration(value: str | int | float) -> float:
    """Seconds, from a number (YAML's 90) or a duration as typed in Slack (0s, 90s, 30m, 1h30m, 1d)."""
    if isinstance(value, int | float):
        return float(value)
    text = value.replace(" ", "")
    if text.isascii() and text.isdigit():
        return float(text)
    seconds = span(text)
    if seconds is None:
        raise ValueError(f"{value!r} is not a duration: write it like 90s, 30m, 2h, 1d or 1h30m, or in seconds")
    return seconds.total_seconds()
