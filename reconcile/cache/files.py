"""File operations of the blob store: atomic writes, and reads that never follow a symlink
or block on a FIFO (a cache root may be shared with jobs that are not trusted).

Every path inside a cache root is reached through ``safe_fs`` from that ``root``: no folder
below it is followed if it is a symlink (``LinkInRootError`` names it), so a link planted
by another job cannot make a read, write or removal happen outside the root. ``root=None``
is for the run's own private files (its staging folder), opened with ``O_NOFOLLOW``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from reconcile.hashing import sha256_of_stream
from reconcile.safe_fs import folder_at, open_file_below
from reconcile.state.leftovers import temp_name

CHUNK = 1 << 20
# Blobs and records are read by every job sharing the root; mkstemp's 0o600 would hide them.
SHARED_FILE_MODE = 0o644


@contextlib.contextmanager
def _open_private(path: Path) -> Iterator[BinaryIO]:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        stream = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with stream:
        yield stream


@contextlib.contextmanager
def open_regular(path: Path, *, root: Path | None) -> Iterator[BinaryIO]:
    """``path`` opened for reading, only if it is a regular file (not a symlink, FIFO or
    device); ``OSError`` otherwise, ``LinkInRootError`` for a link in a folder below
    ``root``."""
    opened = _open_private(path) if root is None else open_file_below(root, path)
    with opened as stream:
        yield stream


def sha256_of(path: Path, *, root: Path | None) -> str | None:
    """The sha256 of a regular file's bytes, streamed; None when it cannot be read as one."""
    try:
        with open_regular(path, root=root) as stream:
            return sha256_of_stream(stream)
    except OSError:
        return None


def copy_hashing(source: Path, writer: BinaryIO, *, root: Path | None) -> str | None:
    """Copy a regular file's bytes into ``writer`` and return their sha256; None when
    ``source`` cannot be read as a regular file. Errors writing are the caller's: raised."""
    digest = hashlib.sha256()
    with contextlib.ExitStack() as stack:
        try:
            reader = stack.enter_context(open_regular(source, root=root))
        except OSError:
            return None
        while True:
            try:
                chunk = reader.read(CHUNK)
            except OSError:
                return None
            if not chunk:
                break
            digest.update(chunk)
            writer.write(chunk)
    return digest.hexdigest()


def new_temp_file(folder: Path, name: str, *, root: Path) -> Path:
    """An empty private file in ``folder`` (made, with the folders above it up to
    ``root``, when missing) that will become ``name``; its temporary name tells whose it
    is, so that a later run can tell a leftover of a writer that died
    (``state/leftovers.py``)."""
    temp = temp_name(name)
    with folder_at(root, folder) as opened:
        opened.open_new(temp).close()
    return folder / temp


def create_private(path: Path) -> BinaryIO:
    """A new file at ``path`` that only this user can read or write (created exclusively:
    never an existing file, never through a symlink), open for writing."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def copy_to_temp(source: Path, folder: Path, name: str, *, root: Path) -> Path:
    """A new private file in ``folder`` (below ``root``) holding a copy of the private
    file ``source``. Never a hard link: a link would let whoever can write one name change
    the bytes behind the other."""
    temp = temp_name(name)
    with folder_at(root, folder) as opened:
        try:
            with _open_private(source) as reader, opened.open_new(temp) as writer:
                shutil.copyfileobj(reader, writer, CHUNK)
        except BaseException:
            opened.unlink(temp)
            raise
    return folder / temp


def commit_file(temp: Path, final: Path, *, root: Path) -> None:
    """Flush ``temp`` to disk and rename it over ``final`` (same folder, below ``root``)."""
    with folder_at(root, final.parent, create=False) as opened:
        with opened.open_read(temp.name) as stream:
            os.fsync(stream.fileno())
            os.fchmod(stream.fileno(), SHARED_FILE_MODE)
        opened.replace(temp.name, final.name)
        opened.fsync()


def remove_file(path: Path, *, root: Path) -> None:
    """Remove ``path`` (below ``root``) if it is there; the folders to it are never
    followed through a link."""
    try:
        with folder_at(root, path.parent, create=False) as opened:
            opened.unlink(path.name)
    except FileNotFoundError:
        return


def write_atomically(path: Path, data: bytes, *, root: Path, durable: bool = True) -> None:
    """Readers see the old file or the new one, never a part of one (``durable=False``:
    without the fsyncs, see ``safe_fs.Folder.atomic_output``)."""
    temp = temp_name(path.name)
    with (
        folder_at(root, path.parent) as opened,
        opened.atomic_output(path.name, SHARED_FILE_MODE, temp=temp, durable=durable) as out,
    ):
        out.write(data)
