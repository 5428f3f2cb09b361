"""The blob store: tarballs kept in the manifest's cache roots, addressed by sha256.

A download is written to the first root whose prefixes match its URL; a lookup searches
every root, since a blob named by its sha256 is as good in one root as in another once it
is re-verified. Only blobs whose checksum comes from verified metadata are stored here:
signed metadata (spec files, signatures, keys) is always fetched fresh, never cached.

Writes are atomic (a temporary file in the blob's folder, fsynced, then renamed), so jobs
sharing a root never see part of a blob, and two jobs storing the same blob both succeed.
A root that cannot be written is reported once (``warn``) and skipped for writes for the
rest of the run: the cache saves downloads, it is never the reason an apply fails.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import attrs

from reconcile.cache.files import (
    commit_file,
    copy_hashing,
    copy_to_temp,
    create_private,
    new_temp_file,
    open_regular,
    remove_file,
    sha256_of,
    write_atomically,
)
from reconcile.cache.layout import (
    blob_path,
    check_sha256,
    index_copy_path,
    record_path,
    root_of_blob,
    sha256_of_name,
)
from reconcile.cache.record import BlobRecord, BuiltPrefixes, utc_now
from reconcile.cache.roots import CacheRootConfig, select_root, strip_credentials, url_key
from reconcile.cache.scan import CacheEntry, read_record, scan_root
from reconcile.errors import VerificationError
from reconcile.pause import pause_point
from reconcile.safe_fs import check_no_links, folder_at

Warn = Callable[[str], None]


class PendingBlob:
    """A blob being written into its root: download to ``path``, then ``commit()``."""

    def __init__(
        self,
        cache: BlobCache,
        *,
        root: Path,
        sha256: str,
        url: str,
        spec: str | None,
        path: Path,
        built: BuiltPrefixes | None = None,
    ) -> None:
        self._cache = cache
        self.built = built
        self.root = root
        self.sha256 = sha256
        self.url = url
        self.spec = spec
        self.path = path  # a private temporary file in the blob's folder
        self.committed: Path | None = None

    def commit(self) -> Path:
        """Keep the file as the blob if its sha256 is the expected one, and return the blob's
        path; otherwise discard it and raise ``VerificationError``."""
        actual = sha256_of(self.path, root=self.root)
        if actual != self.sha256:
            self.discard()
            raise VerificationError(
                f"the download of {strip_credentials(self.url)} has sha256 {actual}, "
                f"expected {self.sha256}; it was not kept in the cache root {self.root}",
                hint="the mirror's copy is corrupt or was tampered with",
                reference="checksum-mismatch",
            )
        final = blob_path(self.root, self.sha256)
        commit_file(self.path, final, root=self.root)
        self.committed = final
        self._cache._record_use(final, url=self.url, spec=self.spec, built=self.built)
        return final

    def discard(self) -> None:
        if self.committed is None:
            remove_file(self.path, root=self.root)


class BlobCache:
    """The cache roots of one run, in manifest order."""

    def __init__(
        self,
        roots: Sequence[CacheRootConfig],
        *,
        warn: Warn | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.roots = tuple(roots)
        self._warn: Warn = warn if warn is not None else lambda _message: None
        self._clock = clock
        self._lock = threading.Lock()  # the executor stores blobs from several threads
        self._unwritable: set[Path] = set()

    # --- choosing and finding -------------------------------------------------------------

    def root_for(self, url: str) -> CacheRootConfig | None:
        """Where a download from ``url`` is written: the first matching root, or None."""
        return select_root(self.roots, url)

    def copies(self, sha256: str) -> list[Path]:
        """Every root's copy of the blob, in root order (unverified)."""
        check_sha256(sha256)
        found = []
        for root in self.roots:
            path = blob_path(root.path, sha256)
            try:
                with folder_at(root.path, path.parent, create=False) as folder:
                    there = folder.exists(path.name)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if there:
                found.append(path)
        return found

    def lookup(self, sha256: str) -> Path | None:
        """The first root's copy of the blob (unverified: call ``verify`` before use)."""
        copies = self.copies(sha256)
        return copies[0] if copies else None

    def verify(self, path: Path, sha256: str) -> bool:
        """Whether ``path`` is a regular file whose bytes have this sha256 (streamed)."""
        return sha256_of(path, root=root_of_blob(path)) == check_sha256(sha256)

    def checkout(
        self, sha256: str, dest: Path, *, url: str | None = None, spec: str | None = None
    ) -> bool:
        """Copy the blob to ``dest`` (a new file only this user can write), hashing the bytes
        as they are copied, and return True when they are the blob's; False when no root has
        a good copy. Bad copies met on the way are evicted.

        What is verified is ``dest`` itself: a job sharing the root can rewrite or swap the
        cached file afterwards without changing it. Never a hard link, which would share
        the cached file's bytes, rewrites included.
        """
        for copy in self.copies(sha256):
            if _place(copy, dest, root=root_of_blob(copy)) == sha256:
                self._record_use(copy, url=url, spec=spec)
                return True
            dest.unlink(missing_ok=True)
            self.evict(copy)
        return False

    def read_verified(
        self,
        sha256: str,
        *,
        max_bytes: int,
        url: str | None = None,
        spec: str | None = None,
    ) -> bytes | None:
        """The blob's bytes, read once into this process's memory and hashed there: what is
        returned is exactly what was hashed, and no job sharing the root can change it
        afterwards (the read-once buffer ``checkout``'s private file is for large blobs).
        None when no root has a good copy, or when the first good-sized copy is larger than
        ``max_bytes`` (use ``checkout`` then). Bad copies met on the way are evicted."""
        check_sha256(sha256)
        for copy in self.copies(sha256):
            data = _read_whole(copy, root=root_of_blob(copy), max_bytes=max_bytes)
            if data is _TOO_LARGE:
                return None
            if isinstance(data, bytes) and hashlib.sha256(data).hexdigest() == sha256:
                self._record_use(copy, url=url, spec=spec)
                return data
            self.evict(copy)
        return None

    # --- writing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def open_for_write(
        self, url: str, sha256: str, *, spec: str | None = None
    ) -> Iterator[PendingBlob]:
        """A temporary file in the root that ``url`` selects, kept as the blob only by
        ``commit()`` (which verifies it) and removed otherwise. ``ValueError`` when no root
        matches ``url`` (ask ``root_for`` first); ``OSError`` when the root cannot be written.
        """
        root = self.root_for(url)
        if root is None:
            raise ValueError(f"no cache root matches {strip_credentials(url)}")
        pending = self._begin(root.path, url, sha256, spec)
        try:
            yield pending
        finally:
            pending.discard()

    def store_download(
        self, url: str, sha256: str, spec: str, download: Callable[[Path], object]
    ) -> Path | None:
        """Run ``download`` into a temporary file of the root matching ``url`` and keep it as
        the blob if its sha256 is right. None when no root matches, or the root cannot be
        written (warned once; the caller then downloads elsewhere). A wrong checksum raises
        ``VerificationError`` after the file is discarded."""
        root = self._writable_root_for(url)
        if root is None:
            return None
        try:
            pending = self._begin(root, url, sha256, spec)
        except OSError as exc:
            self._mark_unwritable(root, exc)
            return None
        try:
            download(pending.path)
            return self._commit_or_none(pending)
        finally:
            pending.discard()

    def store(
        self,
        src: Path,
        sha256: str,
        url: str,
        spec: str | None = None,
        built: BuiltPrefixes | None = None,
    ) -> Path | None:
        """Keep a copy of a file already downloaded and verified elsewhere (``src``) as the
        blob of the root matching ``url``, checked again before it is kept. ``src`` stays.
        ``built``: the prefixes its unpacked ``binary_distribution`` names, for the record.

        With a private ``src`` (the executor's work folder), this is the safe order for
        roots shared with other jobs: verify and unpack the private file, then copy it into
        the cache. Never a hard link: whoever can write the cached file could then change
        the private one too."""
        root = self._writable_root_for(url)
        if root is None:
            return None
        folder = blob_path(root, sha256).parent
        try:
            temp = copy_to_temp(src, folder, sha256, root=root)
        except OSError as exc:
            self._mark_unwritable(root, exc)
            return None
        pending = PendingBlob(
            self, root=root, sha256=sha256, url=url, spec=spec, path=temp, built=built
        )
        try:
            return self._commit_or_none(pending)
        finally:
            pending.discard()

    def note_use(self, sha256: str, url: str, spec: str) -> None:
        """Record that the first root's copy served ``spec`` from ``url`` now."""
        copy = self.lookup(sha256)
        if copy is not None:
            self._record_use(copy, url=url, spec=spec)

    def note_built(self, sha256: str, built: BuiltPrefixes) -> None:
        """Keep ``built`` (read from the verified, unpacked bytes of the blob) in the record of
        every root's copy that does not say it yet, so the next plan need not read it."""
        for copy in self.copies(sha256):
            record = read_record(copy, sha256)
            if record is None or record.built != built:
                self._record_use(copy, url=None, spec=None, built=built)

    @staticmethod
    def recorded_built(copy: Path, sha256: str, dag_hash: str) -> dict[str, str] | None:
        """The built prefixes ``copy``'s record gives for ``dag_hash``, by DAG hash; None
        when it gives none. Unverified: a hint that spares reading the tarball, which apply
        checks against the unpacked ``binary_distribution``."""
        record = read_record(copy, sha256)
        if record is None or record.built is None or record.built.dag_hash != dag_hash:
            return None
        return dict(record.built.prefixes)

    def index_copy(self, url: str) -> Path | None:
        """Where to keep the index fetched from ``url`` between runs (the transport writes it
        and its validators); None when no writable root matches ``url``."""
        root = self.root_for(url)
        if root is None or self._known_unwritable(root.path) or not _may_write(root.path):
            return None
        path = index_copy_path(root.path, url_key(url))
        check_no_links(root.path, path.parent)  # a link on the way is refused, not followed
        return path

    # --- removing -------------------------------------------------------------------------

    def evict(self, path: Path) -> None:
        """Remove a blob (found bad) and its record; a failure is warned about, not raised:
        the blob is verified again on every use, so keeping it is never unsafe."""
        problem = self.remove(path)
        if problem is not None:
            self._warn(problem)

    def remove(self, path: Path) -> str | None:
        """Remove a blob and its record; what went wrong, or None."""
        self._check_blob_path(path)
        root = root_of_blob(path)
        try:
            remove_file(path, root=root)
            remove_file(record_path(path), root=root)
        except OSError as exc:
            return f"cannot remove {path} from the cache: {exc.strerror or exc}"
        return None

    def entries(self) -> list[CacheEntry]:
        """Every blob of every root, root by root."""
        return [entry for root in self.roots for entry in scan_root(root).entries]

    # --- internals ------------------------------------------------------------------------

    def _writable_root_for(self, url: str) -> Path | None:
        root = self.root_for(url)
        if root is None or self._known_unwritable(root.path):
            return None
        return root.path

    def _commit_or_none(self, pending: PendingBlob) -> Path | None:
        pause_point("cache-temp", pending.sha256)
        try:
            return pending.commit()
        except OSError as exc:  # the rename or the fsync; a wrong checksum raises on
            self._mark_unwritable(pending.root, exc)
            return None

    def _begin(self, root: Path, url: str, sha256: str, spec: str | None) -> PendingBlob:
        folder = blob_path(root, sha256).parent
        temp = new_temp_file(folder, sha256, root=root)
        return PendingBlob(self, root=root, sha256=sha256, url=url, spec=spec, path=temp)

    def _check_blob_path(self, path: Path) -> None:
        sha256 = sha256_of_name(path)
        if sha256 is None or not any(path == blob_path(r.path, sha256) for r in self.roots):
            raise ValueError(f"not a blob of these cache roots: {path}")

    def _record_use(
        self,
        blob: Path,
        *,
        url: str | None,
        spec: str | None,
        built: BuiltPrefixes | None = None,
    ) -> None:
        """Create or update the blob's record (with ``built`` when given); a root that cannot
        be written is warned about once (the blob itself is what matters)."""
        root = root_of_blob(blob)
        if self._known_unwritable(root):
            return
        sha256 = blob.name
        now = self._clock()
        clean_url = strip_credentials(url) if url else None
        record = read_record(blob, sha256)
        try:
            if record is None:
                with folder_at(root, blob.parent, create=False) as folder:
                    size = folder.lstat(blob.name).st_size
                record = BlobRecord(sha256=sha256, size=size, stored_at=now, last_used=now)
            record = record.noting(url=clean_url, spec=spec, when=now)
            if built is not None:
                record = attrs.evolve(record, built=built)
            # Not fsynced: a use lost in a crash only makes cache gc see the blob as less
            # recently used (a record that does not read counts as none); two fsyncs per
            # cached tarball were a large part of a warm apply on a busy disk.
            write_atomically(record_path(blob), record.to_json(), root=root, durable=False)
        except OSError as exc:
            self._mark_unwritable(root, exc)

    def _known_unwritable(self, root: Path) -> bool:
        with self._lock:
            return root in self._unwritable

    def _mark_unwritable(self, root: Path, exc: OSError) -> None:
        with self._lock:
            if root in self._unwritable:
                return
            self._unwritable.add(root)
        self._warn(
            f"cache root {root} cannot be written ({exc.strerror or exc}); downloads are not "
            "kept there for the rest of this run"
        )


_TOO_LARGE = object()


def _read_whole(copy: Path, *, root: Path, max_bytes: int) -> bytes | object | None:
    """All of ``copy``'s bytes; ``_TOO_LARGE`` past ``max_bytes``; None when it is not a
    readable regular file below ``root`` (``open_regular``: no link followed)."""
    try:
        with open_regular(copy, root=root) as stream:
            if os.fstat(stream.fileno()).st_size > max_bytes:
                return _TOO_LARGE
            data = stream.read(max_bytes + 1)
    except OSError:
        return None
    return _TOO_LARGE if len(data) > max_bytes else data


def _place(copy: Path, dest: Path, *, root: Path) -> str | None:
    """Copy ``copy`` to a new private file ``dest`` and return the sha256 of the bytes
    copied; None when ``copy`` is not a readable regular file. Failing to write ``dest``
    raises: that is no reason to think the blob bad."""
    dest.unlink(missing_ok=True)
    with create_private(dest) as writer:
        return copy_hashing(copy, writer, root=root)


def _may_write(root: Path) -> bool:
    """Whether this process could create files in ``root`` (or create ``root`` itself)."""
    for folder in (root, *root.parents):
        if folder.exists():
            return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)
    return False
