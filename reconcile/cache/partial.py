"""Downloads that survive an interrupted run: bytes are written to a partial file that the
next run resumes with a range request, and nothing is used before the whole file is hashed.

A tarball's partial download lives at ``<cache root>/partial/<sha256>.<owner tag>.partial``
(``state/leftovers.py``), or in ``<install root>/.reconcile/partial/`` when no cache root
takes it; a source archive's in its source mirror's state folder. The owner tag says whether
a live run is still writing it: a run resumes only a partial whose writer has ended, and
claims it first by renaming it to its own tag (two runs cannot both resume one). No sweep
removes a partial download (they are not leftovers); a successful download removes it, and
``cache gc`` an abandoned one (``cache/partials.py``).

The partial file may sit in a folder shared with other jobs, so it is never what is checked
or used: when the transfer ends it is copied, hashed while copying, into the caller's
private file, and that copy is what the caller compares with the expected sha256. A partial
rewritten by someone else (or a file that changed on the server between the runs) fails
that check; the partial is then thrown away and the file fetched again from its first byte.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import attrs

from reconcile.cache.files import create_private
from reconcile.cache.layout import SHA256_PATTERN
from reconcile.errors import TransportError
from reconcile.folders import folder_mode
from reconcile.reprs import fields_repr
from reconcile.safe_fs import Folder, folder_at
from reconcile.state.leftovers import owner_is_gone, owner_of, resumable_key, resumable_name
from reconcile.transport.base import ProgressCallback, Transport
from reconcile.transport.bounds import Cap

PARTIAL_FOLDER = "partial"
CHUNK = 1 << 20
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CLAIMED_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


@attrs.frozen(kw_only=True)
class PartialPlace:
    """The folder partial downloads are kept in; nothing below ``root`` is followed if it
    is a link."""

    __repr__ = fields_repr

    root: Path
    folder: Path
    # remove the folder once it is empty: not in a shared cache root, where another run may
    # be about to write into it
    tidy: bool = False


@attrs.frozen(kw_only=True)
class Downloaded:
    __repr__ = fields_repr

    size: int  # the file's bytes, now in the caller's private file
    sha256: str  # of those bytes; the caller compares it with the expected one
    received: int  # bytes fetched by this run
    resumed_from: int  # bytes kept from an earlier run and not fetched again (0: none)


def _candidates(folder: Folder, sha256: str) -> list[tuple[int, str]]:
    """Partial downloads of ``sha256`` whose writer has ended, largest first."""
    found = []
    for name in folder.listdir():
        if resumable_key(name) != sha256:
            continue
        owner = owner_of(name)
        if owner is None or not owner_is_gone(owner):
            continue  # a live run is writing it
        with contextlib.suppress(OSError):
            info = folder.lstat(name)
            if stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid():
                found.append((info.st_size, name))
    return sorted(found, reverse=True)


def _open_claimed(folder: Folder, name: str) -> BinaryIO | None:
    try:
        fd = os.open(name, _CLAIMED_FLAGS, dir_fd=folder.fd)
    except OSError:
        return None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
        os.close(fd)
        return None
    os.set_blocking(fd, True)
    return os.fdopen(fd, "r+b")


def _claim(folder: Folder, sha256: str) -> tuple[str, BinaryIO]:
    """This run's partial file of ``sha256``: an ended run's (renamed to this run's tag, so
    that no other run resumes it too) or a new, empty one. Other ended runs' partials of
    the same file are removed: the one kept is the longest."""
    mine = resumable_name(sha256)
    stream: BinaryIO | None = None
    for _size, name in _candidates(folder, sha256):
        if stream is not None:
            folder.unlink(name)
            continue
        try:
            folder.replace(name, mine)
        except FileNotFoundError:
            continue  # another run claimed it first
        stream = _open_claimed(folder, mine)
        if stream is None:
            folder.unlink(mine)
    if stream is None:
        fd = os.open(mine, _OPEN_FLAGS, 0o600, dir_fd=folder.fd)
        stream = os.fdopen(fd, "r+b")
    return mine, stream


def _hash_stream(stream: BinaryIO, writer: BinaryIO | None = None) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    stream.seek(0)
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if writer is not None:
            writer.write(chunk)
    return size, digest.hexdigest()


def _copy_hashing(stream: BinaryIO, dest: Path) -> tuple[int, str]:
    """Copy ``stream``'s bytes into a new private ``dest``; their size and sha256."""
    dest.unlink(missing_ok=True)
    try:
        with create_private(dest) as writer:
            return _hash_stream(stream, writer)
    except OSError as exc:
        if exc.filename is None:  # write() on a full disk names no file: say which
            exc.filename = str(dest)
        raise


