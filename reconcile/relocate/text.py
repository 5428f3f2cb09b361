"""Text files: every old prefix that starts a path is replaced; files may change length."""

from __future__ import annotations

from pathlib import Path

import attrs

from reconcile.relocate.files import rewrite_in_place
from reconcile.relocate.prefix_map import PrefixMap
from reconcile.relocate.prefix_scan import PrefixFinder
from reconcile.reprs import fields_repr

# A prefix preceded by a path or word character is part of something else (``/x/old``,
# ``word/old``, ``../old``) and stays. One exception: a short compiler option glued to the
# path (``-L/old/lib``, ``-I/old/include``), which build files are full of.
_PATH_OR_WORD_CHARACTER = rb"[\w./-]"
STARTS_A_PATH = (
    rb"(?:(?<!" + _PATH_OR_WORD_CHARACTER + rb")"
    rb"|(?<=(?<!" + _PATH_OR_WORD_CHARACTER + rb")-[A-Za-z]))"
)


@attrs.frozen(kw_only=True)
class TextRelocator:
    """One scan of each file for all old prefixes, so a new prefix that contains an old one
    is never rewritten a second time."""

    __repr__ = fields_repr

    finder: PrefixFinder
    replacements: dict[bytes, bytes]

    @classmethod
    def for_map(cls, prefix_map: PrefixMap) -> TextRelocator:
        replacements = {old.encode(): new.encode() for old, new in prefix_map.pairs}
        return cls(
            finder=PrefixFinder.build(replacements, guard=STARTS_A_PATH),
            replacements=replacements,
        )

    def relocate_bytes(self, data: bytes) -> bytes:
        pieces: list[bytes] = []
        done = 0
        for start, old in self.finder.find(data):
            pieces += (data[done:start], self.replacements[old])
            done = start + len(old)
        if not pieces:
            return data
        pieces.append(data[done:])
        return b"".join(pieces)

    def relocate_file(self, path: Path) -> bool:
        """Rewrite ``path`` if it names an old prefix; ``True`` when it changed."""
        data = path.read_bytes()
        relocated = self.relocate_bytes(data)
        if relocated == data:
            return False
        rewrite_in_place(path, relocated)
        return True
