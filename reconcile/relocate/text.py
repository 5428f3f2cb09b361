"""Text files: every old prefix that starts a path is replaced; files may change length."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from reconcile.relocate.files import replace_contents
from reconcile.relocate.prefix_map import PrefixMap

# A prefix preceded by a path or word character is part of something else (``/x/old``,
# ``word/old``, ``../old``) and stays. One exception: a short compiler option glued to the
# path (``-L/old/lib``, ``-I/old/include``), which build files are full of.
_PATH_OR_WORD_CHARACTER = rb"[\w./-]"
_STARTS_A_PATH = (
    rb"(?:(?<!" + _PATH_OR_WORD_CHARACTER + rb")"
    rb"|(?<=(?<!" + _PATH_OR_WORD_CHARACTER + rb")-[A-Za-z]))"
)


@attrs.frozen(kw_only=True)
class TextRelocator:
    """One compiled pattern for all old prefixes, so each file is scanned once and a new
    prefix that contains an old one is never rewritten a second time."""

    pattern: re.Pattern[bytes]
    replacements: dict[bytes, bytes]

    @classmethod
    def for_map(cls, prefix_map: PrefixMap) -> TextRelocator:
        replacements = {old.encode(): new.encode() for old, new in prefix_map.pairs}
        # Longest first: alternation takes the first branch that matches at a position.
        olds = sorted(replacements, key=len, reverse=True)
        alternatives = b"|".join(re.escape(old) for old in olds)
        pattern = re.compile(_STARTS_A_PATH + rb"(?:" + alternatives + rb")")
        return cls(pattern=pattern, replacements=replacements)

    def relocate_bytes(self, data: bytes) -> bytes:
        if not self.replacements:
            return data
        return self.pattern.sub(lambda match: self.replacements[match.group()], data)

    def relocate_file(self, path: Path) -> bool:
        """Rewrite ``path`` if it names an old prefix; ``True`` when it changed."""
        data = path.read_bytes()
        relocated = self.relocate_bytes(data)
        if relocated == data:
            return False
        replace_contents(path, relocated)
        return True