@contextlib.contextmanager
def _partial_file(place: PartialPlace, sha256: str) -> Iterator[tuple[Folder, str, BinaryIO]]:
    # never group- or world-writable, whatever the umask (folders.py)
    with folder_at(place.root, place.folder, mode=folder_mode()) as folder:
        name, stream = _claim(folder, sha256)
        with stream:
            yield folder, name, stream


def download_resumable(
    transport: Transport,
    url: str,
    dest: Path,
    *,
    sha256: str,
    expected_size: int | None,
    place: PartialPlace | None,
    progress: ProgressCallback | None = None,
    restarted: Callable[[int], None] | None = None,
    cap: Cap | None = None,
) -> Downloaded:
    """Download ``url`` into the private file ``dest``, resuming a partial download of
    ``sha256`` kept in ``place`` (see the module docstring). ``restarted`` is told how many
    kept bytes were thrown away when the resumed file's sha256 is not ``sha256``; ``cap``
    bounds the whole file's size, as in ``Transport.download``.

    Without a ``place``, or when its folder cannot be written, the file is downloaded
    straight into ``dest`` (and an interruption loses it). Errors of the transfer are the
    transport's; they leave the partial file for the next run."""
    if SHA256_PATTERN.fullmatch(sha256) is None:
        place = None  # it names the file: only a real digest may
    with contextlib.ExitStack() as stack:
        try:
            if place is None:
                raise FileNotFoundError("no folder for partial downloads")
            folder, name, stream = stack.enter_context(_partial_file(place, sha256))
        except OSError:
            return _download_whole(transport, url, dest, progress, cap)
        kept = stream.seek(0, os.SEEK_END)
        if expected_size is not None and kept > expected_size:
            kept = 0  # longer than the file: not a part of it
        if kept and progress is not None:
            progress(kept)
        if expected_size is None or kept < expected_size:
            _download_into(transport, url, stream, kept, progress, cap, (folder, name))
        size, actual = _copy_hashing(stream, dest)
        received = size - kept
        if actual != sha256 and kept:
            if restarted is not None:
                restarted(kept)
            _download_into(transport, url, stream, 0, progress, cap, (folder, name))
            size, actual = _copy_hashing(stream, dest)
            received, kept = received + size, 0
        folder.unlink(name)  # used (or, when its sha256 is wrong, worth nothing)
    if place is not None and place.tidy:
        _remove_if_empty(place)
    return Downloaded(size=size, sha256=actual, received=received, resumed_from=kept)


def _download_into(
    transport: Transport,
    url: str,
    stream: BinaryIO,
    offset: int,
    progress: ProgressCallback | None,
    cap: Cap | None,
    partial: tuple[Folder, str],
) -> None:
    try:
        transport.download_into(url, stream, offset=offset, progress=progress, cap=cap)
    except OSError as exc:
        if exc.filename is None or str(exc.filename).isdigit():  # only a descriptor was known
            folder, name = partial
            exc.filename = str(folder.path / name)
        raise
    except TransportError as exc:
        if exc.reference == "transfer-too-large":
            folder, name = partial
            folder.unlink(name)  # more than the file has: nothing of it is worth resuming
        raise


def _download_whole(
    transport: Transport,
    url: str,
    dest: Path,
    progress: ProgressCallback | None,
    cap: Cap | None,
) -> Downloaded:
    dest.unlink(missing_ok=True)
    create_private(dest).close()  # the transport writes into it, keeping its 0600 mode
    size = transport.download(url, dest, progress=progress, cap=cap)
    with dest.open("rb") as stream:
        _size, actual = _hash_stream(stream)
    return Downloaded(size=size, sha256=actual, received=size, resumed_from=0)


def _remove_if_empty(place: PartialPlace) -> None:
    with (
        contextlib.suppress(OSError),
        folder_at(place.root, place.folder.parent, create=False) as parent,
    ):
        os.rmdir(place.folder.name, dir_fd=parent.fd)


def cache_place(cache_root: Path) -> PartialPlace:
    return PartialPlace(root=cache_root, folder=cache_root / PARTIAL_FOLDER)


def state_place(state_folder: Path) -> PartialPlace:
    """Beside a run's staging area (``<root>/.reconcile/partial``)."""
    return PartialPlace(root=state_folder.parent, folder=state_folder / PARTIAL_FOLDER, tidy=True)
