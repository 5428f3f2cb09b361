"""The transport seam: one small interface, picked by URL scheme.

Every adapter maps its library's exceptions to ``TransportError`` / ``NotFoundError`` at the
edge, with the URL's credentials masked.
"""

from __future__ import annotations

import abc
import urllib.parse
from pathlib import Path


def mask_credentials(url: str) -> str:
    """``https://user:secret@host/x`` -> ``https://user:***@host/x`` (for every message)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    user = parts.username or ""
    masked = f"{user}:***@{host}" if parts.password is not None else f"{user}@{host}"
    return urllib.parse.urlunsplit((parts.scheme, masked, parts.path, parts.query, parts.fragment))


def join_url(base: str, *parts: str) -> str:
    """Append path components to a URL (no normalisation of ``..``: callers pass names)."""
    url = base.rstrip("/")
    for part in parts:
        url += "/" + part.strip("/")
    return url


class Transport(abc.ABC):
    """Reads files from one kind of mirror location."""

    @abc.abstractmethod
    def read_bytes(self, url: str) -> bytes:
        """The whole file; ``NotFoundError`` if it does not exist."""

    @abc.abstractmethod
    def download(self, url: str, dest: Path) -> int:
        """Write the file to ``dest`` (the caller owns atomicity); returns the byte count."""

    @abc.abstractmethod
    def size(self, url: str) -> int:
        """The file's size in bytes; ``NotFoundError`` if it does not exist."""

    def close(self) -> None:  # noqa: B027 - optional hook: most transports hold nothing
        """Release pooled connections."""
