"""Where each value of a JSON document starts, so that a problem found in a file the user
keeps (the lock file) is reported at its line and column, as manifest problems are.

The text is parsed by ``json`` first; this walk only runs on text already known to be JSON
of bounded depth (``bounded_json``), so it assumes well-formed input.
"""

from __future__ import annotations

import json
import re

JsonPath = tuple[str | int, ...]

_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def value_offsets(text: str) -> dict[JsonPath, int]:
    """Path of every value (object keys as strings, array positions as ints) -> the offset
    of its first character."""
    offsets: dict[JsonPath, int] = {}
    # an explicit stack of (path, next offset, container kind, items seen): no recursion
    position = _skip(text, 0)
    stack: list[tuple[JsonPath, str, int]] = []
    path: JsonPath = ()
    while True:
        offsets[path] = position
        char = text[position]
        if char in "{[":
            closing = "}" if char == "{" else "]"
            position = _skip(text, position + 1)
            if text[position] == closing:
                position += 1
            else:
                stack.append((path, char, 0))
                if char == "{":
                    key, position = _key(text, position)
                    path = (*path, key)
                else:
                    path = (*path, 0)
                continue
        else:  # a string, number, true, false or null
            _, position = _DECODER.raw_decode(text, position)
        # the value ended: go on with the next item of the innermost open container
        while stack:
            parent, kind, index = stack[-1]
            position = _skip(text, position)
            if text[position] == ",":
                position = _skip(text, position + 1)
                stack[-1] = (parent, kind, index + 1)
                if kind == "{":
                    key, position = _key(text, position)
                    path = (*parent, key)
                else:
                    path = (*parent, index + 1)
                break
            stack.pop()
            position += 1  # the closing bracket
        else:
            return offsets


def _skip(text: str, position: int) -> int:
    match = _SPACE.match(text, position)
    assert match is not None
    return match.end()


def _key(text: str, position: int) -> tuple[str, int]:
    """The object key at ``position`` (a string) and the offset of its value."""
    key, end = _DECODER.raw_decode(text, position)
    end = _skip(text, end)
    return key, _skip(text, end + 1)  # past the ':'


def line_and_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset``."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def format_path(path: JsonPath) -> str:
    """``nodes[2].tarball.sha256``; keys that are not plain words are quoted:
    ``specs["hello-app %gcc"]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text
