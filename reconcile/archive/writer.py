"""Creating members below one folder without ever following a symlink.

Every path is walked one component at a time from a folder descriptor, each component
opened with ``O_NOFOLLOW | O_DIRECTORY``, and every new entry is created relative to its
parent's descriptor with ``O_EXCL``: a symlink planted anywhere (by the archive or by anyone
else) makes the write fail instead of landing outside. Descriptors also keep long member
names clear of ``PATH_MAX``.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from reconcile.archive.names import Parts
from reconcile.archive.rules import DirectoryMode
from reconcile.folders import process_umask

COPY_CHUNK = 1 << 20
# How many folders of one path stay open at once: a hostile archive nesting thousands of
# folders must not run the process out of descriptors.
MAX_OPEN_DEPTH = 64
WORKING_DIRECTORY_MODE = 0o700  # while unpacking; the archive's mode is given at the end

_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# Errors of link(2) that mean "this filesystem will not hard-link here": copy instead.
_NO_HARD_LINK = {errno.EPERM, errno.EMLINK, errno.EXDEV, errno.EOPNOTSUPP}


class SafeTree:
    """Writes below ``root``, a folder this process created and nobody else writes to."""

    def __init__(self, root: Path, *, umask: int):
        self._umask = umask
        self._root_fd = os.open(root, _FOLDER_FLAGS)
        # The folders on the way to the one written last, kept open: members arrive folder by
        # folder, so the next one is usually a sibling or a child, one ``open`` away.
        self._stack_parts: Parts = ()
        self._stack_fds: list[int] = []  # the descriptor of _stack_parts[:i + 1] at i
        # A folder deeper than MAX_OPEN_DEPTH: only it is kept open, not its whole path.
        self._deep_parts: Parts = ()
        self._deep_fd = -1

    def __enter__(self) -> SafeTree:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._forget_cached_folder()
        if self._root_fd >= 0:
            os.close(self._root_fd)
            self._root_fd = -1

    def make_directory(self, parts: Parts) -> None:
        parent = self._folder(parts[:-1])
        os.mkdir(parts[-1], WORKING_DIRECTORY_MODE, dir_fd=parent)
        if self._umask & WORKING_DIRECTORY_MODE:
            # mkdir's mode went through the umask; unpacking needs the folder writable.
            fd = os.open(parts[-1], _FOLDER_FLAGS, dir_fd=parent)
            try:
                os.fchmod(fd, WORKING_DIRECTORY_MODE)
            finally:
                os.close(fd)

    def write_file(
        self, parts: Parts, data: Iterable[bytes | memoryview], *, mode: int, mtime_ns: int
    ) -> None:
        parent = self._folder(parts[:-1])
        fd = os.open(parts[-1], _NEW_FILE_FLAGS, 0o600, dir_fd=parent)
        try:
            # Straight to the descriptor, piece by piece as the stream gives them: no copy.
            for chunk in data:
                _write_all(fd, chunk)
            self._finish_file(fd, mode=mode, mtime_ns=mtime_ns)  # after the last write
        finally:
            os.close(fd)

    def make_symlink(self, parts: Parts, target: str, *, mtime_ns: int) -> None:
        parent = self._folder(parts[:-1])
        os.symlink(target, parts[-1], dir_fd=parent)
        os.utime(parts[-1], ns=(mtime_ns, mtime_ns), dir_fd=parent, follow_symlinks=False)

    def make_hard_link(self, parts: Parts, target: Parts) -> None:
        """A hard link to the regular file ``target`` (written earlier); a copy where the
        filesystem refuses hard links."""
        target_parent = self._open_folder(target[:-1])
        try:
            parent = self._folder(parts[:-1])
            try:
                os.link(
                    target[-1],
                    parts[-1],
                    src_dir_fd=target_parent,
                    dst_dir_fd=parent,
                    follow_symlinks=False,
                )
            except OSError as exc:
                if exc.errno not in _NO_HARD_LINK:
                    raise
                self._copy(target_parent, target[-1], parent, parts[-1])
        finally:
            os.close(target_parent)

    def read_file(self, parts: Parts, *, limit: int) -> bytes:
        """At most ``limit`` + 1 bytes of a file written earlier (the caller checks the size)."""
        parent = self._folder(parts[:-1])
        fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        with os.fdopen(fd, "rb") as source:
            return source.read(limit + 1)

    def rename(self, parts: Parts, new_parts: Parts) -> None:
        """Rename ``parts`` to ``new_parts``, both below the root (a new name whose folder
        exists)."""
        self._forget_cached_folder()
        source_parent = self._open_folder(parts[:-1])
        try:
            destination_parent = self._open_folder(new_parts[:-1])
            try:
                os.rename(
                    parts[-1],
                    new_parts[-1],
                    src_dir_fd=source_parent,
                    dst_dir_fd=destination_parent,
                )
            finally:
                os.close(destination_parent)
        finally:
            os.close(source_parent)
            self._forget_cached_folder()  # the open folders may have moved

    def remove_empty_folders(self, folders: Iterable[Parts]) -> None:
        """``rmdir`` each folder, innermost first; fails if one is not empty."""
        self._forget_cached_folder()
        for parts in sorted(folders, key=len, reverse=True):
            parent = self._open_folder(parts[:-1])
            try:
                os.rmdir(parts[-1], dir_fd=parent)
            finally:
                os.close(parent)

    def _finish_file(self, fd: int, *, mode: int, mtime_ns: int) -> None:
        os.fchmod(fd, mode & ~self._umask & 0o777)
        os.utime(fd, ns=(mtime_ns, mtime_ns))

    def _copy(self, source_parent: int, source: str, parent: int, name: str) -> None:
        source_fd = os.open(
            source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=source_parent
        )
        with os.fdopen(source_fd, "rb") as data:
            status = os.fstat(source_fd)
            fd = os.open(name, _NEW_FILE_FLAGS, 0o600, dir_fd=parent)
            with os.fdopen(fd, "wb", buffering=COPY_CHUNK) as out:
                shutil.copyfileobj(data, out, COPY_CHUNK)
                out.flush()
                os.fchmod(fd, status.st_mode & 0o777)
                os.utime(fd, ns=(status.st_mtime_ns, status.st_mtime_ns))

    def _folder(self, parts: Parts) -> int:
        """A descriptor of the folder ``parts``, owned by the tree (do not close it)."""
        if parts and parts == self._deep_parts:
            return self._deep_fd
        self._forget_deep_folder()
        current = self._open_path(parts[:MAX_OPEN_DEPTH])
        if len(parts) <= MAX_OPEN_DEPTH:
            return current
        owned = False
        try:
            for part in parts[MAX_OPEN_DEPTH:]:
                following = os.open(part, _FOLDER_FLAGS, dir_fd=current)
                if owned:
                    os.close(current)
                current, owned = following, True
        except BaseException:
            if owned:
                os.close(current)
            raise
        self._deep_parts, self._deep_fd = parts, current
        return current

    def _open_path(self, parts: Parts) -> int:
        """Keep ``parts`` and every folder on its way open, reusing what is already open."""
        kept = 0
        for mine, theirs in zip(self._stack_parts, parts, strict=False):
            if mine != theirs:
                break
            kept += 1
        for fd in self._stack_fds[kept:]:
            os.close(fd)
        del self._stack_fds[kept:]
        current = self._stack_fds[-1] if kept else self._root_fd
        try:
            for part in parts[kept:]:
                current = os.open(part, _FOLDER_FLAGS, dir_fd=current)
                self._stack_fds.append(current)
        finally:
            self._stack_parts = parts[: len(self._stack_fds)]
        return current

    def _open_folder(self, parts: Parts) -> int:
        """A new descriptor of the folder ``parts``, for the caller to close."""
        return os.dup(self._folder(parts))

    def _forget_cached_folder(self) -> None:
        """Close every folder kept open (before a rename moves folders around)."""
        self._forget_deep_folder()
        for fd in self._stack_fds:
            os.close(fd)
        self._stack_fds.clear()
        self._stack_parts = ()

    def _forget_deep_folder(self) -> None:
        if self._deep_fd >= 0:
            os.close(self._deep_fd)
        self._deep_parts, self._deep_fd = (), -1


def _write_all(fd: int, data: bytes | memoryview) -> None:
    written = os.write(fd, data)
    if written < len(data):  # rare: a signal, or a full disk about to say so
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view) :]


def restore_directory_modes(prefix_dir: Path, directories: Iterable[DirectoryMode]) -> None:
    """Give the prefix's folders the archive's modes (masked by the umask) and mtimes,
    innermost first, so that a read-only folder is closed only after its content is done.

    In reverse name order every folder comes after all of its subfolders (``a/b`` sorts
    after ``a``), and a folder's subtree in one run, so the path to the current folder is
    kept open (``_OpenPath``): each folder is opened once, not once per level below it."""
    umask = process_umask()
    path = _OpenPath(os.open(prefix_dir, _FOLDER_FLAGS))
    try:
        for directory in sorted(directories, key=lambda d: d.parts, reverse=True):
            kept = path.open(directory.parts[:MAX_OPEN_DEPTH])
            # Deeper than MAX_OPEN_DEPTH: walked to from there, not kept open.
            fd = _open_below(kept, directory.parts[MAX_OPEN_DEPTH:])
            try:
                os.fchmod(fd, directory.mode & ~umask & 0o777)
                if directory.mtime_ns is not None:
                    os.utime(fd, ns=(directory.mtime_ns, directory.mtime_ns))
            finally:
                if fd != kept:
                    os.close(fd)
    finally:
        path.close()


class _OpenPath:
    """The folders on the way to the one used last, kept open below a root descriptor."""

    def __init__(self, root_fd: int) -> None:
        self._parts: Parts = ()
        self._fds = [root_fd]  # the descriptor of _parts[:i] at i

    def open(self, parts: Parts) -> int:
        kept = 0
        for mine, theirs in zip(self._parts, parts, strict=False):
            if mine != theirs:
                break
            kept += 1
        for fd in self._fds[kept + 1 :]:
            os.close(fd)
        del self._fds[kept + 1 :]
        self._parts = parts[:kept]
        for part in parts[kept:]:
            self._fds.append(os.open(part, _FOLDER_FLAGS, dir_fd=self._fds[-1]))
            self._parts += (part,)
        return self._fds[-1]

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()


def _open_below(root_fd: int, parts: Parts) -> int:
    current = root_fd
    for part in parts:
        following = os.open(part, _FOLDER_FLAGS, dir_fd=current)
        if current != root_fd:
            os.close(current)
        current = following
    return current
