"""Path globs (``[drift] ignore``, a view's ``exclude``): ``*`` and ``?`` stay within one
path component, ``**`` spans any number of them (``**/__pycache__/**`` matches
``__pycache__`` folders at any depth)."""

from __future__ import annotations

import re
from collections.abc import Iterable


def _translate(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("(?:/.*)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


class IgnoreRules:
    """Relative POSIX paths matching any of the globs are left out of the audit."""

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = tuple(patterns)
        self._regex = (
            re.compile("|".join(f"(?:{_translate(p)})" for p in self.patterns))
            if self.patterns
            else None
        )

    def ignores(self, relative: str) -> bool:
        return self._regex is not None and self._regex.fullmatch(relative) is not None
