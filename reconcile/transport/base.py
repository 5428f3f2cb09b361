"""The transport seam: one small interface, picked by URL scheme.

Every adapter maps its library's exceptions to ``TransportError`` / ``NotFoundError`` at the
edge, with the URL's credentials masked.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from reconcile.limits import DEFAULT_LIMITS, Limits
from reconcile.transport.bounds import Cap, metadata_cap
from reconcile.transport.urls import join_url as join_url  # where callers have found it

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
    # The manifest's [limits]: the pool sets them on every transport it makes.
    limits: Limits = DEFAULT_LIMITS

    @abc.abstractmethod
    def read_bytes(self, url: str, *, cap: Cap | None = None, expect_prefix: bytes = b"") -> bytes:
        """The whole file; ``NotFoundError`` if it does not exist. More than ``cap`` bytes
        (default: ``max_metadata_bytes``) is a ``TransportError`` as soon as it shows; with
        ``expect_prefix``, a file that starts otherwise is returned as far as it was read."""

    @abc.abstractmethod
    def download(
        self,
        url: str,
        dest: Path,
        *,
        progress: ProgressCallback | None = None,
        cap: Cap | None = None,
    ) -> int:
        """Write the file to ``dest`` (the caller owns atomicity); returns the byte count.
        A transport that can resume an interrupted transfer does so before giving up.
        ``cap`` (default: none) bounds the size, as in ``read_bytes``."""

    @abc.abstractmethod
    def download_into(
        self,
        url: str,
        sink: BinaryIO,
        *,
        offset: int = 0,
        progress: ProgressCallback | None = None,
        cap: Cap | None = None,
    ) -> int:
        """Write the file into ``sink``, an open file whose first ``offset`` bytes an earlier,
        interrupted run received: a transport that can ask for a range fetches only the rest
        (the caller hashes the whole file afterwards), the others start over. Returns the
        file's size; ``sink`` then holds exactly the file. ``cap`` as in ``download``."""

    def read_revalidated(self, url: str, local_copy: Path, *, cap: Cap | None = None) -> bytes:
        """The file, using ``local_copy`` (and its validators, kept beside it) to avoid
        downloading it again when it has not changed. Transports without conditional
        requests simply read it."""
        return self.read_bytes(url, cap=cap)

    def read_cap(self, cap: Cap | None) -> Cap:
        return cap if cap is not None else metadata_cap(self.limits)

    @abc.abstractmethod
    def size(self, url: str) -> int:
        """The file's size in bytes; ``NotFoundError`` if it does not exist."""

    def close(self) -> None:  # noqa: B027 - optional hook: most transports hold nothing
        """Release pooled connections."""
