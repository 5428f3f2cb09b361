"""File access shared by the relocators: listed paths, write permission, safe rewrites."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

import attrs

from reconcile.errors import RelocationError
from reconcile.reprs import fields_repr


@attrs.frozen(kw_only=True)
class ByteEdit:
    """Replace ``len(data)`` bytes at ``offset`` (same length: the file keeps its layout)."""

    __repr__ = fields_repr

    offset: int
    data: bytes


def listed_file(prefix_dir: Path, relative: str, *, listing: str) -> Path | None:
    """The regular file ``relative`` (from ``binary_distribution``'s ``listing``) inside
    ``prefix_dir``; ``None`` for a symlink, which the link relocation handles instead.

    Never follows a symlink out of the prefix: a listed path must be a plain relative path
    whose folders are real folders of the prefix.
    """
    parts = PurePosixPath(relative).parts
    if not parts or PurePosixPath(relative).is_absolute() or ".." in parts:
        raise RelocationError(
            f"{listing} lists {relative!r}: expected a path relative to the prefix, without '..'",
            hint="the tarball's .spack/binary_distribution is malformed; rebuild or re-push it",
            reference="bad-relocation-list",
        )
    path = prefix_dir.joinpath(*parts)
    try:
        # Each folder on the way, from the prefix down, must be a real folder, not a link.
        for depth in range(1, len(parts)):
            if stat.S_ISLNK(prefix_dir.joinpath(*parts[:depth]).lstat().st_mode):
                raise RelocationError(
                    f"{listing} lists {relative!r}, whose folder is reached through a symlink "
                    f"in {prefix_dir}; expected real folders inside the prefix",
                    hint="the tarball's .spack/binary_distribution does not match its files",
                    reference="bad-relocation-list",
                )
        mode = path.lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise RelocationError(
            f"{listing} lists {relative!r}, which is not in the unpacked prefix {prefix_dir}",
            hint="the tarball's .spack/binary_distribution does not match its files",
            reference="bad-relocation-list",
        ) from None
    if stat.S_ISLNK(mode):
        return None
    if not stat.S_ISREG(mode):
        raise RelocationError(
            f"{listing} lists {relative!r} in {prefix_dir}: found a "
            f"{_kind(mode)}, expected a regular file",
            hint="the tarball's .spack/binary_distribution does not match its files",
            reference="bad-relocation-list",
        )
    return path


def _kind(mode: int) -> str:
    return "folder" if stat.S_ISDIR(mode) else "special file"


@contextlib.contextmanager
def writable(path: Path) -> Iterator[None]:
    """Let the owner write ``path`` for the duration (tarballs ship read-only files and
    folders); its mode is restored afterwards."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & stat.S_IWUSR:
        yield
        return
    path.chmod(mode | stat.S_IWUSR)
    try:
        yield
    finally:
        path.chmod(mode)


def rewrite_in_place(path: Path, data: bytes) -> None:
    """Give the regular file ``path`` new contents in place: same inode, so its mode and
    every hard link to it follow (Spack lists only one name of each hard-linked file,
    ``hardlinks_deduped``).

    Not atomic: meant for a prefix in a private staging folder, which is thrown away whole
    if relocation fails, so no half-written file can ever be committed.
    """
    with writable(path):
        descriptor = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.ftruncate(descriptor, len(data))
        finally:
            os.close(descriptor)


def write_edits(path: Path, edits: Iterable[ByteEdit]) -> None:
    """Apply same-length byte edits to ``path`` in place (hard links and mode untouched)."""
    with writable(path):
        descriptor = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
        try:
            for edit in edits:
                os.pwrite(descriptor, edit.data, edit.offset)
        finally:
            os.close(descriptor)
