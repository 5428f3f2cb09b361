"""Hard-coded C strings in binaries: rewritten in place, never longer than before.

A binary's layout cannot change, so every old prefix found in its bytes is overwritten by a
string of the same length, as Spack does: the new prefix padded in front with ``/``
(``///new/prefix/tail`` names the same path), or, when the string shrinks by more than
``SUFFIX_WINDOW`` bytes and its terminating NUL lies within that window, the new prefix, the
original tail and NUL bytes up to the old length.
"""

from __future__ import annotations

import mmap
from collections.abc import Sequence
from typing import TypeAlias

import attrs

from reconcile.relocate.files import ByteEdit
from reconcile.relocate.prefix_map import PrefixMap
from reconcile.relocate.prefix_scan import PrefixFinder
from reconcile.reprs import fields_repr

# How far past a prefix the terminating NUL is looked for: a short tail is cheap to find and
# certainly part of the same C string.
SUFFIX_WINDOW = 7

Span: TypeAlias = tuple[int, int]  # [start, end) byte offsets


@attrs.frozen(kw_only=True)
class GrowingString:
    """An old prefix whose replacement is longer: it cannot be rewritten in place."""

    __repr__ = fields_repr

    offset: int
    old: str
    new: str


@attrs.frozen(kw_only=True)
class CStringPlan:
    __repr__ = fields_repr

    edits: tuple[ByteEdit, ...]
    growing: tuple[GrowingString, ...]


@attrs.frozen(kw_only=True)
class CStringRelocator:
    """One scan for all old prefixes; no boundary check before a match, because a relocated
    binary may already hold ``///prefix`` and must stay relocatable."""

    __repr__ = fields_repr

    finder: PrefixFinder
    replacements: dict[bytes, bytes]

    @classmethod
    def for_map(cls, prefix_map: PrefixMap) -> CStringRelocator:
        replacements = {old.encode(): new.encode() for old, new in prefix_map.pairs}
        return cls(finder=PrefixFinder.build(replacements), replacements=replacements)

    def plan(self, data: bytes | mmap.mmap, *, skip: Sequence[Span] = ()) -> CStringPlan:
        """The edits for every old prefix in ``data`` outside the ``skip`` spans (strings
        relocated some other way, such as the RPATH), and the strings that would grow."""
        if not self.replacements:
            return CStringPlan(edits=(), growing=())
        edits: list[ByteEdit] = []
        growing: list[GrowingString] = []
        for start, old in self.finder.find(data):
            end = start + len(old)
            if any(start < skip_end and skip_start < end for skip_start, skip_end in skip):
                continue
            new = self.replacements[old]
            shrink = len(old) - len(new)
            if shrink < 0:
                growing.append(GrowingString(offset=start, old=old.decode(), new=new.decode()))
                continue
            # A moved tail never holds another match: it is at most SUFFIX_WINDOW bytes up
            # to a NUL, and only a prefix longer than that can shrink by more.
            moved = self._moved_tail(data, start, end, new, shrink)
            edits.append(moved or ByteEdit(offset=start, data=b"/" * shrink + new))
        return CStringPlan(edits=tuple(edits), growing=tuple(growing))

    @staticmethod
    def _moved_tail(
        data: bytes | mmap.mmap, start: int, end: int, new: bytes, shrink: int
    ) -> ByteEdit | None:
        if shrink <= SUFFIX_WINDOW:
            return None
        window = data[end : end + SUFFIX_WINDOW + 1]
        terminator = window.find(b"\0")
        if terminator == -1:
            return None
        tail = window[:terminator]
        return ByteEdit(offset=start, data=new + tail + b"\0" * (shrink + 1))
