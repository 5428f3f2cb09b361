"""``BlobCache.read_verified``: a cached blob read once into memory and hashed there (the
bytes unpacked are the bytes hashed), with the same refusals as a private checkout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cache_support import GREETLIB_SHA, HELLO_LABEL, HELLO_SHA, root, store_fixture, tarball

from reconcile.cache.store import BlobCache

BIG = 64 << 20


def test_a_good_blob_is_read_once_and_its_use_recorded(tmp_path: Path) -> None:
    cache = BlobCache([root(tmp_path / "cache")])
    blob = store_fixture(cache, "hello-app", HELLO_SHA, HELLO_LABEL)
    data = cache.read_verified(HELLO_SHA, max_bytes=BIG, url="https://h/x", spec=HELLO_LABEL)
    assert data == tarball("hello-app").read_bytes()
    record = json.loads(blob.with_name(HELLO_SHA + ".json").read_text())
    assert HELLO_LABEL in json.dumps(record)
    # what was returned cannot change any more: another job rewriting the blob changes nothing
    blob.write_bytes(b"not the tarball")
    assert data == tarball("hello-app").read_bytes()


def test_a_corrupt_blob_is_evicted_and_a_good_copy_in_a_later_root_used(tmp_path: Path) -> None:
    first, second = root(tmp_path / "a"), root(tmp_path / "b")
    bad = store_fixture(BlobCache([first]), "greetlib", GREETLIB_SHA)
    with bad.open("r+b") as stream:
        stream.seek(100)
        stream.write(b"\xff")
    store_fixture(BlobCache([second]), "greetlib", GREETLIB_SHA)
    cache = BlobCache([first, second])
    assert cache.read_verified(GREETLIB_SHA, max_bytes=BIG) == tarball("greetlib").read_bytes()
    assert not bad.exists()


def test_no_good_copy_is_none_and_every_bad_one_evicted(tmp_path: Path) -> None:
    cache = BlobCache([root(tmp_path / "cache")])
    blob = store_fixture(cache, "greetlib", GREETLIB_SHA)
    os.truncate(blob, 100)
    assert cache.read_verified(GREETLIB_SHA, max_bytes=BIG) is None
    assert not blob.exists()


def test_a_blob_over_the_limit_is_left_to_a_checkout_and_kept(tmp_path: Path) -> None:
    cache = BlobCache([root(tmp_path / "cache")])
    blob = store_fixture(cache, "hello-app", HELLO_SHA)
    assert cache.read_verified(HELLO_SHA, max_bytes=blob.stat().st_size - 1) is None
    assert cache.verify(blob, HELLO_SHA)  # not evicted: it is only large
    assert cache.read_verified(HELLO_SHA, max_bytes=blob.stat().st_size) is not None


def test_a_symlink_or_fifo_under_a_blob_name_is_never_read_through(tmp_path: Path) -> None:
    cache = BlobCache([root(tmp_path / "cache")])
    blob = store_fixture(cache, "hello-app", HELLO_SHA)
    elsewhere = tmp_path / "elsewhere.spack"
    elsewhere.write_bytes(tarball("hello-app").read_bytes())  # the right bytes, elsewhere
    blob.unlink()
    blob.symlink_to(elsewhere)
    assert cache.read_verified(HELLO_SHA, max_bytes=BIG) is None
    assert not blob.is_symlink() and elsewhere.exists()
    fifo = blob.parents[1] / GREETLIB_SHA[:2] / GREETLIB_SHA
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)  # would block a reader for ever
    assert cache.read_verified(GREETLIB_SHA, max_bytes=BIG) is None
    assert not fifo.exists()


def test_a_use_is_recorded_without_fsync_and_a_blob_is_stored_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = BlobCache([root(tmp_path / "cache")])
    synced: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    blob = store_fixture(cache, "hello-app", HELLO_SHA)
    assert synced  # the blob itself is durable before it is used
    synced.clear()
    assert cache.read_verified(HELLO_SHA, max_bytes=BIG, url="https://h/x", spec=HELLO_LABEL)
    assert synced == []  # bookkeeping of a use: atomic, not fsynced
    assert HELLO_LABEL in blob.with_name(HELLO_SHA + ".json").read_text()
