"""The write seam: ``MirrorStore`` puts, deletes, lists and links files of one mirror.

Every write into a mirror (publishing, syncing, source mirrors) goes through a store, addressed
by ``/``-separated keys relative to the mirror's root, so the writers do not know whether the
mirror is a folder or a bucket. ``LocalMirrorStore`` writes a folder (``file://`` URLs and
plain paths); ``S3MirrorStore`` writes a bucket prefix (``s3://``). A put is atomic for
readers (they see the old file or the new one, never half of one): a temporary file renamed
into place locally, one PUT of the whole object on S3.

Stores read only what a read-modify-write needs (an index to extend, a blob that may already
be there); mirrors are read for installs through ``transport``.
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import hashlib
import os
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from reconcile.atomic_write import MIRROR_FILE_MODE
from reconcile.errors import ReconcileError
from reconcile.safe_fs import Folder, folder_at, open_folder

CHUNK = 1 << 20


def copy_hashed(reader: BinaryIO, writer: BinaryIO) -> str:
    """Copy ``reader`` to ``writer``; the sha256 of the bytes copied."""
    digest = hashlib.sha256()
    while chunk := reader.read(CHUNK):
        digest.update(chunk)
        writer.write(chunk)
    return digest.hexdigest()


def check_key(key: str) -> str:
    """A key names a file inside the mirror: relative, no empty, ``.`` or ``..`` part."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ReconcileError(
            f"refusing to write {key!r} into a mirror: not a path inside it",
            reference="mirror-unwritable",
        )
    return key


def link_source(key: str, target: str) -> str:
    """The key a relative link at ``key`` pointing at ``target`` leads to."""
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(key), target))
    return check_key(joined)


class MirrorStore(abc.ABC):
    """Writes into one mirror. Errors are ``ReconcileError`` naming the mirror."""

    url: str  # the mirror's URL with credentials masked, for messages

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` atomically (parents made as needed)."""

    @abc.abstractmethod
    def put_file(self, key: str, source: Path) -> str:
        """Write the contents of the local file ``source`` at ``key`` atomically; returns the
        sha256 of the bytes written (a file changed meanwhile shows in it)."""

    @abc.abstractmethod
    def read_bytes(self, key: str) -> bytes | None:
        """The file at ``key``, or None when there is none."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a key that is not there is not an error."""

    @abc.abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Every key under the folder ``prefix`` (recursively), sorted."""

    @abc.abstractmethod
    def link(self, key: str, target: str) -> None:
        """Make ``key`` lead to ``target`` (relative to ``key``'s folder): a symbolic link
        where the store has them, else a copy of the file ``target`` names."""

    @contextlib.contextmanager
    def locked(self, folder: str) -> Iterator[None]:
        """Hold the lock of ``folder`` for a read-modify-write (an index). Stores without
        locks yield at once: concurrent writers of one index must be serialized outside."""
        del folder
        yield

    def local_path(self, key: str) -> Path:
        """Where ``key`` is on this machine; for a remote store, the key as a relative path
        (what results and messages show)."""
        return Path(key)


class LocalMirrorStore(MirrorStore):
    """A mirror folder on a local or shared filesystem. Every folder below the root is
    opened without following a link (``safe_fs``): a link planted in a shared mirror ends
    the write with ``link-in-root``, naming it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def local_path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _folder(
        self, key: str, *, create: bool = True
    ) -> contextlib.AbstractContextManager[Folder]:
        return folder_at(self.root, self.local_path(key).parent, create=create)

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._folder(key) as folder:
            folder.write_atomic(self.local_path(key).name, data, MIRROR_FILE_MODE)

    def put_file(self, key: str, source: Path) -> str:
        with (
            self._folder(key) as folder,
            source.open("rb") as reader,
            folder.atomic_output(self.local_path(key).name, MIRROR_FILE_MODE) as writer,
        ):
            return copy_hashed(reader, writer)

    def read_bytes(self, key: str) -> bytes | None:
        try:
            with (
                self._folder(key, create=False) as folder,
                folder.open_read(self.local_path(key).name) as stream,
            ):
                return stream.read()
        except FileNotFoundError:
            return None

    def exists(self, key: str) -> bool:
        try:
            with self._folder(key, create=False) as folder:
                return folder.exists(self.local_path(key).name)
        except FileNotFoundError:
            return False

    def delete(self, key: str) -> None:
        try:
            with self._folder(key, create=False) as folder:
                folder.unlink(self.local_path(key).name)
        except FileNotFoundError:
            return

    def list(self, prefix: str) -> list[str]:
        folder = self.local_path(prefix) if prefix else self.root
        if folder.is_symlink() or not folder.is_dir():
            return []
        return sorted(
            str(p.relative_to(self.root).as_posix())
            for p in folder.rglob("*")
            if p.is_file() or p.is_symlink()
        )

    def link(self, key: str, target: str) -> None:
        """A symlink made under a temporary name, then renamed over whatever was there."""
        link_source(key, target)
        name = self.local_path(key).name
        import secrets  # only to write: a read-only run need not import it (and hmac)

        with self._folder(key) as folder:
            while True:
                temp = f".{name}.{secrets.token_hex(4)}.tmp"
                try:
                    folder.symlink(target, temp)
                    break
                except FileExistsError:
                    continue
            try:
                folder.replace(temp, name)
            except OSError:
                folder.unlink(temp)
                raise
            folder.fsync()

    @contextlib.contextmanager
    def locked(self, folder: str) -> Iterator[None]:
        """An exclusive lock on the folder itself: no lock file is left in the mirror."""
        path = self.local_path(folder + "/x").parent if folder else self.root
        descriptor = open_folder(self.root, path, create=True)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # closing releases the lock


def as_store(target: MirrorStore | Path) -> MirrorStore:
    """Writers accept a folder too (tests, examples, bundles): it becomes a local store."""
    return target if isinstance(target, MirrorStore) else LocalMirrorStore(target)


__all__ = [
    "MIRROR_FILE_MODE",
    "LocalMirrorStore",
    "MirrorStore",
    "as_store",
    "check_key",
    "copy_hashed",
    "link_source",
]
