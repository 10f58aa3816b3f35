"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902), with the API server's error codes.

A malformed patch document is a 400; a well-formed one that cannot be applied (a path that does not
exist, a ``test`` that fails) is a 422, as ``apiserver/pkg/endpoints/handlers/patch.go`` answers.
Strategic merge patch is served by the merge patch here (see ``server.py``): lists are replaced, not
merged by key, and ``$patch`` directives are not understood.

The ``jsonpatch`` package is not a declared dependency of the project, so RFC 6902 is done here.
"""

from __future__ import annotations

import copy
from typing import Any

from bot.sandbox.kube.api_errors import bad_request, unprocessable_patch

_JSON_PATCH_OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")


def apply_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = apply_merge_patch(merged.get(key), value)
    return merged


def apply_json_patch(document: Any, operations: Any) -> Any:
    """Apply RFC 6902 operations to a copy of ``document``; all succeed or none do."""
    if not isinstance(operations, list):
        raise bad_request("json patch must be a list of operations")
    result = copy.deepcopy(document)
    for index, operation in enumerate(operations):
        result = _apply_operation(result, _validated(operation, index))
    return result


def _validated(operation: Any, index: int) -> dict[str, Any]:
    if not isinstance(operation, dict):
        raise bad_request(f"json patch operation {index} is not an object")
    name = operation.get("op")
    if name not in _JSON_PATCH_OPERATIONS:
        raise bad_request(f"Unexpected kind: {name}")
    if not isinstance(operation.get("path"), str):
        raise bad_request(f"json patch operation {index} ({name}) has no string 'path'")
    if name in ("add", "replace", "test") and "value" not in operation:
        raise bad_request(f"json patch operation {index} ({name}) has no 'value'")
    if name in ("move", "copy") and not isinstance(operation.get("from"), str):
        raise bad_request(f"json patch operation {index} ({name}) has no string 'from'")
    return operation


def _apply_operation(document: Any, operation: dict[str, Any]) -> Any:
    name = operation["op"]
    path = _parse_pointer(operation["path"])
    if name == "add":
        return _add(document, path, copy.deepcopy(operation["value"]))
    if name == "remove":
        return _remove(document, path, operation["path"])
    if name == "replace":
        _resolve(document, path, operation["path"], "replace")
        document = _remove(document, path, operation["path"])
        return _add(document, path, copy.deepcopy(operation["value"]))
    if name == "test":
        actual = _resolve(document, path, operation["path"], "test")
        if not _json_equal(actual, operation["value"]):
            raise unprocessable_patch(f"testing value {operation['path']} failed: test failed")
        return document
    source = _parse_pointer(operation["from"])
    value = _resolve(document, source, operation["from"], name)
    if name == "move":
        if path[: len(source)] == source and path != source:
            raise unprocessable_patch(f"move operation: {operation['from']} is a prefix of {operation['path']}")
        document = _remove(document, source, operation["from"])
    return _add(document, path, copy.deepcopy(value))


def _parse_pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise bad_request(f"json patch path {pointer!r} does not start with '/'")
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def _resolve(document: Any, path: list[str], pointer: str, operation: str) -> Any:
    current = document
    for token in path:
        index = _list_index(token, len(current) - 1) if isinstance(current, list) else None
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list) and index is not None:
            current = current[index]
        else:
            raise unprocessable_patch(f"{operation} operation does not apply: doc is missing path: {pointer}")
    return current


def _parent(document: Any, path: list[str], pointer: str, operation: str) -> Any:
    return _resolve(document, path[:-1], pointer, operation)


def _add(document: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    pointer = "/" + "/".join(path)
    parent = _parent(document, path, pointer, "add")
    token = path[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        index = len(parent) if token == "-" else _list_index(token, len(parent))
        if index is None:
            raise unprocessable_patch(f"add operation does not apply: index out of range: {pointer}")
        parent.insert(index, value)
    else:
        raise unprocessable_patch(f"add operation does not apply: doc is missing path: {pointer}")
    return document


def _remove(document: Any, path: list[str], pointer: str) -> Any:
    if not path:
        raise unprocessable_patch("remove operation does not apply: cannot remove the whole document")
    parent = _parent(document, path, pointer, "remove")
    token = path[-1]
    if isinstance(parent, dict) and token in parent:
        del parent[token]
        return document
    if isinstance(parent, list):
        index = _list_index(token, len(parent) - 1)
        if index is not None:
            del parent[index]
            return document
    raise unprocessable_patch(f"remove operation does not apply: doc is missing path: {pointer}")


def _list_index(token: str, highest: int) -> int | None:
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        return None
    index = int(token)
    return index if 0 <= index <= highest else None


def _json_equal(left: Any, right: Any) -> bool:
    # Python says True == 1 and 1 == 1.0; JSON says true is no number (1 and 1.0 are the same one).
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[key], right[key]) for key in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_json_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    return type(left) is type(right) and left == right
