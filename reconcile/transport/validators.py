"""HTTP validators (ETag, Last-Modified) of a local copy, kept in a file beside it.

``<copy>.meta.json`` records which URL the copy came from, its validators, and its size and
sha256: a copy that was changed or cut short on disk no longer matches its record, and is
then fetched again instead of being revalidated (a 304 would vouch for bytes the server
never sent).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import attrs

from reconcile.atomic_write import atomic_write_bytes
from reconcile.reprs import fields_repr


@attrs.frozen(kw_only=True)
class Validators:
    __repr__ = fields_repr

    etag: str | None = None
    last_modified: str | None = None

    def conditional_headers(self) -> dict[str, str]:
        headers = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers

    def if_range(self) -> str | None:
        """The value for ``If-Range``: only a strong ETag or a date may be used there."""
        if self.etag and not self.etag.startswith("W/"):
            return self.etag
        return self.last_modified

    @property
    def empty(self) -> bool:
        return not self.etag and not self.last_modified


@attrs.frozen(kw_only=True)
class StoredCopy:
    __repr__ = fields_repr

    url: str  # without credentials
    validators: Validators
    size: int
    sha256: str


def meta_path(local_copy: Path) -> Path:
    return local_copy.with_name(local_copy.name + ".meta.json")


def load_valid_copy(local_copy: Path, url: str) -> tuple[StoredCopy, bytes] | None:
    """The stored record and the copy's bytes, when both exist and still agree."""
    try:
        raw = json.loads(meta_path(local_copy).read_text(encoding="utf-8"))
        data = local_copy.read_bytes()
        stored = StoredCopy(
            url=str(raw["url"]),
            validators=Validators(etag=raw.get("etag"), last_modified=raw.get("last_modified")),
            size=int(raw["size"]),
            sha256=str(raw["sha256"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or unreadable: fetch it whole, and rewrite both
    if stored.url != url or stored.size != len(data):
        return None
    if hashlib.sha256(data).hexdigest() != stored.sha256:
        return None
    return stored, data


def save_copy(local_copy: Path, url: str, data: bytes, validators: Validators) -> None:
    """Replace the copy, then its record; each write is atomic. A crash in between leaves a
    record whose sha256 no longer matches, which only costs one full download."""
    atomic_write_bytes(local_copy, data)
    record = {
        "url": url,
        "etag": validators.etag,
        "last_modified": validators.last_modified,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    atomic_write_bytes(meta_path(local_copy), json.dumps(record, indent=2).encode() + b"\n")
