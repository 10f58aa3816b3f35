"""Reading and writing `/kafka` command lines, driven by the verb table in `handlers.commands.verbs`.

`parse` turns text into a command model or raises `ParseError`, whose `render()` is what the user
sees: what was wrong, in words, and the usage line of the verb they were typing. Parsing never
guesses: a near-miss verb or option is suggested, never run.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import cast

from pydantic import BaseModel, ValidationError

from handlers.commands.verbs import (
    RESERVED_OPTIONS,
    VERBS,
    ArgSpec,
    Command,
    Converter,
    HelpCommand,
    InvalidValue,
    OptionKind,
    OptionSpec,
    VerbSpec,
    closest,
    format_duration,
    quote,
    verb_table,
)

__all__ = [
    "VERBS",
    "ArgSpec",
    "Command",
    "OptionKind",
    "OptionSpec",
    "ParseError",
    "VerbSpec",
    "command_line",
    "help_text",
    "parse",
    "parse_with",
    "tokenize",
    "usage",
    "verb_table",
]

_PREFIXES = ("/kafka", "kafka")  # the console passes the whole typed line


class ParseError(Exception):
    """Input that is not a valid command. `render()` is the text to show the user."""

    def __init__(
        self,
        message: str,
        *,
        usage: str | None = None,
        verb: str | None = None,
        suggestion: str | None = None,
        choices: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage  # the usage line of the verb the input was aimed at, when known
        self.verb = verb
        self.suggestion = suggestion  # the closest known verb, for an unknown one
        self.choices = tuple(choices)  # every verb, for an unknown one

    def render(self) -> str:
        lines = [self.message]
        if self.usage:
            lines.append(f"Usage: {self.usage}")
        if self.choices:
            lines.append("Commands: " + ", ".join(self.choices))
            lines.append("/kafka help <command> shows how to use one.")
        return "\n".join(lines)


def _error(spec: VerbSpec, message: str) -> ParseError:
    return ParseError(message, usage=spec.usage, verb=spec.name)


# -- words ----------------------------------------------------------------------------------------

# Chat clients and word processors turn typed quotes into curly ones; the user meant plain quotes.
_PLAIN_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})


def _split(text: str) -> tuple[list[str], str | None]:
    """shlex.split(posix=True) rules, except that any Unicode space separates words (a pasted
    no-break space would otherwise glue two into one). Returns the words read and, rather than
    raising, what went wrong, so the caller can still name the verb whose usage to show."""
    text = text.translate(_PLAIN_QUOTES)
    words: list[str] = []
    word: list[str] = []
    in_word, quote_char, quote_at, i = False, "", 0, 0
    while i < len(text):
        ch = text[i]
        if quote_char == "'":
            if ch == "'":
                quote_char = ""
            else:
                word.append(ch)
        elif quote_char == '"':
            if ch == '"':
                quote_char = ""
            elif ch == "\\" and text[i + 1 : i + 2] in ('"', "\\"):
                word.append(text[i + 1])
                i += 1
            else:
                word.append(ch)
        elif ch.isspace():
            if in_word:
                words.append("".join(word))
                word, in_word = [], False
        elif ch in "'\"":
            quote_char, quote_at, in_word = ch, i, True
        elif ch == "\\":
            if i + 1 == len(text):
                return words, "the command ends with a lone backslash (\\): remove it"
            word.append(text[i + 1])
            i, in_word = i + 1, True
        else:
            word.append(ch)
            in_word = True
        i += 1
    if quote_char:
        kind = "double" if quote_char == '"' else "single"
        rest = text[quote_at + 1 :]
        where = f"before {quote(rest)}" if rest.strip() else "at the end"
        return words, f"the {kind} quote ({quote_char}) {where} is never closed: close it or remove it"
    if in_word:
        words.append("".join(word))
    return words, None


def tokenize(text: str) -> list[str]:
    """Split a command line into words, shell style. Raises ParseError on an unclosed quote."""
    words, problem = _split(text)
    if problem:
        raise ParseError(problem)
    return words


def _is_option(token: str) -> bool:
    # "-1" is a (bad) number, not an option, so that `--brokers -1` says "must be 0 or more".
    return token.startswith("--") or (len(token) > 1 and token[0] == "-" and token[1].isalpha())


# -- parsing --------------------------------------------------------------------------------------


def parse(text: str) -> Command:
    """The command in `text`, what follows /kafka (a leading /kafka or kafka is ignored). Empty
    input asks for help. Any bad input raises ParseError, and nothing else."""
    return cast(Command, parse_with(text, VERBS))


def parse_with(text: str, verbs: Mapping[str, VerbSpec]) -> BaseModel:
    """`parse` against another table: tests, and verbs under construction."""
    words, problem = _split(text)
    if words and words[0].lower() in _PREFIXES:
        del words[0]
    spec = verbs.get(words[0].lower()) if words else None
    if problem:
        raise _error(spec, problem) if spec else ParseError(problem)
    if not words:
        return HelpCommand()
    if words[0] in RESERVED_OPTIONS and "help" in verbs:
        spec = verbs["help"]  # `/kafka --help [verb]` is `/kafka help [verb]`
    if spec is None:
        raise _unknown_verb(words[0], verbs)
    if any(word in RESERVED_OPTIONS for word in words[1:]):
        return HelpCommand(verb=spec.name)  # asking for help beats any mistake next to it
    return _bind(spec, words[1:])


def _unknown_verb(word: str, verbs: Mapping[str, VerbSpec]) -> ParseError:
    names = list(verbs)
    if _is_option(word):
        return ParseError(f"{quote(word)} is an option: start with a command, options go after it", choices=names)
    suggestion = closest(word.lower(), names)
    message = f"unknown command {quote(word)}" + (f"; did you mean {quote(suggestion)}?" if suggestion else "")
    return ParseError(message, suggestion=suggestion, choices=names)


def _bind(spec: VerbSpec, words: Sequence[str]) -> BaseModel:
    """Read options wherever they are and positionals in order; report the leftmost mistake."""
    values: dict[str, object] = {}
    count, i = 0, 0
    while i < len(words):
        word = words[i]
        i += 1
        if not _is_option(word):
            _bind_positional(spec, count, word, values)
            count += 1
            continue
        name, has_value, inline = word.partition("=")
        option = spec.option(name)
        if option is None:
            raise _error(spec, f"unknown option {quote(name)}{_options_hint(spec, name)}")
        if option.dest in values:
            raise _error(spec, f"{option.name} is given twice: give it once")
        if option.kind is OptionKind.FLAG:
            if has_value:
                raise _error(spec, f"{option.name} takes no value, but got {quote(word)}")
            values[option.dest] = True
            continue
        raw = inline if has_value else ""
        if not has_value and i < len(words) and not _is_option(words[i]):
            raw, i = words[i], i + 1
        if not raw:
            raise _error(spec, f"{option.name} needs a value, e.g. {option.usage}")
        values[option.dest] = _read(spec, option.read, raw, prefix=f"{option.name}: ")
    for arg in spec.args[count:]:
        if not arg.optional:
            raise _error(spec, f"{spec.name} needs <{arg.name}>" + (f" ({arg.hint})" if arg.hint else ""))
    values = {name: tuple(value) if isinstance(value, list) else value for name, value in values.items()}
    try:
        return spec.command.model_validate(values)
    except ValidationError as exc:
        # Reached only if a model rule is stricter than the grammar's; it is still the user's input.
        raise _error(spec, str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None


def _bind_positional(spec: VerbSpec, count: int, word: str, values: dict[str, object]) -> None:
    if count < len(spec.args):
        arg = spec.args[count]
    elif spec.args and spec.args[-1].repeat:
        arg = spec.args[-1]
    elif not spec.args:
        raise _error(spec, f"{spec.name} takes no arguments, but got {quote(word)}")
    else:
        raise _error(spec, f"unexpected extra argument {quote(word)}")
    value = _read(spec, arg.convert, word, prefix="")
    if arg.repeat:  # a list while binding (appending to a tuple would copy it for every word)
        cast(list[object], values.setdefault(arg.dest, [])).append(value)
    else:
        values[arg.dest] = value


def _options_hint(spec: VerbSpec, name: str) -> str:
    known = [option.name for option in spec.options]
    nearest = closest(name, known)
    if nearest:
        return f"; did you mean {nearest}?"
    return f"; {spec.name} takes {', '.join(known)}" if known else f"; {spec.name} takes no options"


def _read(spec: VerbSpec, convert: Converter, word: str, *, prefix: str) -> object:
    try:
        return convert(word)
    except InvalidValue as exc:
        raise _error(spec, f"{prefix}{exc}") from None


# -- help and writing -----------------------------------------------------------------------------


def _spec_for(verb: str) -> VerbSpec:
    spec = VERBS.get(verb.lower())
    if spec is None:
        raise _unknown_verb(verb, VERBS)
    return spec


def usage(verb: str) -> str:
    """The usage line of `verb`, e.g. "/kafka status <cluster>". ParseError if there is no such verb."""
    return _spec_for(verb).usage


def help_text(verb: str | None = None, *, include_console_only: bool = True) -> str:
    """The overview of every verb, or one verb's usage, description, options and examples.
    Slack passes include_console_only=False to leave out what it would refuse anyway."""
    if verb is not None:
        spec = _spec_for(verb)
        lines = [f"Usage: {spec.usage}", f"{spec.summary} {spec.description}".strip()]
        if spec.options:
            width = max(len(option.usage) for option in spec.options)
            lines += ["", "Options:", *(f"  {o.usage.ljust(width)}  {o.help}" for o in spec.options)]
        if spec.examples:
            lines += ["", "Examples:", *(f"  {example}" for example in spec.examples)]
        return "\n".join(lines)
    lines = ["/kafka operates the Kafka clusters this bot manages. A change runs as a runbook whose "
             "every step waits for an approver.", ""]
    for spec in VERBS.values():
        if include_console_only or not spec.console_only:
            where = "(console only) " if spec.console_only else ""
            lines.append(f"  {spec.usage.removeprefix('/kafka ')} — {where}{spec.summary}")
    lines += ["", "/kafka help <command> shows its options and examples."]
    return "\n".join(lines)


def command_line(command: BaseModel, verbs: Mapping[str, VerbSpec] | None = None) -> str:
    """The canonical line for a command, for an audit entry or a run card:
    `parse(command_line(c)) == c` for every command `c`."""
    spec = (verbs or VERBS)[str(getattr(command, "kind"))]  # noqa: B009 - not every BaseModel has it
    parts = ["/kafka", spec.name]
    for arg in spec.args:
        value = getattr(command, arg.dest)
        if value is not None:
            parts += [shlex.quote(str(item)) for item in (value if arg.repeat else (value,))]
    for option in spec.options:
        value = getattr(command, option.dest)
        if value is None or value is False:
            continue
        parts += [option.name] if option.kind is OptionKind.FLAG else [option.name, _write(option, value)]
    return " ".join(parts)


def _write(option: OptionSpec, value: object) -> str:
    if option.kind is OptionKind.INT_LIST and isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    if option.kind is OptionKind.DURATION and isinstance(value, timedelta):
        return format_duration(value)
    return shlex.quote(str(value))
