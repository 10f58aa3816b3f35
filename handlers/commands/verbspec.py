"""The vocabulary of the verb table: how an argument or option is declared and read, and the
checks `verb_table` runs so a verb that disagrees with its command model fails the bot's start.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pydantic import BaseModel

from handlers.commands.values import Converter, InvalidValue, broker_ids, duration, non_negative_int

# -- the table's vocabulary -----------------------------------------------------------------------


class OptionKind(enum.Enum):
    """How an option's value is read (and written back by `grammar.command_line`)."""

    FLAG = "flag"  # no value: present means True
    INT = "int"  # a whole number, 0 or more
    INT_LIST = "int-list"  # 1,2,3: whole numbers, no duplicates
    STRING = "string"
    DURATION = "duration"  # 30m, 2h, 1d, 1h30m -> timedelta


def _non_empty(token: str) -> str:
    if not token:
        raise InvalidValue("the value is empty")
    return token


_KIND_DEFAULTS: Mapping[OptionKind, tuple[Converter, str]] = {
    OptionKind.FLAG: (lambda token: True, ""),
    OptionKind.INT: (non_negative_int, "<n>"),
    OptionKind.INT_LIST: (broker_ids, "<n,...>"),
    OptionKind.STRING: (_non_empty, "<text>"),
    OptionKind.DURATION: (duration, "<30m>"),
}


@dataclass(frozen=True, kw_only=True)
class ArgSpec:
    """A positional argument: shown as <name>, read by `convert`, stored in the model's `dest`."""

    name: str
    convert: Converter
    field: str = ""  # the model field; defaults to name with '-' as '_'
    optional: bool = False
    repeat: bool = False  # takes every remaining positional, as a tuple
    hint: str = ""  # added when the argument is missing: where to find a value

    @property
    def dest(self) -> str:
        return self.field or self.name.replace("-", "_")

    @property
    def usage(self) -> str:
        shown = f"<{self.name}>" + ("..." if self.repeat else "")
        return f"[{shown}]" if self.optional else shown


@dataclass(frozen=True, kw_only=True)
class OptionSpec:
    """An option, `--name value` or `--name=value`, stored in the model's `dest`."""

    name: str
    kind: OptionKind
    help: str
    metavar: str = ""  # the value as shown in usage; defaults by kind
    convert: Converter | None = None  # defaults by kind
    field: str = ""  # the model field; defaults to the name without -- and with '-' as '_'

    @property
    def dest(self) -> str:
        return self.field or self.name.removeprefix("--").replace("-", "_")

    @property
    def usage(self) -> str:
        shown = self.metavar or _KIND_DEFAULTS[self.kind][1]
        return f"{self.name} {shown}" if shown else self.name

    def read(self, token: str) -> object:
        return (self.convert or _KIND_DEFAULTS[self.kind][0])(token)


@dataclass(frozen=True, kw_only=True)
class VerbSpec:
    """One verb: what it takes, the model it builds, and how it is explained."""

    name: str
    summary: str  # one line, for the overview
    description: str = ""  # follows the summary in the verb's own help
    command: type[BaseModel]  # built with the parsed values as its fields
    args: tuple[ArgSpec, ...] = ()
    options: tuple[OptionSpec, ...] = ()
    examples: tuple[str, ...] = ()  # whole command lines; the tests parse every one
    console_only: bool = False  # in Slack the same act is a button; an adapter may refuse the verb
    mutating: bool = False  # may change a cluster or a run (restart does, unless --dry-run)

    @property
    def usage(self) -> str:
        return " ".join(["/kafka", self.name, *(a.usage for a in self.args), *(f"[{o.usage}]" for o in self.options)])

    def option(self, name: str) -> OptionSpec | None:
        return next((option for option in self.options if option.name == name), None)


RESERVED_OPTIONS = ("--help", "-h")  # every verb takes them: they ask for the verb's help


def verb_table(*specs: VerbSpec) -> Mapping[str, VerbSpec]:
    """A read-only table of verbs in help order, each checked against its command model."""
    table: dict[str, VerbSpec] = {}
    for spec in specs:
        problem = _spec_problem(spec, table)
        if problem:
            raise ValueError(f"verb {spec.name!r}: {problem}")
        table[spec.name] = spec
    return MappingProxyType(table)


def _spec_problem(spec: VerbSpec, table: Mapping[str, VerbSpec]) -> str | None:
    if spec.name in table or not re.fullmatch(r"[a-z][a-z-]*", spec.name):
        return "duplicate or malformed name"
    if any(a.optional and not b.optional for a, b in zip(spec.args, spec.args[1:], strict=False)):
        return "a required argument follows an optional one"
    if any(arg.repeat for arg in spec.args[:-1]):
        return "only the last argument may repeat"
    if any(not re.fullmatch(r"--[a-z][a-z0-9-]*", o.name) or o.name in RESERVED_OPTIONS for o in spec.options):
        return "option names are --lowercase-words, and --help is built in"
    dests = [arg.dest for arg in spec.args] + [option.dest for option in spec.options]
    fields = spec.command.model_fields
    required = {name for name, info in fields.items() if info.is_required()}
    if len(set(dests)) != len(dests) or not set(dests) <= set(fields) or not required <= set(dests):
        return f"arguments and options {dests} do not match the fields of {spec.command.__name__}"
    if "kind" in fields and fields["kind"].default != spec.name:
        return f"{spec.command.__name__}.kind is not {spec.name!r}"
    return None
