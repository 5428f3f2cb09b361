"""The transport seam: one small interface, picked by URL scheme.

Every adapter maps its library's exceptions to ``TransportError`` / ``NotFoundError`` at the
edge, with the URL's credentials masked.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path


def join_url(base: str, *parts: str) -> str:
    """Append path components to a URL (no normalisation of ``..``: callers pass names)."""
    url = base.rstrip("/")
    for part in parts:
        url += "/" + part.strip("/")
    return url


# Called with the number of bytes just received, for progress displays.
ProgressCallback = Callable[[int], None]


class Transport(abc.ABC):
    """Reads files from one mirror location.

    ``bytes_received`` counts what actually crossed the wire (or was read from the
    filesystem), retries and resumed ranges included; the pool sums it per mirror.
    Errors: ``NotFoundError`` when the mirror answered that the file is not there,
    ``MirrorUnreachableError`` when the mirror did not answer at all, ``TransportError``
    for anything else; every message carries the URL with credentials masked.
    """

    bytes_received: int = 0

    @abc.abstractmethod
    def read_bytes(self, url: str) -> bytes:
        """The whole file; ``NotFoundError`` if it does not exist."""

    @abc.abstractmethod
    def download(self, url: str, dest: Path, *, progress: ProgressCallback | None = None) -> int:
        """Write the file to ``dest`` (the caller owns atomicity); returns the byte count.
        A transport that can resume an interrupted transfer does so before giving up."""

    def read_revalidated(self, url: str, local_copy: Path) -> bytes:
        """The file, using ``local_copy`` (and its validators, kept beside it) to avoid
        downloading it again when it has not changed. Transports without conditional
        requests simply read it."""
        return self.read_bytes(url)

    @abc.abstractmethod
    def size(self, url: str) -> int:
        """The file's size in bytes; ``NotFoundError`` if it does not exist."""

    def close(self) -> None:  # noqa: B027 - optional hook: most transports hold nothing
        """Release pooled connections."""
