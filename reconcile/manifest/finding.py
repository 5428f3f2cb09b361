"""A problem found in a manifest, before it is given a line and column."""

from __future__ import annotations

from typing import Literal

import attrs

from reconcile.reprs import fields_repr

KeyPath = tuple[str | int, ...]


@attrs.frozen(kw_only=True)
class Finding:
    """``path`` is what the message is about; ``anchor`` says where to point in the file.

    ``"value"`` points at the value at ``at`` (for a table, its header); ``"key"`` at the
    key itself, for keys that should not be there.
    """

    __repr__ = fields_repr

    path: KeyPath
    message: str
    at: KeyPath
    anchor: Literal["value", "key"] = "value"


def at_value(path: KeyPath, message: str) -> Finding:
    return Finding(path=path, message=message, at=path)


def format_key_path(path: KeyPath) -> str:
    """``("mirror", 1, "url")`` as ``mirror[1].url``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text
