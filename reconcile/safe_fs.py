"""File operations below a trusted root that never follow a symlink.

A root given by the user may itself be a symlink (that is the user's choice), but no path
component below it is ever followed: every folder is opened with ``O_NOFOLLOW`` relative to
its parent's descriptor, and files are created, replaced and removed relative to the
folder's descriptor. Co-tenants who can write inside a cache root, an install root's state
folder or a mirror cannot redirect a write outside it by planting a link.
"""

from __future__ import annotations

import contextlib
import os
import stat

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _ids(fd: int) -> tuple[int, int]:
    status = os.fstat(fd)
    return status.st_dev, status.st_ino


def _make_searchable(fd: int) -> None:
    """Staged trees may hold read-only folders (modes from the archive)."""
    try:
        mode = os.fstat(fd).st_mode
        if mode & 0o700 != 0o700:
            os.fchmod(fd, stat.S_IMODE(mode) | 0o700)
    except OSError:
        pass


def _first_subfolder(fd: int) -> str | None:
    """Remove every non-folder in ``fd``; the name of a subfolder left, if any."""
    with os.scandir(fd) as listing:
        for entry in listing:
            if entry.is_dir(follow_symlinks=False):
                return entry.name
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.name, dir_fd=fd)
    return None


def remove_tree_at(parent_fd: int, name: str) -> None:
    """Remove ``name`` in the folder ``parent_fd`` (a file, a link, or a folder with all it
    holds) without following any symlink, without recursion (a tree 10,000 folders deep is
    no problem) and with at most two descriptors open."""
    try:
        status = os.lstat(name, dir_fd=parent_fd)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(status.st_mode):
        os.unlink(name, dir_fd=parent_fd)
        return
    current = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    path: list[tuple[str, tuple[int, int]]] = [(name, _ids(current))]
    try:
        while True:
            _make_searchable(current)
            child = _first_subfolder(current)
            if child is not None:
                try:
                    below = os.open(child, _DIR_FLAGS, dir_fd=current)
                except FileNotFoundError:
                    continue
                os.close(current)
                current = below
                path.append((child, _ids(current)))
                continue
            if len(path) == 1:
                break
            above = os.open("..", _DIR_FLAGS, dir_fd=current)
            if _ids(above) != path[-2][1]:  # the tree was moved while being removed
                os.close(above)
                raise OSError(f"{name} changed while it was being removed")
            os.close(current)
            current = above
            os.rmdir(path.pop()[0], dir_fd=current)
    finally:
        os.close(current)
    os.rmdir(name, dir_fd=parent_fd)
