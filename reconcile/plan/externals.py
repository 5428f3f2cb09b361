"""Which externals a signed spec may name: only folders listed in ``[install] externals``
(default ``/usr``), never ``/``.

An external's path is where the spec's dependents may point absolute symlinks (the archive
rules allow links into the closure's prefixes and externals). A spec naming ``/`` as an
external would otherwise make a link to ``/etc/shadow`` acceptable; so the manifest, not the
mirror, decides which folders count.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence


def allowed_external(path: str, allowed: Sequence[str]) -> str | None:
    """The normalised ``path`` when it is one of ``allowed`` or inside one; None otherwise."""
    if not path.startswith("/"):
        return None
    normal = posixpath.normpath(path)
    if normal.strip("/") == "":  # "/" (and "//", which normpath keeps) is never allowed
        return None
    for folder in allowed:
        if normal == folder or normal.startswith(folder.rstrip("/") + "/"):
            return normal
    return None


def external_refusal(path: str, allowed: Sequence[str], *, spec: str) -> str:
    """Why ``spec``, an external at ``path``, is refused (``allowed_external`` said None)."""
    listed = ", ".join(allowed) if allowed else "none"
    if path.startswith("/") and posixpath.normpath(path).strip("/") == "":
        return (
            f"{spec} is an external at '/': its dependents could point symlinks at any file "
            f"(such as /etc/shadow), so '/' is never allowed ([install] externals: {listed})"
        )
    return (
        f"{spec} is an external at {path!r}, outside the folders [install] externals allows "
        f"({listed})"
    )
