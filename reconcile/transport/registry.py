"""Picks the transport for a URL by its scheme."""

from __future__ import annotations

import urllib.parse

from reconcile.errors import TransportError
from reconcile.transport.base import Transport, mask_credentials
from reconcile.transport.file import FileTransport


def transport_for(url: str) -> Transport:
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme == "file":
        return FileTransport()
    raise TransportError(
        f"mirrors with scheme {scheme!r} are not supported yet: {mask_credentials(url)}",
        hint="use a file:// URL or a plain path",
    )


class TransportPool:
    """One transport per scheme for a run, closed together at the end."""

    def __init__(self) -> None:
        self._by_scheme: dict[str, Transport] = {}

    def for_url(self, url: str) -> Transport:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in self._by_scheme:
            self._by_scheme[scheme] = transport_for(url)
        return self._by_scheme[scheme]

    def read_bytes(self, url: str) -> bytes:
        return self.for_url(url).read_bytes(url)

    def close(self) -> None:
        for transport in self._by_scheme.values():
            transport.close()
        self._by_scheme.clear()

    def __enter__(self) -> TransportPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
