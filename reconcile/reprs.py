"""One ``__repr__`` for every attrs class, instead of one generated and compiled per class.

attrs writes each class's ``__repr__`` as source text and compiles it when the class is
defined; for the eighty classes a no-op plan imports, compiling those methods was about a
sixth of its start-up (callgrind: docs/benchmarks.md). ``fields_repr`` returns the same text
attrs' would (``Name(field=value, ...)``, fields with ``repr=False`` left out, a field's own
repr function used, ``...`` for an object already being shown), reading the fields when it
is called. A class takes it with ``__repr__ = fields_repr`` in its body: attrs then writes
none (``auto_detect``). tests/structure/test_reprs.py holds the two to the same output.
"""

from __future__ import annotations

import threading
from typing import Any

import attrs

_showing = threading.local()


def fields_repr(self: Any) -> str:
    """``Name(field=value, ...)``, exactly as attrs' generated ``__repr__``."""
    try:
        already: set[int] = _showing.ids
    except AttributeError:
        already = _showing.ids = set()
    if id(self) in already:
        return "..."
    already.add(id(self))
    try:
        parts = []
        for field in attrs.fields(type(self)):
            if field.repr is False:
                continue
            value = (
                getattr(self, field.name)
                if field.init
                else getattr(self, field.name, attrs.NOTHING)
            )
            shown = repr(value) if field.repr is True else field.repr(value)
            parts.append(f"{field.name}={shown}")
        name = type(self).__qualname__.rsplit(">.", 1)[-1]
        return f"{name}({', '.join(parts)})"
    finally:
        already.discard(id(self))
