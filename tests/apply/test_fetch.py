"""Obtaining a tarball (apply/fetch.py) from local mirrors and a cache root: nothing but bytes
whose sha256 is the signed value ever comes back, and what comes back is a private copy."""

from __future__ import annotations

import hashlib
import shutil
import stat
from pathlib import Path

import attrs
import pytest
from conftest import SIGNED_CACHE

from reconcile.apply import fetch
from reconcile.apply.fetch import Obtained, keep_in_cache, obtain_tarball
from reconcile.cache.layout import blob_path
from reconcile.cache.roots import CacheRootConfig
from reconcile.cache.store import BlobCache
from reconcile.errors import TransportError, VerificationError
from reconcile.plan.model import InstallAction
from reconcile.transport.registry import TransportPool

(TARBALL,) = SIGNED_CACHE.glob("build_cache/*/*/hello-app-*/*.spack")
RELATIVE = TARBALL.relative_to(SIGNED_CACHE)
GOOD = TARBALL.read_bytes()
SHA = hashlib.sha256(GOOD).hexdigest()
HASH = "d7r6xmzoqurk6flnbcq6ygnn57fqrl35"


@attrs.define
class Recorder:
    """A reporter that keeps what it is told."""

    events: list[str] = attrs.field(factory=list)
    finished: list[tuple[str, str]] = attrs.field(factory=list)

    def download_started(self, label: str, total: int, *, source: str) -> None:
        pass

    def download_progress(self, label: str, received: int) -> None:
        pass

    def download_finished(self, label: str, *, source: str, mirror: str) -> None:
        self.finished.append((source, mirror))

    def event(self, text: str) -> None:
        self.events.append(text)


def mirror(tmp_path: Path, name: str, content: bytes | None = GOOD) -> str:
    """A local mirror holding ``content`` as hello-app's tarball (nothing when None)."""
    root = tmp_path / name
    if content is not None:
        (root / RELATIVE).parent.mkdir(parents=True)
        (root / RELATIVE).write_bytes(content)
    return (root / RELATIVE).as_uri()


def action(url: str, *alternates: tuple[str, str]) -> InstallAction:
    return InstallAction(
        hash=HASH,
        name="hello-app",
        version="3.0",
        prefix="/opt/sw/hello-app",
        mirror="a",
        mirror_url="file:///a",
        spec_url="file:///a/spec.json.sig",
        tarball_url=url,
        tarball_sha256=SHA,
        tarball_bytes=len(GOOD),
        signer=None,
        reason="not installed",
        dependencies=(),
        allowed_link_targets=(),
        externals={},
        alternates=alternates,
        spec={},
    )


def obtain(
    tmp_path: Path, planned: InstallAction, cache: BlobCache | None = None
) -> tuple[Obtained, Recorder]:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    recorder = Recorder()
    return obtain_tarball(planned, work, TransportPool(), cache, recorder), recorder


def cache_with(tmp_path: Path, content: bytes | None) -> tuple[BlobCache, Path]:
    cache = BlobCache([CacheRootConfig(path=tmp_path / "cache", prefixes=())])
    blob = blob_path(tmp_path / "cache", SHA)
    if content is not None:
        blob.parent.mkdir(parents=True)
        blob.write_bytes(content)
    return cache, blob


def test_a_download_is_verified_and_kept_private(tmp_path: Path) -> None:
    got, recorder = obtain(tmp_path, action(mirror(tmp_path, "a")))
    assert got.path.read_bytes() == GOOD
    assert (got.mirror, got.from_cache, got.downloaded) == ("a", False, len(GOOD))
    assert stat.S_IMODE(got.path.stat().st_mode) == 0o600
    assert got.path.parent == tmp_path / "work"
    assert recorder.finished == [("mirror", "a")]


def test_a_tarball_that_differs_from_the_signed_checksum_is_refused_and_removed(
    tmp_path: Path,
) -> None:
    bad = GOOD[:-1] + bytes([GOOD[-1] ^ 1])
    url = mirror(tmp_path, "a", bad)
    with pytest.raises(VerificationError) as refused:
        obtain(tmp_path, action(url))
    assert refused.value.reference == "checksum-mismatch"
    assert refused.value.message.startswith("tarball of hello-app@3.0/d7r6xmz from mirror 'a' ")
    assert refused.value.message.endswith(f"({url})")
    assert hashlib.sha256(bad).hexdigest() in refused.value.message
    assert f"expected {SHA}" in refused.value.message
    assert list((tmp_path / "work").iterdir()) == []


def test_a_bad_copy_on_one_mirror_is_replaced_by_a_good_one_from_the_next(
    tmp_path: Path,
) -> None:
    planned = action(mirror(tmp_path, "a", b"not the tarball"), ("b", mirror(tmp_path, "b")))
    got, recorder = obtain(tmp_path, planned)
    assert (got.mirror, got.path.read_bytes()) == ("b", GOOD)
    assert [e for e in recorder.events if e.startswith("rejected hello-app@3.0/d7r6xmz")]
    assert recorder.finished == [("mirror", "b")]


