"""Folders reconcile creates itself (install root, prefix parents, state): never writable by
group or others, whatever the umask.

Under ``umask 000`` a plain ``mkdir -p`` makes world-writable folders, and a co-tenant could
then plant records or swap prefixes. DESIGN.md: modes are masked by the process umask and
never become group- or world-writable unless a tarball says so; reconcile's own folders
have no tarball to say so.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

FOLDER_MODE = 0o755
_NOT_SHARED_WRITABLE = ~0o022


@cache
def process_umask() -> int:
    """The umask, read once: from /proc (no window where it is changed), else set and reset."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        status = ""
    for line in status.splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    current = os.umask(0o022)
    os.umask(current)
    return current


def folder_mode() -> int:
    return FOLDER_MODE & ~process_umask() & _NOT_SHARED_WRITABLE


def make_folders(path: Path) -> list[Path]:
    """Create ``path`` and its missing parents (``mkdir -p``) with ``folder_mode()``; folders
    that exist are left as they are. Returns the folders made, outermost first."""
    missing: list[Path] = []
    ancestor = path
    while not ancestor.is_dir() and ancestor != ancestor.parent:
        missing.append(ancestor)
        ancestor = ancestor.parent
    made = []
    mode = folder_mode()  # already masked by the umask, so mkdir gives exactly this
    for folder in reversed(missing):
        try:
            folder.mkdir(mode)
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # made by someone else meanwhile: not ours to change
        made.append(folder)
    return made
