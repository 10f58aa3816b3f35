"""What declares a runbook: the ``Runbook`` every runbook module exports, and the catalogue of them.

A declaration is everything about a runbook that is not I/O: the verb that starts it, its help
texts, its parameters and the world its planner reads (both pydantic models), the pure
``plan(params, world)``, and the texts around a plan (the dry-run title, the refusal's prefix, the
parameters as the run stores them). ``handlers.commands`` reads the world through the ports,
calls ``plan`` and creates the run the same way for every runbook (``CommandService.start``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from runbooks.engine.models import StepSpec

P = TypeVar("P", bound=BaseModel)
W = TypeVar("W", bound=BaseModel)


@dataclass(frozen=True)
class Runbook(Generic[P, W]):
    name: str  # Run.runbook
    verb: str  # the /kafka verb that starts it
    summary: str  # one line of `/kafka help`
    description: str  # `/kafka help <verb>`
    params: type[P]
    world: type[W]  # what the planner reads about the cluster, read through the ports
    plan: Callable[[P, W], list[StepSpec]]  # raises PlanRefused
    title: Callable[[P], str]  # the dry-run plan's title
    refusal: Callable[[str, P], str]  # "Cannot ... <cluster>", before ": <why>."
    stored: Callable[[P], dict[str, Any]]  # Run.params