def test_bad_copies_everywhere_fail_and_name_every_mirror(tmp_path: Path) -> None:
    planned = action(mirror(tmp_path, "a", b"bad"), ("b", mirror(tmp_path, "b", b"worse")))
    with pytest.raises(TransportError) as failed:
        obtain(tmp_path, planned)
    assert failed.value.reference == "tarball-unavailable"
    assert "mirror 'a': tarball of" in failed.value.message
    assert "\n    mirror 'b': tarball of" in failed.value.message
    assert failed.value.hint
    assert list((tmp_path / "work").iterdir()) == []


def test_a_mirror_without_the_file_is_passed_over(tmp_path: Path) -> None:
    planned = action(mirror(tmp_path, "a", None), ("b", mirror(tmp_path, "b")))
    got, recorder = obtain(tmp_path, planned)
    assert (got.mirror, got.path.read_bytes()) == ("b", GOOD)
    assert [e for e in recorder.events if e.startswith("could not fetch")]


def test_no_mirror_with_the_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TransportError) as failed:
        obtain(tmp_path, action(mirror(tmp_path, "a", None)))
    assert failed.value.reference == "tarball-unavailable"


def test_a_cache_hit_is_read_once_into_memory(tmp_path: Path) -> None:
    cache, blob = cache_with(tmp_path, GOOD)
    got, recorder = obtain(tmp_path, action(mirror(tmp_path, "a", None)), cache)
    assert (got.from_cache, got.downloaded, got.data, got.size) == (True, 0, GOOD, len(GOOD))
    assert not got.path.exists()  # no private file: the bytes hashed are the bytes unpacked
    blob.write_bytes(b"rewritten by a co-tenant")  # after the check: changes nothing
    assert got.data == GOOD
    assert recorder.finished == [("cache", "a")]


def test_a_large_cache_hit_is_a_private_verified_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch, "IN_MEMORY_BLOB", len(GOOD) - 1)
    cache, blob = cache_with(tmp_path, GOOD)
    got, recorder = obtain(tmp_path, action(mirror(tmp_path, "a", None)), cache)
    assert got.data is None
    assert (got.from_cache, got.downloaded, got.path.read_bytes()) == (True, 0, GOOD)
    assert got.mirror == "a"  # the install record names the mirror the plan chose
    assert got.path.parent == tmp_path / "work"
    assert got.path.stat().st_ino != blob.stat().st_ino  # a copy, never a link
    assert stat.S_IMODE(got.path.stat().st_mode) == 0o600
    assert recorder.finished == [("cache", "a")]


def test_a_bad_cached_copy_is_evicted_and_the_tarball_fetched_again(tmp_path: Path) -> None:
    cache, blob = cache_with(tmp_path, b"rotten")
    got, recorder = obtain(tmp_path, action(mirror(tmp_path, "a")), cache)
    assert (got.from_cache, got.path.read_bytes()) == (False, GOOD)
    assert not blob.exists()
    (evicted,) = [e for e in recorder.events if e.startswith(f"evicted {blob}")]
    assert evicted.endswith(
        "does not match the signed metadata of hello-app@3.0/d7r6xmz; fetching it again"
    )


def test_only_downloads_are_copied_into_the_cache(tmp_path: Path) -> None:
    cache, blob = cache_with(tmp_path, None)
    got, _ = obtain(tmp_path, action(mirror(tmp_path, "a")), cache)
    keep_in_cache(action(got.url), got, cache)
    assert blob.read_bytes() == GOOD
    assert blob.stat().st_ino != got.path.stat().st_ino
    # a cache hit is not stored again (its copy is the cached file already)
    blob.unlink()
    keep_in_cache(action(got.url), attrs.evolve(got, from_cache=True), cache)
    assert not blob.exists()


def test_without_a_cache_nothing_is_kept(tmp_path: Path) -> None:
    got, _ = obtain(tmp_path, action(mirror(tmp_path, "a")))
    keep_in_cache(action(got.url), got, None)
    shutil.rmtree(tmp_path / "work")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_a_download_is_kept_in_the_cache_root_its_url_selects(tmp_path: Path) -> None:
    url = mirror(tmp_path, "a")
    elsewhere = CacheRootConfig(path=tmp_path / "other", prefixes=("https://elsewhere/",))
    chosen = CacheRootConfig(path=tmp_path / "chosen", prefixes=(url.rsplit("/", 3)[0],))
    cache = BlobCache([elsewhere, chosen])
    got, _ = obtain(tmp_path, action(url), cache)
    keep_in_cache(action(url), got, cache)
    assert cache.copies(SHA) == [blob_path(tmp_path / "chosen", SHA)]


def test_a_tarball_larger_than_planned_is_stopped_at_the_planned_size(tmp_path: Path) -> None:
    planned = action(mirror(tmp_path, "a", GOOD + b"\0" * 100_000))
    with pytest.raises(TransportError) as failed:
        obtain(tmp_path, planned)
    assert f"expected at most {len(GOOD)} bytes (the size the plan recorded for it)" in (
        failed.value.message
    )
