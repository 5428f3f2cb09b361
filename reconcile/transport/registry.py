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
