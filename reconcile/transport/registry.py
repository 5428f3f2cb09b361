"""Picks and pools the transport for each mirror, and keeps per-run mirror state.

One transport per mirror (so an HTTP mirror keeps one pooled session with its own
credentials); URLs outside every mirror (key files, local paths) get one per scheme. A
mirror that did not answer is remembered as unreachable for the rest of the run, so it costs
one timeout, not one per file.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence

import attrs

from reconcile.errors import MirrorUnreachableError, TransportError
from reconcile.limits import DEFAULT_LIMITS, Limits
from reconcile.manifest.model import ManifestFile
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr
from reconcile.transport.base import Transport
from reconcile.transport.bounds import Cap
from reconcile.transport.file import FileTransport, url_to_path
from reconcile.transport.store import LocalMirrorStore, MirrorStore
from reconcile.transport.urls import join_url, relative_to


@attrs.frozen(kw_only=True)
class MirrorEndpoint:
    """What a transport needs to know about the mirror it serves."""

    __repr__ = fields_repr

    name: str
    url: str  # full URL, credentials included if the manifest has them
    endpoint_url: str | None = None
    profile: str | None = None


def transport_for(
    url: str, endpoint: MirrorEndpoint | None = None, limits: Limits = DEFAULT_LIMITS
) -> Transport:
    scheme = urllib.parse.urlsplit(url).scheme
    transport: Transport
    if scheme == "file":
        transport = FileTransport()
    elif scheme in ("http", "https"):
        from reconcile.transport.http import HttpTransport

        base = endpoint.url if endpoint is not None else url
        transport = HttpTransport(
            base_url=base, mirror_name=endpoint.name if endpoint else None, limits=limits
        )
    elif scheme in ("oci", "oci+http"):
        from reconcile.transport.oci import OciTransport
        from reconcile.transport.oci_reference import parse_oci_object

        transport = OciTransport(
            mirror_url=endpoint.url
            if endpoint is not None
            else parse_oci_object(url).repository.mirror_url(),
            mirror_name=endpoint.name if endpoint else None,
            limits=limits,
        )
    elif scheme == "s3":
        from reconcile.transport.s3 import S3Transport

        transport = S3Transport(
            endpoint_url=endpoint.endpoint_url if endpoint else None,
            profile=endpoint.profile if endpoint else None,
        )
    else:
        raise TransportError(
            f"mirrors with scheme {scheme!r} are not supported: {mask_credentials(url)}",
            hint="use a plain path, or a file://, http://, https://, s3:// or oci:// URL",
        )
    transport.limits = limits
    return transport


class TransportPool:
    """The transports of one run, closed together at the end."""

    def __init__(
        self, mirrors: Sequence[MirrorEndpoint] = (), *, limits: Limits = DEFAULT_LIMITS
    ) -> None:
        self.limits = limits
        # longest URL first, so a mirror nested in another's URL space is found first
        self._mirrors = sorted(mirrors, key=lambda m: len(m.url), reverse=True)
        self._by_key: dict[str, Transport] = {}
        self._unreachable: dict[str, MirrorUnreachableError] = {}

    def mirror_for(self, url: str) -> MirrorEndpoint | None:
        for mirror in self._mirrors:
            if relative_to(url, mirror.url) is not None:
                return mirror
        return None

    def for_url(self, url: str) -> Transport:
        endpoint = self.mirror_for(url)
        if endpoint is not None:
            key = f"mirror:{endpoint.name}"
            failure = self._unreachable.get(endpoint.name)
            if failure is not None:
                raise MirrorUnreachableError(
                    f"mirror '{endpoint.name}' is skipped for the rest of this run: "
                    f"{failure.message}",
                    hint=failure.hint,
                )
        else:
            key = f"scheme:{urllib.parse.urlsplit(url).scheme}"
        if key not in self._by_key:
            self._by_key[key] = transport_for(url, endpoint, self.limits)
        return self._by_key[key]

    def read_bytes(self, url: str, *, cap: Cap | None = None) -> bytes:
        return self.for_url(url).read_bytes(url, cap=cap)

    def shown_url(self, mirror: str) -> str | None:
        """The mirror's URL as messages and records show it (credentials masked)."""
        endpoint = next((e for e in self._mirrors if e.name == mirror), None)
        return mask_credentials(endpoint.url) if endpoint is not None else None

    def unmask(self, mirror: str, url: str) -> str:
        """The real URL behind ``url`` as plans show it (credentials masked): a plan never
        holds a secret, so the executor puts the mirror's credentials back here."""
        for endpoint in self._mirrors:
            below = relative_to(url, mask_credentials(endpoint.url))
            if endpoint.name == mirror and below is not None:
                return join_url(endpoint.url, below) if below else endpoint.url
        return url

    def store_for(self, url: str) -> MirrorStore:
        """The write seam for the mirror at ``url`` (its real URL, credentials included):
        a folder for ``file://``, a bucket prefix for ``s3://`` (on the mirror's own client,
        so its endpoint_url and profile apply). HTTP mirrors are read-only."""
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme == "file":
            return LocalMirrorStore(url_to_path(url))
        if scheme == "s3":
            from reconcile.transport.s3 import S3Transport
            from reconcile.transport.s3_store import S3MirrorStore

            transport = self.for_url(url)
            assert isinstance(transport, S3Transport)
            return S3MirrorStore(url, transport)
        raise TransportError(
            f"cannot write into {mask_credentials(url)}: {scheme}:// mirrors are read-only to "
            "reconcile",
            hint="publish, sync and fill source mirrors in a folder (file://) or a bucket "
            "(s3://), and serve that over http if you like",
            reference="mirror-unwritable",
        )

    def mark_unreachable(self, mirror: str, error: MirrorUnreachableError) -> bool:
        """Remember that ``mirror`` did not answer; True the first time (to report once)."""
        first = mirror not in self._unreachable
        self._unreachable.setdefault(mirror, error)
        return first

    def unreachable(self) -> dict[str, MirrorUnreachableError]:
        return dict(self._unreachable)

    def bytes_by_mirror(self) -> dict[str, int]:
        """Bytes received so far from each mirror (local files outside mirrors excluded)."""
        return {
            key.removeprefix("mirror:"): transport.bytes_received
            for key, transport in self._by_key.items()
            if key.startswith("mirror:")
        }

    def close(self) -> None:
        for transport in self._by_key.values():
            transport.close()
        self._by_key.clear()

    def __enter__(self) -> TransportPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def endpoints_of(manifest_file: ManifestFile) -> list[MirrorEndpoint]:
    """The manifest's mirrors as endpoints (URLs resolved against the manifest's folder)."""
    return [
        MirrorEndpoint(
            name=m.name,
            url=manifest_file.mirror_url(m),
            endpoint_url=m.endpoint_url,
            profile=m.profile,
        )
        for m in manifest_file.manifest.mirrors
    ]
