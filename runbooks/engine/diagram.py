"""Draw the run state diagram from the transition table (Mermaid), so the docs cannot drift.

``python -m runbooks.engine.diagram`` prints it; docs/engine.md embeds the output and a test checks
that the two agree.
"""

from __future__ import annotations

from runbooks.engine.transitions import TRANSITIONS


def mermaid() -> str:
    lines = ["stateDiagram-v2", "    [*] --> planned"]
    for source, edges in TRANSITIONS.items():
        grouped: dict[str, list[str]] = {}
        for trigger, target in edges.items():
            grouped.setdefault(target.value, []).append(trigger.value)
        for target_name, triggers in grouped.items():
            lines.append(f"    {source.value} --> {target_name}: {', '.join(triggers)}")
    for terminal in ("succeeded", "failed", "aborted"):
        lines.append(f"    {terminal} --> [*]")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(mermaid(), end="")
