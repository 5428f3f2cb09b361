"""Helpers for the cache tests: the fixture tarballs as real blobs, and downloads of them."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from conftest import SIGNED_CACHE

from reconcile.cache.roots import CacheRootConfig
from reconcile.cache.store import BlobCache
from reconcile.transport.file import FileTransport

HELLO_SHA = "ef1205a792c3b247df955a6c0a7ece622883c2ef5e0d9a65ad6630c2439fb393"
GREETLIB_SHA = "7411478146e45bbac005244078efa2c619aa390dd5589d745c14b3e9e7c15426"
GCC_RUNTIME_SHA = "0448526af2bad1701bc3b7e009f0890e47285e5c4c34da04ad21b7e45eb35fdf"
HELLO_LABEL = "hello-app@3.0/d7r6xmz"


def tarball(name: str) -> Path:
    """The fixture cache's tarball of ``name`` (hello-app, greetlib, gcc-runtime)."""
    (path,) = SIGNED_CACHE.glob(f"build_cache/*/*/{name}-*/*.spack")
    return path


def tarball_url(name: str, mirror: Path = SIGNED_CACHE) -> str:
    return (mirror / tarball(name).relative_to(SIGNED_CACHE)).as_uri()


def file_download(url: str) -> Callable[[Path], None]:
    """What the executor passes to ``store_download``: fetch ``url`` into the given file."""

    def download(dest: Path) -> None:
        FileTransport().download(url, dest)

    return download


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def root(path: Path, *prefixes: str) -> CacheRootConfig:
    return CacheRootConfig(path=path, prefixes=prefixes)


def store_fixture(cache: BlobCache, name: str, sha256: str, label: str = "") -> Path:
    url = tarball_url(name)
    stored = cache.store_download(url, sha256, label, file_download(url))
    assert stored is not None
    return stored
