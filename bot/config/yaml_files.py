"""Reading the YAML files the settings name (the clusters file, the kubeconfig).

Every way a file can fail (missing, a directory, unreadable, not UTF-8, not YAML, a key written
twice) becomes a ``YamlFileError`` that names the file and says what it should be (the callers
raise it on as their ``ConfigError``). YAML errors give
the line and column, never the text around them: a kubeconfig holds tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YamlFileError(ValueError):
    """The file cannot be used; the message names it, says what is wrong and what it should be."""


class DuplicateKeys(yaml.YAMLError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))


class UniqueKeyLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses a key written twice in one mapping. YAML requires keys to be
    unique, but PyYAML keeps the later value without a word: a second ``prod:`` would replace the
    first cluster, approvers and all."""

    def construct_document(self, node: Node) -> Any:
        problems = list(_duplicate_keys(node, (), set()))
        if problems:
            raise DuplicateKeys(problems)
        return super().construct_document(node)


def _duplicate_keys(node: Node, path: tuple[str, ...], seen: set[int]) -> Iterator[str]:
    if id(node) in seen:  # an alias: its mapping was looked at where it was anchored
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        first_line: dict[tuple[str, str], int] = {}
        for key, value in node.value:
            name = str(key.value) if isinstance(key, ScalarNode) else "?"
            if isinstance(key, ScalarNode) and key.tag != _MERGE_TAG:  # `<<:` merges are meant to override
                line = key.start_mark.line + 1
                if (key.tag, key.value) in first_line:
                    first = first_line[key.tag, key.value]
                    lines = f"lines {first} and {line}" if first != line else f"on line {line}"
                    yield f"{'.'.join((*path, name))} is written twice ({lines})"
                else:
                    first_line[key.tag, key.value] = line
            yield from _duplicate_keys(value, (*path, name), seen)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, (*path, str(index)), seen)


def yaml_error_place(exc: yaml.YAMLError) -> str:
    """``line 3, column 7: expected <block end>, but found '-'``: where and what, not the text."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    place = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return ": ".join(part for part in (place, problem) if part) or type(exc).__name__


def read_yaml(path: Path, *, name: str, valid: str, unique_keys: bool = True) -> Any:
    """The document in ``path``; ``name`` says which file it is in messages (e.g. ``KUBECONFIG x``),
    ``valid`` what it should be."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise YamlFileError(f"{name} does not exist: give {valid}") from None
    except IsADirectoryError:
        raise YamlFileError(f"{name} is a directory: give {valid}") from None
    except UnicodeDecodeError:
        raise YamlFileError(f"{name} is not UTF-8 text: give {valid}") from None
    except OSError as exc:
        raise YamlFileError(f"{name} cannot be read ({exc.strerror or type(exc).__name__}): give {valid}") from None
    try:
        return yaml.load(text, Loader=UniqueKeyLoader if unique_keys else yaml.SafeLoader)
    except DuplicateKeys as exc:
        raise YamlFileError(f"{name} is invalid: {exc}: YAML keeps only the later one, so write each key "
                            "once") from None
    except yaml.YAMLError as exc:
        raise YamlFileError(f"{name} is not valid YAML ({yaml_error_place(exc)}): give {valid}") from None


def kind_of(value: Any) -> str:
    """What a YAML document's top level is, in words."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return "a number or a single value" if not isinstance(value, dict) else "a mapping"
