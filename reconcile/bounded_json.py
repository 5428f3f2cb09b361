"""JSON from others (mirrors, saved plans) with its nesting bounded.

``json.loads`` recurses once per level: a few kilobytes of ``[[[[...`` raise
``RecursionError`` (not ``ValueError``), and a document just below that limit makes every
later recursive step (``repr`` in a message, structuring) fail the same way. Spack's spec
files, indexes and manifests, and reconcile's plans, nest fewer than a dozen levels.
"""

from __future__ import annotations

import json
import reprlib

MAX_DEPTH = 64


# Values from others quoted in messages: a few elements and characters, never all of them.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60


def shown(value: object) -> str:
    """``repr(value)``, shortened: a hostile value may be megabytes long."""
    return _SHORT.repr(value)


class TooDeepError(ValueError):
    """The document nests lists and objects deeper than ``MAX_DEPTH``."""


def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH) -> object:
    """``json.loads`` that refuses deep nesting with ``TooDeepError`` (a ``ValueError``);
    text that is not JSON raises ``json.JSONDecodeError`` as usual."""
    try:
        document: object = json.loads(data)
    except RecursionError:
        raise TooDeepError(f"it nests lists and objects more than {max_depth} deep") from None
    check_depth(document, max_depth=max_depth)
    return document


def check_depth(document: object, *, max_depth: int = MAX_DEPTH) -> None:
    """Walk the containers of ``document`` with an explicit stack."""
    pending: list[tuple[object, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children: list[object] = list(value.values())
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > max_depth:
            raise TooDeepError(f"it nests lists and objects more than {max_depth} deep")
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
