"""Mirrors on a local or shared filesystem: ``file://`` URLs."""

from __future__ import annotations

import urllib.parse
import urllib.request
from pathlib import Path

from reconcile.errors import NotFoundError, TransportError
from reconcile.transport.base import ProgressCallback, Transport


def url_to_path(url: str) -> Path:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "file":
        raise ValueError(f"not a file URL: {url}")
    if parts.netloc not in ("", "localhost"):
        raise TransportError(
            f"file URL names a host: {url}",
            hint="write file:///absolute/path, or a plain path relative to the manifest",
        )
    return Path(urllib.request.url2pathname(parts.path))


CHUNK = 1 << 20


class FileTransport(Transport):
    def _read(self, url: str) -> bytes:
        path = url_to_path(url)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(f"{url}: no such file") from exc
        except OSError as exc:
            raise TransportError(f"{url}: cannot read: {exc.strerror}") from exc

    def read_bytes(self, url: str) -> bytes:
        data = self._read(url)
        self.bytes_received += len(data)
        return data

    def download(self, url: str, dest: Path, *, progress: ProgressCallback | None = None) -> int:
        path = url_to_path(url)
        try:
            with path.open("rb") as source, dest.open("wb") as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    self.bytes_received += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
                return target.tell()
        except FileNotFoundError as exc:
            raise NotFoundError(f"{url}: no such file") from exc
        except OSError as exc:
            raise TransportError(f"{url}: cannot read: {exc.strerror}") from exc

    def size(self, url: str) -> int:
        path = url_to_path(url)
        try:
            return path.stat().st_size
        except FileNotFoundError as exc:
            raise NotFoundError(f"{url}: no such file") from exc
        except OSError as exc:
            raise TransportError(f"{url}: cannot read: {exc.strerror}") from exc
