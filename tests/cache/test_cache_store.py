"""The blob store on real fixture tarballs: layout, records, lookups across roots, checks
on every use, eviction, and roots that cannot be written."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cache_support import (
    GCC_RUNTIME_SHA,
    GREETLIB_SHA,
    HELLO_LABEL,
    HELLO_SHA,
    file_download,
    root,
    sha256_hex,
    store_fixture,
    tarball,
    tarball_url,
)

from reconcile.cache.scan import scan_root
from reconcile.cache.store import BlobCache
from reconcile.errors import VerificationError


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def test_a_download_becomes_a_blob_with_its_record(tmp_path: Path) -> None:
    clock = Clock()
    cache = BlobCache([root(tmp_path / "cache")], clock=clock)
    url = tarball_url("hello-app")
    blob = cache.store_download(url, HELLO_SHA, HELLO_LABEL, file_download(url))
    assert blob == tmp_path / "cache" / "blobs" / "sha256" / HELLO_SHA[:2] / HELLO_SHA
    assert blob.read_bytes() == tarball("hello-app").read_bytes()
    assert oct(blob.stat().st_mode & 0o777) == oct(0o644)  # readable by every job sharing it
    record = json.loads(blob.with_name(HELLO_SHA + ".json").read_text())
    assert record == {
        "format": 1,
        "sha256": HELLO_SHA,
        "size": 9861,
        "urls": [url],
        "specs": [HELLO_LABEL],
        "stored_at": "2024-05-01T12:00:00+00:00",
        "last_used": "2024-05-01T12:00:00+00:00",
    }
    # Nothing else is left in the folder: the temporary file was renamed.
    assert sorted(p.name for p in blob.parent.iterdir()) == [HELLO_SHA, HELLO_SHA + ".json"]


def test_lookup_and_verify_then_note_use_updates_the_record(tmp_path: Path) -> None:
    clock = Clock()
    cache = BlobCache([root(tmp_path / "cache")], clock=clock)
    assert cache.lookup(HELLO_SHA) is None
    blob = store_fixture(cache, "hello-app", HELLO_SHA, HELLO_LABEL)
    assert cache.lookup(HELLO_SHA) == blob
    assert cache.verify(blob, HELLO_SHA)
    assert not cache.verify(blob, GREETLIB_SHA)
    clock.advance(hours=3)
    cache.note_use(HELLO_SHA, "https://ci:s3cret@mirror.example.org/pr-1/x.spack", "other@1/abc")
    (entry,) = cache.entries()
    assert entry.last_used == clock.now
    assert entry.stored_at == clock.now - timedelta(hours=3)
    assert entry.specs == (HELLO_LABEL, "other@1/abc")
    # Credentials of a mirror URL are never written into a shared cache root.
    assert entry.urls == (tarball_url("hello-app"), "https://mirror.example.org/pr-1/x.spack")
    assert "s3cret" not in blob.with_name(HELLO_SHA + ".json").read_text()


def test_a_blob_in_the_shared_root_serves_a_url_whose_write_root_is_per_pr(
    tmp_path: Path,
) -> None:
    pr_url = "https://mirror.example.org/pr-1234/build_cache/hello.spack"
    per_pr = root(tmp_path / "pr-1234", "https://mirror.example.org/pr-1234/")
    shared = root(tmp_path / "shared")
    # An earlier job of another pull request filled the shared root.
    store_fixture(BlobCache([shared]), "hello-app", HELLO_SHA, HELLO_LABEL)
    cache = BlobCache([per_pr, shared])
    assert cache.root_for(pr_url) == per_pr
    hit = cache.lookup(HELLO_SHA)
    assert hit is not None
    assert hit.is_relative_to(shared.path)
    assert cache.verify(hit, HELLO_SHA)
    assert not per_pr.path.exists()  # nothing was downloaded or written for the hit


def test_lookup_searches_roots_in_order_and_copies_lists_them_all(tmp_path: Path) -> None:
    first, second = root(tmp_path / "a"), root(tmp_path / "b")
    store_fixture(BlobCache([second]), "greetlib", GREETLIB_SHA)
    cache = BlobCache([first, second])
    assert cache.lookup(GREETLIB_SHA) == second.path / "blobs/sha256/74" / GREETLIB_SHA
    store_fixture(BlobCache([first]), "greetlib", GREETLIB_SHA)
    assert cache.lookup(GREETLIB_SHA) == first.path / "blobs/sha256/74" / GREETLIB_SHA
    assert [p.parents[3] for p in cache.copies(GREETLIB_SHA)] == [first.path, second.path]


def test_a_download_with_the_wrong_checksum_never_becomes_a_blob(tmp_path: Path) -> None:
    cache = BlobCache([root(tmp_path / "cache")])
    url = tarball_url("greetlib")  # its bytes are not hello-app's
    with pytest.raises(VerificationError) as caught:
        cache.store_download(url, HELLO_SHA, HELLO_LABEL, file_download(url))
    assert caught.value.reference == "checksum-mismatch"
    assert f"has sha256 {GREETLIB_SHA}, expected {HELLO_SHA}" in caught.value.message
    assert cache.lookup(HELLO_SHA) is None
    assert list((tmp_path / "cache").rglob("*")) == [
        tmp_path / "cache" / "blobs",
        tmp_path / "cache" / "blobs" / "sha256",
        tmp_path / "cache" / "blobs" / "sha256" / HELLO_SHA[:2],
    ]


def test_open_for_write_keeps_only_what_is_committed(tmp_path: Path) -> None:
    cache = BlobCache([root(tmp_path / "cache")])
    url = tarball_url("hello-app")
    data = tarball("hello-app").read_bytes()
    with cache.open_for_write(url, HELLO_SHA, spec=HELLO_LABEL) as pending:
        pending.path.write_bytes(data[:100])
        assert cache.lookup(HELLO_SHA) is None  # a partial file is never visible as a blob
    assert not pending.path.exists()
    assert cache.lookup(HELLO_SHA) is None
    with cache.open_for_write(url, HELLO_SHA) as pending:
        pending.path.write_bytes(data)
        blob = pending.commit()
    assert cache.lookup(HELLO_SHA) == blob
    with pytest.raises(RuntimeError), cache.open_for_write(url, GREETLIB_SHA) as pending:
        pending.path.write_bytes(b"half")
        raise RuntimeError("the download failed")
    assert not pending.path.exists()
    assert cache.lookup(GREETLIB_SHA) is None


def test_open_for_write_needs_a_matching_root(tmp_path: Path) -> None:
    cache = BlobCache([root(tmp_path / "pr", "https://h/pr/")])
    with pytest.raises(ValueError, match="no cache root matches https://h/other/x"):
        cache.open_for_write("https://user:pw@h/other/x", HELLO_SHA).__enter__()
    assert cache.store_download("https://h/other/x", HELLO_SHA, "", file_download("x")) is None


def test_store_copies_a_private_download_into_the_root(tmp_path: Path) -> None:
    """The safe order for shared roots: download and verify in a private folder, unpack
    from there, and let the cache keep a copy: never a hard link, through which a job
    writing the cached file would change the private one."""
    private = tmp_path / "work" / "gcc-runtime.spack"
    private.parent.mkdir()
    private.write_bytes(tarball("gcc-runtime").read_bytes())
    cache = BlobCache([root(tmp_path / "cache")])
    blob = cache.store(private, GCC_RUNTIME_SHA, "https://h/gcc.spack", "gcc-runtime@12.2.0")
    assert blob is not None
    assert blob.stat().st_ino != private.stat().st_ino
    private.unlink()  # the executor cleans its work folder; the blob stays
    assert cache.verify(blob, GCC_RUNTIME_SHA)
    (entry,) = cache.entries()
    assert entry.specs == ("gcc-runtime@12.2.0",)


def test_store_copies_across_filesystems(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second filesystem at /dev/shm")
    with tempfile.TemporaryDirectory(dir=shm) as other:
        private = Path(other) / "greetlib.spack"
        private.write_bytes(tarball("greetlib").read_bytes())
        cache = BlobCache([root(tmp_path / "cache")])
        blob = cache.store(private, GREETLIB_SHA, "https://h/greetlib.spack")
        assert blob is not None
        assert blob.stat().st_ino != private.stat().st_ino
        assert cache.verify(blob, GREETLIB_SHA)


def test_store_checks_the_file_again_before_keeping_it(tmp_path: Path) -> None:
    private = tmp_path / "hello.spack"
    private.write_bytes(tarball("greetlib").read_bytes())  # not hello-app's bytes
    cache = BlobCache([root(tmp_path / "cache")])
    with pytest.raises(VerificationError):
        cache.store(private, HELLO_SHA, "https://h/hello.spack")
    assert private.exists()
    assert cache.lookup(HELLO_SHA) is None
    assert scan_root(root(tmp_path / "cache")).leftovers == ()


def test_a_corrupt_blob_is_detected_and_evicted(tmp_path: Path) -> None:
    cache = BlobCache([root(tmp_path / "cache")])
    blob = store_fixture(cache, "hello-app", HELLO_SHA, HELLO_LABEL)
    with blob.open("r+b") as stream:  # one flipped byte in the middle
        stream.seek(5000)
        byte = stream.read(1)
        stream.seek(5000)
        stream.write(bytes([byte[0] ^ 0xFF]))
    assert cache.lookup(HELLO_SHA) == blob
    assert not cache.verify(blob, HELLO_SHA)
    cache.evict(blob)
    assert not blob.exists()
    assert not blob.with_name(HELLO_SHA + ".json").exists()
    assert cache.lookup(HELLO_SHA) is None
    assert cache.entries() == []


def test_a_truncated_blob_fails_verification(tmp_path: Path) -> None:
    cache = BlobCache([root(tmp_path / "cache")])
    blob = store_fixture(cache, "greetlib", GREETLIB_SHA)
    os.truncate(blob, 100)
    assert not cache.verify(blob, GREETLIB_SHA)


def test_checkout_makes_a_private_copy_that_a_later_swap_cannot_change(tmp_path: Path) -> None:
    cache = BlobCache([root(tmp_path / "cache")])
    blob = store_fixture(cache, "hello-app", HELLO_SHA, HELLO_LABEL)
    dest = tmp_path / "staging" / "hello.spack"
    dest.parent.mkdir()
    assert cache.checkout(HELLO_SHA, dest, url="https://h/x", spec=HELLO_LABEL)
    assert dest.stat().st_ino != blob.stat().st_ino
    assert dest.stat().st_mode & 0o777 == 0o600  # nobody else can write the checked copy
    with blob.open("r+b") as stream:  # another job rewrites the cached file in place
        stream.write(b"not the tarball")
    assert sha256_hex(dest.read_bytes()) == HELLO_SHA
    # Another job swaps the blob by rename after the check: the checked copy is unchanged.
    evil = blob.with_name("evil")
    evil.write_bytes(b"not the tarball")
    evil.replace(blob)
    assert sha256_hex(dest.read_bytes()) == HELLO_SHA
    # The next checkout meets the swapped blob, evicts it, and finds no good copy.
    again = tmp_path / "staging" / "again.spack"
    assert not cache.checkout(HELLO_SHA, again)
    assert not again.exists()
    assert cache.lookup(HELLO_SHA) is None


def test_checkout_copies_across_filesystems(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second filesystem at /dev/shm")
    cache = BlobCache([root(tmp_path / "cache")])
    blob = store_fixture(cache, "greetlib", GREETLIB_SHA)
    with tempfile.TemporaryDirectory(dir=shm) as other:
        dest = Path(other) / "greetlib.spack"
        assert cache.checkout(GREETLIB_SHA, dest)
        assert dest.stat().st_ino != blob.stat().st_ino
        assert sha256_hex(dest.read_bytes()) == GREETLIB_SHA


def test_a_checkout_that_cannot_write_its_destination_keeps_the_blob(tmp_path: Path) -> None:
    cache = BlobCache([root(tmp_path / "cache")])
    blob = store_fixture(cache, "greetlib", GREETLIB_SHA)
    with pytest.raises(FileNotFoundError):
        cache.checkout(GREETLIB_SHA, tmp_path / "no-such-folder" / "greetlib.spack")
    assert cache.verify(blob, GREETLIB_SHA)


def test_checkout_falls_back_to_a_good_copy_in_a_later_root(tmp_path: Path) -> None:
    first, second = root(tmp_path / "a"), root(tmp_path / "b")
    bad = store_fixture(BlobCache([first]), "greetlib", GREETLIB_SHA)
    bad.write_bytes(b"damaged")
    store_fixture(BlobCache([second]), "greetlib", GREETLIB_SHA)
    cache = BlobCache([first, second])
    dest = tmp_path / "greetlib.spack"
    assert cache.checkout(GREETLIB_SHA, dest)
    assert sha256_hex(dest.read_bytes()) == GREETLIB_SHA
    assert not bad.exists()


def test_a_symlink_or_fifo_under_a_blob_name_is_never_read_through(tmp_path: Path) -> None:
    cache = BlobCache([root(tmp_path / "cache")])
    blob = store_fixture(cache, "hello-app", HELLO_SHA)
    # Someone sharing the root replaces the blob by a symlink to a file with the right bytes.
    elsewhere = tmp_path / "elsewhere.spack"
    elsewhere.write_bytes(tarball("hello-app").read_bytes())
    blob.unlink()
    blob.symlink_to(elsewhere)
    assert cache.lookup(HELLO_SHA) == blob
    assert not cache.verify(blob, HELLO_SHA)  # not a regular file: refused, not followed
    assert not cache.checkout(HELLO_SHA, tmp_path / "dest")
    assert not blob.is_symlink()
    assert elsewhere.exists()
    # A FIFO would block a reader forever; it is refused at once.
    fifo = blob.parents[1] / GREETLIB_SHA[:2] / GREETLIB_SHA
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    assert cache.lookup(GREETLIB_SHA) == fifo
    assert not cache.verify(fifo, GREETLIB_SHA)
    assert not cache.checkout(GREETLIB_SHA, tmp_path / "dest")
    assert not fifo.exists()


def test_evict_refuses_paths_outside_the_roots(tmp_path: Path) -> None:
    cache = BlobCache([root(tmp_path / "cache")])
    victim = tmp_path / HELLO_SHA
    victim.write_bytes(b"not in a root")
    with pytest.raises(ValueError, match="not a blob of these cache roots"):
        cache.evict(victim)
    assert victim.exists()


@pytest.mark.parametrize("sha", ["../../etc/passwd", HELLO_SHA.upper(), HELLO_SHA[:-1], ""])
def test_checksums_that_are_not_sha256_never_become_paths(tmp_path: Path, sha: str) -> None:
    cache = BlobCache([root(tmp_path / "cache")])
    with pytest.raises(ValueError, match="not a sha256 hex digest"):
        cache.lookup(sha)
    with pytest.raises(ValueError, match="not a sha256 hex digest"):
        cache.store_download("https://h/x", sha, "", file_download("x"))


def test_an_unwritable_root_is_warned_about_once_and_skipped(tmp_path: Path) -> None:
    # A file where the root should be: fails for root too, unlike a chmod.
    blocked = tmp_path / "blocked"
    blocked.write_text("not a folder")
    warnings: list[str] = []
    cache = BlobCache([root(blocked)], warn=warnings.append)
    url = tarball_url("hello-app")
    calls: list[Path] = []
    assert cache.store_download(url, HELLO_SHA, HELLO_LABEL, calls.append) is None
    assert cache.store_download(url, GREETLIB_SHA, "", calls.append) is None
    assert calls == []  # the caller downloads elsewhere
    assert len(warnings) == 1
    assert warnings[0].startswith(f"cache root {blocked} cannot be written")
    assert cache.index_copy("https://h/build_cache/index.json") is None


def test_index_copies_live_in_the_matching_root(tmp_path: Path) -> None:
    per_pr = root(tmp_path / "pr", "https://h/pr/")
    shared = root(tmp_path / "shared", "s3://bucket/")
    cache = BlobCache([per_pr, shared])
    copy = cache.index_copy("https://ci:token@h/pr/build_cache/index.json")
    assert copy is not None
    assert copy.is_relative_to(per_pr.path / "indexes")
    assert copy.name == "index.json"
    # The same URL with or without credentials shares one copy; another URL has its own.
    assert cache.index_copy("https://h/pr/build_cache/index.json") == copy
    other = cache.index_copy("s3://bucket/build_cache/index.json")
    assert other is not None
    assert other.is_relative_to(shared.path)
    assert cache.index_copy("https://elsewhere/build_cache/index.json") is None
    assert not per_pr.path.exists()  # asking where is not writing


def test_a_blob_without_a_record_is_still_listed_and_used(tmp_path: Path) -> None:
    cache = BlobCache([root(tmp_path / "cache")])
    blob = store_fixture(cache, "greetlib", GREETLIB_SHA)
    record = blob.with_name(GREETLIB_SHA + ".json")
    record.write_text("{not json")  # damaged, as if a job died while writing it by hand
    (entry,) = cache.entries()
    assert not entry.recorded
    assert entry.size == 9708
    assert entry.last_used == datetime.fromtimestamp(blob.stat().st_mtime, UTC)
    cache.note_use(GREETLIB_SHA, "https://h/g.spack", "greetlib@2.1/yrhiacw")
    (entry,) = cache.entries()
    assert entry.recorded
    assert entry.specs == ("greetlib@2.1/yrhiacw",)
