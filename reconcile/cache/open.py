"""The manifest's cache roots as a blob store for one run (None when it declares none)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from reconcile.cache.roots import cache_roots_of
from reconcile.manifest.model import ManifestFile

if TYPE_CHECKING:
    from reconcile.cache.store import BlobCache, Warn


def _to_stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def open_blob_cache(manifest_file: ManifestFile, *, warn: Warn | None = None) -> BlobCache | None:
    """``warn`` receives what the cache could not do (a root it cannot write, a bad blob it
    cannot remove); by default it is printed on stderr, so that it never goes unnoticed."""
    roots = cache_roots_of(manifest_file)
    if not roots:
        return None
    from reconcile.cache.store import BlobCache  # the store's code only for a manifest with roots

    return BlobCache(roots, warn=warn if warn is not None else _to_stderr)
