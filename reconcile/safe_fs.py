"""File operations below a trusted root that never follow a symlink.

A root given by the user may itself be a symlink (that is the user's choice), but no path
component below it is ever followed: every folder is opened with ``O_NOFOLLOW`` relative to
its parent's descriptor, and files are created, replaced and removed relative to the
folder's descriptor. Co-tenants who can write inside a cache root, an install root's state
folder or a mirror cannot redirect a read or a write outside it by planting a link: they
get a ``LinkInRootError`` naming the link instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from reconcile.errors import ReconcileError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


_FILE_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_FILE_NEW_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class LinkInRootError(ReconcileError):
    """A path component inside a root is a symlink."""

    reference = "link-in-root"


def link_error(root: Path, path: Path, what: str) -> LinkInRootError:
    return LinkInRootError(
        f"refusing to use {path}: it is {what}, inside {root}; reconcile never follows a "
        "link below a cache root, an install root's state folder or a mirror it writes",
        hint="another job sharing the folder may have planted it: remove it (check what it "
        "pointed at), then run again",
    )


def relative_parts(root: Path, path: Path) -> tuple[str, ...]:
    """The components of ``path`` below ``root`` (lexically; ``..`` refused)."""
    parts = path.relative_to(root).parts
    if any(part in ("..", ".") for part in parts):
        raise ValueError(f"{path} is not a plain path inside {root}")
    return parts


def _open_component(fd: int, name: str, root: Path, path: Path, create: bool, mode: int) -> int:
    for _ in range(2):
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                raise
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, mode, dir_fd=fd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            try:
                is_link = stat.S_ISLNK(os.lstat(name, dir_fd=fd).st_mode)
            except OSError:
                is_link = False
            if not is_link:  # a file where a folder should be: the callers' usual error
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(path)) from None
            raise link_error(root, path, "a symlink") from None
    return os.open(name, _DIR_FLAGS, dir_fd=fd)


def open_folder(root: Path, folder: Path, *, create: bool = False, mode: int = 0o777) -> int:
    """A descriptor of ``folder``, opened component by component below ``root`` without
    following a link (``LinkInRootError``); missing folders are made when ``create``
    (``root`` too, with its parents). ``FileNotFoundError`` when missing otherwise."""
    parts = relative_parts(root, folder)
    if create:
        root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the root may be a link
    walked = root
    try:
        for part in parts:
            walked = walked / part
            below = _open_component(fd, part, root, walked, create, mode)
            os.close(fd)
            fd = below
    except BaseException:
        os.close(fd)
        raise
    return fd


class Folder:
    """An open folder below a root: every operation is relative to its descriptor, and
    names are single components (never paths)."""

    def __init__(self, root: Path, path: Path, fd: int) -> None:
        self.root = root
        self.path = path
        self.fd = fd

    def _name(self, name: str) -> str:
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"not a file name: {name!r}")
        return name

    def listdir(self) -> list[str]:
        return sorted(os.listdir(self.fd))  # noqa: PTH208 (a descriptor, not a path)

    def lstat(self, name: str) -> os.stat_result:
        return os.lstat(self._name(name), dir_fd=self.fd)

    def exists(self, name: str) -> bool:
        try:
            self.lstat(name)
        except FileNotFoundError:
            return False
        return True

    def open_read(self, name: str) -> BinaryIO:
        """``name`` opened for reading, only if it is a regular file (not a symlink, FIFO or
        device); ``OSError`` otherwise."""
        fd = os.open(self._name(name), _FILE_READ_FLAGS, dir_fd=self.fd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(errno.EINVAL, "not a regular file", str(self.path / name))
            os.set_blocking(fd, True)
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def open_new(self, name: str, mode: int = 0o600) -> BinaryIO:
        """A new file (never an existing one, never through a link), open for writing."""
        fd = os.open(self._name(name), _FILE_NEW_FLAGS, mode, dir_fd=self.fd)
        try:
            return os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            raise

    def replace(self, source: str, target: str) -> None:
        os.replace(self._name(source), self._name(target), src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def unlink(self, name: str, *, missing_ok: bool = True) -> None:
        try:
            os.unlink(self._name(name), dir_fd=self.fd)
        except FileNotFoundError:
            if not missing_ok:
                raise

    def symlink(self, target: str, name: str) -> None:
        os.symlink(target, self._name(name), dir_fd=self.fd)

    def remove_tree(self, name: str) -> None:
        remove_tree_at(self.fd, self._name(name))

    def fsync(self) -> None:
        with contextlib.suppress(OSError):  # some filesystems cannot; not an error
            os.fsync(self.fd)

    @contextlib.contextmanager
    def atomic_output(
        self, name: str, mode: int = 0o644, *, temp: str | None = None, durable: bool = True
    ) -> Iterator[BinaryIO]:
        """A new file that replaces ``name`` only when the block ends without an exception:
        a temporary file in this folder (named ``temp`` when given), fsynced, given
        ``mode``, then renamed. ``durable=False`` skips both fsyncs, for bookkeeping whose
        loss in a crash costs nothing (readers still see the old file or the new one)."""
        if not temp:
            import secrets  # only for writing: a read-only run need not import it (and hmac)

            temp = f".{self._name(name)}.{secrets.token_hex(8)}.tmp"
        stream = self.open_new(temp)
        try:
            with stream:
                yield stream
                stream.flush()
                if durable:
                    os.fsync(stream.fileno())
                os.fchmod(stream.fileno(), mode)
            self.replace(temp, name)
        except BaseException:
            self.unlink(temp)
            raise
        if durable:
            self.fsync()

    def write_atomic(
        self, name: str, data: bytes, mode: int = 0o644, *, temp: str | None = None
    ) -> None:
        with self.atomic_output(name, mode, temp=temp) as stream:
            stream.write(data)


@contextlib.contextmanager
def folder_at(
    root: Path, folder: Path, *, create: bool = True, mode: int = 0o777
) -> Iterator[Folder]:
    """``folder`` (below ``root``) opened without following links, as a ``Folder``."""
    fd = open_folder(root, folder, create=create, mode=mode)
    try:
        yield Folder(root, folder, fd)
    finally:
        os.close(fd)


def writing_into(
    root: Path, *parts: str, create: bool = True
) -> contextlib.AbstractContextManager[Folder]:
    """The folder ``root/parts...``, made when missing, for writing without following links."""
    return folder_at(root, root.joinpath(*parts), create=create)


def make_folders(root: Path, folder: Path, *, mode: int = 0o777) -> None:
    """``mkdir -p`` below ``root`` that refuses to pass through a link."""
    os.close(open_folder(root, folder, create=True, mode=mode))


def check_no_links(root: Path, folder: Path) -> None:
    """Refuse (``LinkInRootError``) when a folder between ``root`` and ``folder`` that
    exists is a link; missing folders are fine. For paths handed to code that opens them by
    name (a transport writing an index copy): it narrows, not closes, the window."""
    with contextlib.suppress(FileNotFoundError):
        os.close(open_folder(root, folder))


@contextlib.contextmanager
def open_file_below(root: Path, path: Path) -> Iterator[BinaryIO]:
    """A regular file below ``root`` opened for reading; no component followed if a link."""
    with folder_at(root, path.parent, create=False) as folder, folder.open_read(path.name) as f:
        yield f


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
