"""Which cache root a blob goes to is decided by its URL alone: the first root whose prefixes
match it, and none when no root matches (such downloads are not kept at all)."""

from __future__ import annotations

from pathlib import Path

from cache_support import HELLO_SHA, file_download, root, tarball, tarball_url

from reconcile.cache.layout import blob_path
from reconcile.cache.store import BlobCache

PER_PR = "https://cache.example.org/pr-17/"
URL = tarball_url("hello-app")


def cache_for(tmp_path: Path) -> BlobCache:
    """A root for another URL space first, then one for the fixture mirror's URLs."""
    return BlobCache(
        [root(tmp_path / "per-pr", PER_PR), root(tmp_path / "mirror", URL.rsplit("/", 4)[0])]
    )


def test_a_download_is_kept_only_in_the_root_its_url_selects(tmp_path: Path) -> None:
    cache = cache_for(tmp_path)
    stored = cache.store_download(URL, HELLO_SHA, "hello-app", file_download(URL))
    assert stored == blob_path(tmp_path / "mirror", HELLO_SHA)
    assert cache.copies(HELLO_SHA) == [stored]


def test_a_verified_file_is_kept_only_in_the_root_its_url_selects(tmp_path: Path) -> None:
    cache = cache_for(tmp_path)
    stored = cache.store(tarball("hello-app"), HELLO_SHA, URL, "hello-app")
    assert stored == blob_path(tmp_path / "mirror", HELLO_SHA)
    assert not (tmp_path / "per-pr").exists()


def test_a_url_no_root_matches_is_not_kept(tmp_path: Path) -> None:
    cache = BlobCache([root(tmp_path / "per-pr", PER_PR)])
    assert cache.store(tarball("hello-app"), HELLO_SHA, URL, "hello-app") is None
    assert cache.store_download(URL, HELLO_SHA, "hello-app", file_download(URL)) is None
    assert cache.index_copy(URL) is None
    assert not (tmp_path / "per-pr").exists()


def test_an_index_copy_lives_in_the_root_its_url_selects(tmp_path: Path) -> None:
    copy = cache_for(tmp_path).index_copy(URL)
    assert copy is not None
    assert copy.is_relative_to(tmp_path / "mirror")
