"""Cache roots and the URLs they keep: the first root whose prefix matches a URL is where a
download from it is written; a root without prefixes matches every URL.

A prefix matches a URL that is the prefix itself or lies below it, by whole path segments
(``https://h/pr-12`` does not match ``https://h/pr-1234/x``). Credentials, query strings,
the case of the scheme and host, and percent-encoding are left out of the comparison, so
that a prefix written without ``user:token@`` (or with the mirror's ``?token=...``) still
matches the URLs of a mirror declared with it.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from pathlib import Path

import attrs

from reconcile.manifest.model import ManifestFile
from reconcile.redact import mask_credentials
from reconcile.reprs import fields_repr
from reconcile.transport.urls import split_query


@attrs.frozen(kw_only=True)
class CacheRootConfig:
    __repr__ = fields_repr

    path: Path  # absolute
    prefixes: tuple[str, ...] = ()  # absolute URLs; a path prefix is given as its file:// URL

    @property
    def matches_every_url(self) -> bool:
        return not self.prefixes

    def matches(self, url: str) -> bool:
        return self.matches_every_url or any(prefix_matches(p, url) for p in self.prefixes)


def strip_credentials(url: str) -> str:
    """``https://user:token@host/x?sig=abc`` -> ``https://host/x?sig=***``: what a cache may
    write down (query-string values are often tokens too)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return mask_credentials(url)
    if "@" in parts.netloc:
        host = parts.netloc.rpartition("@")[2]
        url = urllib.parse.urlunsplit(parts._replace(netloc=host))
    return mask_credentials(url)


def url_key(url: str) -> str:
    """The form in which URLs and prefixes are compared (see the module docstring)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:  # a malformed URL is compared as written
        return url
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6: urlsplit drops the brackets
        host = f"[{host}]"
    if parts.scheme.lower() == "file" and host == "localhost":
        host = ""
    if port is not None:
        host += f":{port}"
    path = urllib.parse.unquote(parts.path)
    key = f"{parts.scheme.lower()}://{host}{path}"
    if parts.query:
        key += f"?{parts.query}"
    return key


def prefix_matches(prefix: str, url: str) -> bool:
    # a query is left out too: a mirror URL's query rides on every URL below it, after the
    # path (``transport/urls.py``), so the mirror's URL is a prefix of theirs without it
    prefix_key, key = url_key(split_query(prefix)[0]), url_key(split_query(url)[0])
    if key == prefix_key or prefix_key.endswith("/"):
        return key.startswith(prefix_key)
    return key.startswith(prefix_key + "/")


def select_root(roots: Sequence[CacheRootConfig], url: str) -> CacheRootConfig | None:
    """The first root, in manifest order, that matches ``url``; None: the URL is not cached."""
    for root in roots:
        if root.matches(url):
            return root
    return None


def _prefix_url(manifest_file: ManifestFile, prefix: str) -> str:
    if "://" in prefix:
        return prefix
    url = manifest_file.resolve(prefix).as_uri()
    return url + "/" if prefix.endswith("/") else url


def cache_roots_of(manifest_file: ManifestFile) -> tuple[CacheRootConfig, ...]:
    """The manifest's ``[[cache]]`` tables with paths resolved against its folder.

    A prefix written as a path (``/shared/mirror``, ``./mirrors/local``) becomes the
    ``file://`` URL of that folder, which is how ``ManifestFile.mirror_url`` names a mirror
    declared by path.
    """
    return tuple(
        CacheRootConfig(
            path=manifest_file.resolve(cache.root),
            prefixes=tuple(_prefix_url(manifest_file, prefix) for prefix in cache.prefixes),
        )
        for cache in manifest_file.manifest.caches
    )
