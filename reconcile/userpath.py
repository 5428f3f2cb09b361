"""``~`` and ``~user`` in paths a person typed, expanded like a shell does.

``Path.expanduser`` raises ``RuntimeError`` for an unknown user; a shell leaves such a word as
it is, and so does this (the path then simply does not exist, which callers report).
"""

from __future__ import annotations

import os
from pathlib import Path


def expand_user(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.expanduser(os.fspath(path)))  # noqa: PTH111
