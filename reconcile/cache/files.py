"""File operations of the blob store: atomic writes, and reads that never follow a symlink
or block on a FIFO (a cache root may be shared with jobs that are not trusted)."""

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
from reconcile.state.leftovers import temp_name

CHUNK = 1 << 20
# Blobs and records are read by every job sharing the root; mkstemp's 0o600 would hide them.
SHARED_FILE_MODE = 0o644


@contextlib.contextmanager
def open_regular(path: Path) -> Iterator[BinaryIO]:
    """``path`` opened for reading, only if it is a regular file (not a symlink, FIFO or
    device); ``OSError`` otherwise."""
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


def sha256_of(path: Path) -> str | None:
    """The sha256 of a regular file's bytes, streamed; None when it cannot be read as one."""
    try:
        with open_regular(path) as stream:
            return sha256_of_stream(stream)
    except OSError:
        return None


def copy_hashing(source: Path, writer: BinaryIO) -> str | None:
    """Copy a regular file's bytes into ``writer`` and return their sha256; None when
    ``source`` cannot be read as a regular file. Errors writing are the caller's: raised."""
    digest = hashlib.sha256()
    with contextlib.ExitStack() as stack:
        try:
            reader = stack.enter_context(open_regular(source))
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


def fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable; some filesystems cannot, which is not an error."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def new_temp_file(folder: Path, name: str) -> Path:
    """An empty private file in ``folder`` (created with its parents) that will become
    ``name``; its temporary name tells whose it is, so that a later run can tell a leftover
    of a writer that died (``state/leftovers.py``)."""
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / temp_name(name)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    os.close(os.open(temp, flags, 0o600))
    return temp


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


def copy_to_temp(source: Path, folder: Path, name: str) -> Path:
    """A new private file in ``folder`` holding a copy of ``source``'s bytes. Never a hard
    link: a link would let whoever can write one name change the bytes behind the other."""
    temp = new_temp_file(folder, name)
    try:
        with open_regular(source) as reader:
            fd = os.open(temp, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "wb") as writer:
                shutil.copyfileobj(reader, writer, CHUNK)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def commit_file(temp: Path, final: Path) -> None:
    """Flush ``temp`` to disk and rename it over ``final`` (same folder)."""
    with temp.open("rb+") as stream:
        os.fsync(stream.fileno())
    temp.chmod(SHARED_FILE_MODE)
    temp.replace(final)
    fsync_folder(final.parent)


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a part of one."""
    temp = new_temp_file(path.parent, path.name)
    try:
        temp.write_bytes(data)
        commit_file(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
