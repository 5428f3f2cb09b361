"""Finding the old prefixes in a file's bytes, with a pattern compiled once for many packages.

A pattern naming every old prefix would be compiled anew for every package (each has its
own prefix), and compiling long literal paths costs milliseconds. The old prefixes of one
package almost always share a long start (the install-tree root they were built in), so the
pattern looks for that shared start only, which is the same for every package of a build
cache, and is compiled once; where it matches, the old prefixes are compared, longest first.
The result is exactly what the alternation of all old prefixes would find.
"""

from __future__ import annotations

import functools
import mmap
import re
from collections.abc import Iterable, Iterator

import attrs

from reconcile.reprs import fields_repr

# A shared start shorter than this ("/", "/opt/") would match too often to be worth it; the
# old prefixes themselves are compiled then.
MIN_SHARED_START = 8

_NEVER = rb"(?!)"


@attrs.frozen(kw_only=True)
class PrefixFinder:
    """Every place an old prefix starts in some bytes, where ``guard`` (a zero-width
    pattern) allows it; at one place the longest old prefix wins."""

    __repr__ = fields_repr

    olds: tuple[bytes, ...]  # longest first
    pattern: re.Pattern[bytes]
    compare: bool  # True: a match only shows where the olds are to be compared

    @classmethod
    def build(cls, olds: Iterable[bytes], *, guard: bytes = b"") -> PrefixFinder:
        ordered = tuple(sorted(set(olds), key=len, reverse=True))
        shared = _shared_start(ordered)
        if len(shared) >= MIN_SHARED_START:
            return cls(olds=ordered, pattern=_compiled(guard + re.escape(shared)), compare=True)
        alternatives = b"|".join(re.escape(old) for old in ordered)
        pattern = guard + b"(?:" + alternatives + b")" if ordered else _NEVER
        return cls(olds=ordered, pattern=_compiled(pattern), compare=False)

    def find(self, data: bytes | mmap.mmap) -> Iterator[tuple[int, bytes]]:
        """``(offset, old prefix)`` left to right, never overlapping."""
        if not self.compare:
            for found in self.pattern.finditer(data):
                yield found.start(), found.group()
            return
        position = 0
        while (match := self.pattern.search(data, position)) is not None:
            start = match.start()
            old = next((old for old in self.olds if data[start : start + len(old)] == old), None)
            if old is None:
                position = start + 1  # another old prefix may still start inside the match
                continue
            yield start, old
            position = start + len(old)


def _shared_start(olds: tuple[bytes, ...]) -> bytes:
    """The bytes every old prefix starts with (byte-wise: a shared start need not end at a
    ``/``, the comparison at each match decides)."""
    if not olds:
        return b""
    first, last = min(olds), max(olds)
    length = next(
        (i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), len(first)
    )
    return first[:length]


@functools.lru_cache(maxsize=64)
def _compiled(pattern: bytes) -> re.Pattern[bytes]:
    return re.compile(pattern)
