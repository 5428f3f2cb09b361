"""JSON from others (mirrors, saved plans) with its nesting bounded.

``json.loads`` recurses once per level: a few kilobytes of ``[[[[...`` raise
``RecursionError`` (not ``ValueError``), and a document just below that limit makes every
later recursive step (``repr`` in a message, structuring) fail the same way. Spack's spec
files, indexes and manifests, and reconcile's plans, nest fewer than a dozen levels.
"""

from __future__ import annotations

import gc
import json
import reprlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MAX_DEPTH = 64


# Values from others quoted in messages: a few elements and characters, never all of them.
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 60, 60


def shown(value: object) -> str:
    """``repr(value)``, shortened: a hostile value may be megabytes long."""
    return _SHORT.repr(value)


class TooDeepError(ValueError):
    """The document nests lists and objects deeper than ``MAX_DEPTH``."""


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Parsing allocates millions of containers and makes no reference cycle: the cyclic
    collector's passes over them are pure cost (three quarters of parsing a 200 MB index)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# Strings up to this long are shared between the objects of one document (names, versions,
# platforms, compilers repeat across a Spack index; hashes are longer and do not).
_SHARED_STRING = 24


def _sharing_hook() -> Any:
    """An ``object_pairs_hook`` that returns one object for repeated small objects (``arch``,
    ``compiler``, ``parameters`` of a Spack index) and one string for repeated short values.
    The document is then read-only by contract: a shared object changed in one place would
    change everywhere."""
    seen: dict[Any, Any] = {}

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        shareable = True
        for index, (key, value) in enumerate(pairs):
            kind = type(value)
            if kind is str:
                if len(value) <= _SHARED_STRING:
                    pairs[index] = (key, seen.setdefault(value, value))
            elif kind is list:
                shareable = shareable and not value
            elif kind is dict:
                shareable = False
        made = dict(pairs)
        if not shareable:
            return made
        # the type is part of the key: true == 1 == 1.0 in Python, never in JSON
        frozen = tuple(
            (key, type(value), () if type(value) is list else value) for key, value in pairs
        )
        shared: dict[str, Any] = seen.setdefault(frozen, made)
        return shared

    return hook


def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH, share_repeats: bool = False) -> object:
    """``json.loads`` that refuses deep nesting with ``TooDeepError`` (a ``ValueError``);
    text that is not JSON raises ``json.JSONDecodeError`` as usual.

    ``share_repeats`` makes equal small objects and short strings one object each: a large
    Spack index then takes about half the memory, for a parse about three times as slow."""
    try:
        with no_cycle_collection():
            if share_repeats:
                text = data if isinstance(data, str) else data.decode(json.detect_encoding(data))
                document: object = json.JSONDecoder(object_pairs_hook=_sharing_hook()).decode(text)
            else:
                document = json.loads(data)
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
