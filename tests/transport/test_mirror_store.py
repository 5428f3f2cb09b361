"""The write seam: the same operations on a folder and on a bucket (a moto server)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto_harness import moto_s3

from reconcile.errors import ReconcileError
from reconcile.transport.s3 import S3Transport
from reconcile.transport.s3_store import S3MirrorStore
from reconcile.transport.store import LocalMirrorStore, MirrorStore


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MirrorStore]:
    if request.param == "local":
        yield LocalMirrorStore(tmp_path / "mirror")
        return
    with moto_s3(tmp_path / "aws") as s3:
        s3.create_bucket("store-tests")
        with pytest.MonkeyPatch.context() as env:
            for name, value in s3.env.items():
                env.setenv(name, value)
            transport = S3Transport(endpoint_url=s3.endpoint_url)
            try:
                yield S3MirrorStore(s3.url("store-tests", "some/prefix"), transport)
            finally:
                transport.close()


def test_put_read_list_link_delete(store: MirrorStore, tmp_path: Path) -> None:
    assert store.read_bytes("a/b.json") is None and not store.exists("a/b.json")
    store.put_bytes("a/b.json", b"{}")
    source = tmp_path / "source.bin"
    source.write_bytes(b"x" * 3_000_000)
    assert (
        store.put_file("blobs/sha256/ab/blob", source)
        == hashlib.sha256(source.read_bytes()).hexdigest()
    )
    store.link("names/blob-1.0", "../blobs/sha256/ab/blob")
    assert store.read_bytes("a/b.json") == b"{}"
    if isinstance(store, LocalMirrorStore):  # a symlink (reads never follow one)
        assert os.readlink(store.local_path("names/blob-1.0")) == "../blobs/sha256/ab/blob"
    else:  # a copy of what it names
        assert store.read_bytes("names/blob-1.0") == source.read_bytes()
    assert store.list("") == ["a/b.json", "blobs/sha256/ab/blob", "names/blob-1.0"]
    assert store.list("blobs") == ["blobs/sha256/ab/blob"]
    store.put_bytes("a/b.json", b"[]")  # replaced, not appended
    assert store.read_bytes("a/b.json") == b"[]"
    store.delete("a/b.json")
    store.delete("a/b.json")  # a missing key is not an error
    assert not store.exists("a/b.json")


@pytest.mark.parametrize("key", ["../outside", "/etc/passwd", "a//b", "a/./b", "", "a/.."])
def test_keys_outside_the_mirror_are_refused(store: MirrorStore, key: str) -> None:
    with pytest.raises(ReconcileError) as caught:
        store.put_bytes(key, b"x")
    assert caught.value.reference == "mirror-unwritable"


def test_a_link_leading_outside_the_mirror_is_refused(store: MirrorStore) -> None:
    with pytest.raises(ReconcileError):
        store.link("names/x", "../../../etc/passwd")


def test_a_local_store_never_writes_through_a_planted_symlink(tmp_path: Path) -> None:
    root, outside = tmp_path / "mirror", tmp_path / "victim"
    root.mkdir()
    outside.mkdir()
    (root / "build_cache").symlink_to(outside)
    store = LocalMirrorStore(root)
    with pytest.raises(ReconcileError) as caught:
        store.put_bytes("build_cache/index.json", b"{}")
    assert caught.value.reference == "link-in-root"
    with pytest.raises(ReconcileError):
        store.link("build_cache/x", "../y")
    assert list(outside.iterdir()) == []
