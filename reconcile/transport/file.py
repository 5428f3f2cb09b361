"""Mirrors on a local or shared filesystem: ``file://`` URLs."""

from __future__ import annotations

import shutil
import urllib.parse
import urllib.request
from pathlib import Path

from reconcile.errors import NotFoundError, TransportError
from reconcile.transport.base import Transport


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


class FileTransport(Transport):
    def read_bytes(self, url: str) -> bytes:
        path = url_to_path(url)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFoundError(f"{url}: no such file") from exc
        except OSError as exc:
            raise TransportError(f"{url}: cannot read: {exc.strerror}") from exc

    def download(self, url: str, dest: Path) -> int:
        path = url_to_path(url)
        try:
            with path.open("rb") as source, dest.open("wb") as target:
                shutil.copyfileobj(source, target, 1 << 20)
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
