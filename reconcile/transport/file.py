"""Mirrors on a local or shared filesystem: ``file://`` URLs."""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from reconcile.errors import NotFoundError, TransportError
from reconcile.transport.base import ProgressCallback, Transport
from reconcile.transport.bounds import ByteCap, Cap, MemorySink


def url_to_path(url: str) -> Path:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "file":
        raise ValueError(f"not a file URL: {url}")
    if parts.netloc not in ("", "localhost"):
        raise TransportError(
            f"file URL names a host: {url}",
            hint="write file:///absolute/path, or a plain path relative to the manifest",
        )
    # what urllib.request.url2pathname does on POSIX, without importing http, email and ssl
    return Path(urllib.parse.unquote(parts.path))


CHUNK = 1 << 20


class FileTransport(Transport):
    def read_bytes(self, url: str, *, cap: Cap | None = None, expect_prefix: bytes = b"") -> bytes:
        sink = MemorySink(ByteCap(url, self.read_cap(cap)), expect_prefix=expect_prefix)
        path = url_to_path(url)
        try:
            with path.open("rb") as source:
                while chunk := source.read(CHUNK):
                    self.bytes_received += len(chunk)
                    if not sink.add(chunk):
                        break
        except FileNotFoundError as exc:
            raise NotFoundError(f"{url}: no such file") from exc
        except OSError as exc:
            raise TransportError(f"{url}: cannot read: {exc.strerror}") from exc
        return bytes(sink.data)

    def download(
        self,
        url: str,
        dest: Path,
        *,
        progress: ProgressCallback | None = None,
        cap: Cap | None = None,
    ) -> int:
        """Copy the file at ``url`` to ``dest``. Reading is the mirror's part (a failure is a
        ``TransportError``: another mirror may do better); writing is this machine's, so a
        full disk or a read-only folder rises as the ``OSError`` it is, naming ``dest``.
        ``cap`` stops the copy at the first byte past it."""
        path = url_to_path(url)
        bound = ByteCap(url, cap)
        try:
            source = path.open("rb")
        except FileNotFoundError as exc:
            raise NotFoundError(f"{url}: no such file") from exc
        except OSError as exc:
            raise TransportError(f"{url}: cannot read: {exc.strerror}") from exc
        with source, _local_write(dest), dest.open("wb") as target:
            while chunk := _read_chunk(source, url):
                bound.check(target.tell() + len(chunk))
                target.write(chunk)
                self.bytes_received += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            return target.tell()

    def download_into(
        self,
        url: str,
        sink: BinaryIO,
        *,
        offset: int = 0,
        progress: ProgressCallback | None = None,
        cap: Cap | None = None,
    ) -> int:
        """As ``download``, resuming at ``offset`` by seeking (from 0 if the file is now
        shorter than that)."""
        path = url_to_path(url)
        bound = ByteCap(url, cap)
        try:
            source = path.open("rb")
        except FileNotFoundError as exc:
            raise NotFoundError(f"{url}: no such file") from exc
        except OSError as exc:
            raise TransportError(f"{url}: cannot read: {exc.strerror}") from exc
        with source, _local_write(Path(str(sink.name))):
            if offset > os.fstat(source.fileno()).st_size:
                offset = 0  # the file shrank: what was kept is not a part of it
            source.seek(offset)
            sink.seek(offset)
            sink.truncate()
            while chunk := _read_chunk(source, url):
                bound.check(sink.tell() + len(chunk))
                sink.write(chunk)
                self.bytes_received += len(chunk)
                if progress is not None:
                    progress(len(chunk))
            sink.flush()
            return sink.tell()

    def size(self, url: str) -> int:
        path = url_to_path(url)
        try:
            return path.stat().st_size
        except FileNotFoundError as exc:
            raise NotFoundError(f"{url}: no such file") from exc
        except OSError as exc:
            raise TransportError(f"{url}: cannot read: {exc.strerror}") from exc


def _read_chunk(source: BinaryIO, url: str) -> bytes:
    try:
        return source.read(CHUNK)
    except OSError as exc:
        raise TransportError(f"{url}: cannot read: {exc.strerror}") from exc


@contextlib.contextmanager
def _local_write(dest: Path) -> Iterator[None]:
    """An ``OSError`` while writing ``dest`` names it (a full disk on write() names no file)."""
    try:
        yield
    except OSError as exc:
        if exc.errno is not None and exc.filename is None:
            exc.filename = str(dest)
        raise
