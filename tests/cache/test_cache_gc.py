"""gc: least recently used first, by age and by size, never a blob the manifest needs."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cache_support import (
    GCC_RUNTIME_SHA,
    GREETLIB_SHA,
    HELLO_SHA,
    root,
    sha256_hex,
    store_fixture,
)

from reconcile.cache import gc as gc_module
from reconcile.cache.gc import gc
from reconcile.cache.roots import CacheRootConfig
from reconcile.cache.scan import RootScan, scan_root
from reconcile.cache.store import BlobCache

START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HELLO_SIZE, GREETLIB_SIZE, GCC_RUNTIME_SIZE = 9861, 9708, 9566481


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def _filled(tmp_path: Path, *roots: CacheRootConfig) -> tuple[BlobCache, Clock]:
    """gcc-runtime used 10 days ago, greetlib 5 days ago, hello-app 1 day ago."""
    clock = Clock()
    cache = BlobCache(roots or (root(tmp_path / "cache"),), clock=clock)
    for name, sha, days_ago in (
        ("gcc-runtime", GCC_RUNTIME_SHA, 10),
        ("greetlib", GREETLIB_SHA, 5),
        ("hello-app", HELLO_SHA, 1),
    ):
        clock.now = START - timedelta(days=days_ago)
        store_fixture(cache, name, sha, name)
    clock.now = START
    return cache, clock


def _removed(report: object) -> list[str]:
    return [removal.entry.sha256 for removal in report.removed]  # type: ignore[attr-defined]


def test_older_than_removes_blobs_unused_for_that_long(tmp_path: Path) -> None:
    cache, _ = _filled(tmp_path)
    report = gc(cache, max_size=None, older_than=timedelta(days=3), now=START)
    assert _removed(report) == [GCC_RUNTIME_SHA, GREETLIB_SHA]
    assert {r.reason for r in report.removed} == {"older-than"}
    assert report.freed_bytes == GCC_RUNTIME_SIZE + GREETLIB_SIZE
    assert [entry.sha256 for entry in cache.entries()] == [HELLO_SHA]
    assert report.remaining_bytes == HELLO_SIZE


def test_a_use_makes_a_blob_recent_again(tmp_path: Path) -> None:
    cache, clock = _filled(tmp_path)
    clock.now = START - timedelta(hours=1)
    cache.note_use(GCC_RUNTIME_SHA, "https://h/gcc.spack", "gcc-runtime@12.2.0/75b4t5r")
    report = gc(cache, max_size=None, older_than=timedelta(days=3), now=START)
    assert _removed(report) == [GREETLIB_SHA]


def test_max_size_removes_least_recently_used_first(tmp_path: Path) -> None:
    cache, _ = _filled(tmp_path)
    # Removing gcc-runtime (the oldest) brings the total under 1 MiB; the others stay.
    report = gc(cache, max_size=1 << 20, older_than=None, now=START)
    assert _removed(report) == [GCC_RUNTIME_SHA]
    assert {r.reason for r in report.removed} == {"max-size"}
    # Then, with room for one small blob only, the older of the two goes.
    report = gc(cache, max_size=HELLO_SIZE, older_than=None, now=START)
    assert _removed(report) == [GREETLIB_SHA]
    assert report.remaining_bytes == HELLO_SIZE
    assert not report.over_budget
    assert gc(cache, max_size=0, older_than=None, now=START).freed_bytes == HELLO_SIZE
    assert cache.entries() == []


def test_the_keep_set_is_never_removed(tmp_path: Path) -> None:
    cache, _ = _filled(tmp_path)
    keep = {GCC_RUNTIME_SHA, HELLO_SHA}
    report = gc(cache, max_size=0, older_than=timedelta(0), keep=keep, now=START)
    assert _removed(report) == [GREETLIB_SHA]
    assert sorted(entry.sha256 for entry in report.needed) == sorted(keep)
    assert sorted(entry.sha256 for entry in cache.entries()) == sorted(keep)
    # The needed blobs alone are over the budget: kept, and said so.
    assert report.over_budget
    assert report.remaining_bytes == GCC_RUNTIME_SIZE + HELLO_SIZE


def test_age_and_size_together(tmp_path: Path) -> None:
    cache, _ = _filled(tmp_path)
    report = gc(cache, max_size=HELLO_SIZE, older_than=timedelta(days=7), now=START)
    assert [(r.entry.sha256, r.reason) for r in report.removed] == [
        (GCC_RUNTIME_SHA, "older-than"),
        (GREETLIB_SHA, "max-size"),
    ]


def test_a_dry_run_removes_nothing(tmp_path: Path) -> None:
    cache, _ = _filled(tmp_path)
    before = cache.entries()
    report = gc(cache, max_size=0, older_than=None, dry_run=True, now=START)
    assert report.dry_run
    assert _removed(report) == [GCC_RUNTIME_SHA, GREETLIB_SHA, HELLO_SHA]
    assert report.kept == ()
    assert cache.entries() == before


def test_every_root_counts_and_kept_blobs_stay_in_each_root(tmp_path: Path) -> None:
    per_pr = root(tmp_path / "pr", "https://h/pr/")
    shared = root(tmp_path / "shared")
    _filled(tmp_path, shared)
    store_fixture(BlobCache([root(per_pr.path)]), "hello-app", HELLO_SHA)  # a second copy
    both = BlobCache([per_pr, shared])
    report = gc(both, max_size=0, older_than=None, keep={HELLO_SHA}, now=START)
    assert sorted(_removed(report)) == sorted([GCC_RUNTIME_SHA, GREETLIB_SHA])
    assert [p.parents[3] for p in both.copies(HELLO_SHA)] == [per_pr.path, shared.path]


def test_blobs_without_records_age_by_their_modification_time(tmp_path: Path) -> None:
    cache, _ = _filled(tmp_path)
    (stray,) = [e for e in cache.entries() if e.sha256 == HELLO_SHA]
    stray.path.with_name(HELLO_SHA + ".json").unlink()
    old = (START - timedelta(days=30)).timestamp()
    os.utime(stray.path, (old, old))
    report = gc(cache, max_size=None, older_than=timedelta(days=20), now=START)
    assert _removed(report) == [HELLO_SHA]


def test_leftovers_are_cleaned(tmp_path: Path) -> None:
    cache, _ = _filled(tmp_path)
    folder = tmp_path / "cache" / "blobs" / "sha256" / "ab"
    folder.mkdir()
    orphan = folder / ("ab" + "0" * 62 + ".json")
    orphan.write_text("{}")
    data = b"a blob whose file is a symlink"
    link = folder.parent / sha256_hex(data)[:2] / sha256_hex(data)
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(tmp_path / "elsewhere")
    report = gc(cache, max_size=None, older_than=None, now=START)
    assert sorted((leftover.path, leftover.why) for leftover in report.leftovers) == sorted(
        [(orphan, "record without a blob"), (link, "not a regular file")]
    )
    assert not orphan.exists()
    assert not link.is_symlink()
    assert len(cache.entries()) == 3


def test_a_blob_used_after_the_scan_is_left_for_the_next_gc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, clock = _filled(tmp_path)

    def scan_then_another_job_uses_gcc_runtime(root: CacheRootConfig) -> RootScan:
        scanned = scan_root(root)
        clock.now = START + timedelta(seconds=1)
        cache.note_use(GCC_RUNTIME_SHA, "https://h/gcc.spack", "gcc-runtime")
        return scanned

    monkeypatch.setattr(gc_module, "scan_root", scan_then_another_job_uses_gcc_runtime)
    report = gc(cache, max_size=0, older_than=None, now=START)
    assert _removed(report) == [GREETLIB_SHA, HELLO_SHA]
    assert [entry.sha256 for entry in cache.entries()] == [GCC_RUNTIME_SHA]
