"""cache gc removes partial downloads whose run has ended and that nothing wrote to for longer
than a bound (``--older-than``, else a day); never one a running apply holds (its name's owner
tag is a live process), nor one written on another host; cache list counts them."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconcile.cache.gc import gc
from reconcile.cache.partial import PARTIAL_FOLDER
from reconcile.cache.roots import CacheRootConfig
from reconcile.cache.store import BlobCache
from reconcile.cli.main import main
from reconcile.safe_fs import LinkInRootError
from reconcile.state.leftovers import this_boot, this_host

SHA_A, SHA_B, SHA_C, SHA_D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)
NOW = datetime.now(UTC)


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.fixture
def live_pid() -> Iterator[int]:
    """A real process that is still running (a stand-in for a running apply)."""
    process = subprocess.Popen(["sleep", "600"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def _partial(folder: Path, sha256: str, pid: int, *, age: timedelta, host: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sha256}.{host or this_host()}-{this_boot()}-{pid}-0badc0de.partial"
    path.write_bytes(b"x" * 1000)
    moment = (NOW - age).timestamp()
    os.utime(path, (moment, moment))
    return path


@pytest.fixture
def partials(tmp_path: Path, live_pid: int) -> dict[str, Path]:
    folder = tmp_path / "cache" / PARTIAL_FOLDER
    return {
        "ended, 3 days": _partial(folder, SHA_A, _dead_pid(), age=timedelta(days=3)),
        "ended, 3 hours": _partial(folder, SHA_B, _dead_pid(), age=timedelta(hours=3)),
        "running, 3 days": _partial(folder, SHA_C, live_pid, age=timedelta(days=3)),
        "other host, 3 days": _partial(
            folder, SHA_D, _dead_pid(), age=timedelta(days=3), host="otherhost"
        ),
    }


def _cache(tmp_path: Path) -> BlobCache:
    return BlobCache([CacheRootConfig(path=tmp_path / "cache")])


def _left(partials: dict[str, Path]) -> set[str]:
    return {what for what, path in partials.items() if path.exists()}


def test_gc_removes_only_partials_whose_run_ended_long_ago(
    tmp_path: Path, partials: dict[str, Path]
) -> None:
    report = gc(_cache(tmp_path), max_size=None, older_than=timedelta(days=7), now=NOW)
    assert report.partials == () and len(_left(partials)) == 4  # none is 7 days old
    report = gc(_cache(tmp_path), max_size=10 << 30, older_than=None, now=NOW)  # a day
    assert [p.path for p in report.partials] == [partials["ended, 3 days"]]
    assert report.freed_bytes == 1000
    assert _left(partials) == {"ended, 3 hours", "running, 3 days", "other host, 3 days"}
    report = gc(_cache(tmp_path), max_size=None, older_than=timedelta(hours=1), now=NOW)
    assert [p.path for p in report.partials] == [partials["ended, 3 hours"]]
    # a running apply's partial and another host's are never removed, however old
    assert _left(partials) == {"running, 3 days", "other host, 3 days"}


def test_a_dry_run_names_them_and_removes_nothing(
    tmp_path: Path, partials: dict[str, Path]
) -> None:
    report = gc(
        _cache(tmp_path), max_size=None, older_than=timedelta(hours=1), dry_run=True, now=NOW
    )
    assert {p.path for p in report.partials} == {
        partials["ended, 3 days"],
        partials["ended, 3 hours"],
    }
    assert len(_left(partials)) == 4


def test_a_partial_written_since_the_listing_is_kept(
    tmp_path: Path, partials: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that resumed it between gc's listing and its removal wrote to it: kept."""
    from reconcile.cache import partials as module

    listed = module.scan_partials

    def listing_then_write(root: Path) -> tuple[module.PartialDownload, ...]:
        found = listed(root)
        os.utime(partials["ended, 3 days"])  # now
        return found

    monkeypatch.setattr("reconcile.cache.gc.scan_partials", listing_then_write)
    report = gc(_cache(tmp_path), max_size=None, older_than=timedelta(hours=1), now=NOW)
    assert [p.path for p in report.partials] == [partials["ended, 3 hours"]]
    assert partials["ended, 3 days"].exists()


def test_links_and_other_names_in_the_partial_folder_are_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "cache" / PARTIAL_FOLDER
    folder.mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    old = (NOW - timedelta(days=30)).timestamp()
    link = folder / f"{SHA_A}.{this_host()}-{this_boot()}-{_dead_pid()}-0badc0de.partial"
    link.symlink_to(victim)
    other = folder / "notes.txt"
    other.write_text("not a partial download")
    os.utime(other, (old, old))
    report = gc(_cache(tmp_path), max_size=None, older_than=timedelta(hours=1), now=NOW)
    assert report.partials == ()
    assert link.is_symlink() and other.exists() and victim.read_bytes() == b"precious"


def test_a_partial_folder_swapped_for_a_link_is_not_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    planted = _partial(elsewhere, SHA_A, _dead_pid(), age=timedelta(days=30))
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / PARTIAL_FOLDER).symlink_to(elsewhere)
    with pytest.raises(LinkInRootError):  # refused, as a blob folder swapped for a link is
        gc(_cache(tmp_path), max_size=None, older_than=timedelta(hours=1), now=NOW)
    assert planted.exists()
    capsys.readouterr()
    assert main(["-m", str(_manifest(tmp_path)), "cache", "list"]) == 1
    err = capsys.readouterr().err
    assert "error[" in err and "it is a symlink" in err and "Traceback" not in err
    assert planted.exists()


def _manifest(tmp_path: Path) -> Path:
    path = tmp_path / "reconcile.toml"
    path.write_text('version = 1\n\n[[cache]]\nroot = "cache"\n')
    return path


def test_cache_list_counts_partials_and_says_who_holds_them(
    tmp_path: Path, partials: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path)
    assert main(["-m", str(manifest), "cache", "list"]) == 0
    out = capsys.readouterr().out
    assert (
        "4 partial downloads kept for resuming, 3.9 KiB (2 held by a running apply or another host)"
        in out
    )
    assert f"partial {SHA_C[:12]}" in out and "a running apply holds it" in out
    assert "written on another host" in out and "its run has ended" in out
    assert main(["-m", str(manifest), "cache", "list", "--json"]) == 0
    (root,) = json.loads(capsys.readouterr().out)["roots"]
    assert root["partial_bytes"] == 4000
    writers = {p["sha256"]: p["writer"] for p in root["partial_downloads"]}
    assert writers == {SHA_A: "ended", SHA_B: "ended", SHA_C: "running", SHA_D: "other-host"}


def test_cache_gc_cli_reports_the_partials_it_removed(
    tmp_path: Path, partials: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _manifest(tmp_path)
    assert main(["-m", str(manifest), "cache", "gc", "--older-than", "1d", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [p["path"] for p in report["partials_removed"]] == [str(partials["ended, 3 days"])]
    assert report["freed_bytes"] == 1000
    assert main(["-m", str(manifest), "cache", "gc", "--older-than", "1h"]) == 0
    out = capsys.readouterr().out
    removed = partials["ended, 3 hours"]
    assert f"- remove {removed} (1000 B): partial download of {SHA_B[:12]}, its run has " in out
    assert "its run has ended, untouched for 3 h" in out
    assert _left(partials) == {"running, 3 days", "other host, 3 days"}
