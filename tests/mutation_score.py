"""The mutation score of `make mutate`, per module, from mutmut's work dir (``mutants/``).

mutmut keeps one ``<module>.py.meta`` per mutated file, mapping each mutant to the exit code of the
tests run against it. A mutant counts as killed when a test failed (or the run timed out: a mutant
that makes the code loop is caught too); it survives when every test passed. Of runbooks/engine/decide.py
only the approval and abort parts are scored, the functions ``make mutate`` mutates.

    python -m tests.mutation_score [--survivors]
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

MUTANTS = Path("mutants")
# Paths under runbooks/, as [tool.mutmut] only_mutate lists them (the layout of issue 12).
MODULES = ("engine/approvals", "engine/decide", "engine/aborting", "engine/outcome",
           "rules/health", "catalogue/restart", "rules/rolls",
           "catalogue/upgrade", "rules/reassignment", "rules/reassignment_plan", "rules/reassignment_fill",
           "rules/reassignment_batches", "catalogue/replace_broker", "catalogue/scale", "catalogue/replica_steps",
           "rules/node_pools", "rules/unowned_throttles", "rules/rebalance")
DECIDE = "engine/decide"
ENGINE_APPROVAL_PARTS = ("_enter_step", "_on_approve", "_on_tick", "_on_retry", "_on_abort")

KILLED = {1, 3}
TIMEOUT = {24, -24, 36, 152, 255}
SURVIVED = {0}


def _function(mutant: str) -> str:
    """``runbooks.engine.decide.x__on_approve__mutmut_3`` -> ``_on_approve``; methods keep their class."""
    name = mutant.rsplit(".", 1)[-1].split("__mutmut_")[0]
    return name.removeprefix("x_").replace("ǁ", ".").strip(".")


def _scored(module: str, mutant: str) -> bool:
    return module != DECIDE or _function(mutant) in ENGINE_APPROVAL_PARTS


def main(argv: list[str]) -> int:
    if not MUTANTS.is_dir():
        print("no mutants/ here: run `make mutate` first", file=sys.stderr)
        return 1
    totals: Counter[str] = Counter()
    survivors: list[str] = []
    print(f"{'module':<40}{'killed':>8}{'timeout':>9}{'survived':>10}{'other':>7}{'total':>7}{'score':>8}")
    for module in MODULES:
        meta = MUTANTS / "runbooks" / f"{module}.py.meta"
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        counts: Counter[str] = Counter()
        for mutant, code in codes.items():
            if not _scored(module, mutant):
                continue
            kind = ("killed" if code in KILLED else "timeout" if code in TIMEOUT
                    else "survived" if code in SURVIVED else "other")
            counts[kind] += 1
            if kind == "survived":
                survivors.append(mutant)
        total = sum(counts.values())
        if total == counts["other"]:  # a module this run did not mutate (make mutate's targets name fewer)
            print(f"runbooks/{module}.py".ljust(40) + f"{'not run in this make mutate':>49}")
            continue
        totals.update(counts)
        label = f"runbooks/{module}.py" + (" *" if module == DECIDE else "")
        print(f"{label:<40}{counts['killed']:>8}{counts['timeout']:>9}{counts['survived']:>10}{counts['other']:>7}"
              f"{total:>7}{_score(counts):>8}")
    print(f"{'all':<40}{totals['killed']:>8}{totals['timeout']:>9}{totals['survived']:>10}{totals['other']:>7}"
          f"{sum(totals.values()):>7}{_score(totals):>8}")
    print(f"* approval and abort parts only: {', '.join(ENGINE_APPROVAL_PARTS)}; "
          "other: not checked, no tests or suspicious")
    if "--survivors" in argv:
        print("\n".join(["", "survivors:", *survivors]))
    return 0


def _score(counts: Counter[str]) -> str:
    total = sum(counts.values())
    return f"{100 * (counts['killed'] + counts['timeout']) / total:.1f}%" if total else "-"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
