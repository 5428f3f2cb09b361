"""The folders between a mirror root and its entries must be real folders: a symlinked
``greetlib/`` would make reconcile read or write outside the mirror."""

from __future__ import annotations

import stat
from pathlib import Path, PurePosixPath

from reconcile import safe_fs
from reconcile.errors import ApplyError


def folder_problem(root: Path, relative: str) -> str | None:
    """Why ``root/relative`` is not a chain of real folders (None when it is, or when part of
    it is missing and can be created)."""
    current = root
    for part in PurePosixPath(relative).parts:
        current = current / part
        try:
            mode = current.lstat().st_mode
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"{current} cannot be read: {exc.strerror}"
        if stat.S_ISLNK(mode):
            return f"{current} is a symlink (expected a folder)"
        if not stat.S_ISDIR(mode):
            return f"{current} is not a folder"
    return None


def make_folders(root: Path, relative: str) -> Path:
    """``root/relative``, created as needed, refusing to go through anything but folders."""
    problem = folder_problem(root, relative)
    if problem is not None:
        raise ApplyError(
            f"cannot write into the source mirror at {root}: {problem}",
            hint="move that entry out of the way; reconcile writes only into real folders",
            reference="source-mirror-blocked",
        )
    folder = root / relative
    try:
        safe_fs.make_folders(root, folder)  # and no link followed if one appears meanwhile
    except OSError as exc:
        raise ApplyError(
            f"cannot create {folder}: {exc.strerror}",
            hint="check that the mirror is writable by the user running apply",
            reference="source-mirror-blocked",
        ) from None
    return folder
