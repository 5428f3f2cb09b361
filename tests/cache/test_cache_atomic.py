"""Jobs sharing a cache root never see part of a blob: a writer killed before its commit
leaves only a hidden temporary file, and concurrent writers of one blob all succeed."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cache_support import (
    GCC_RUNTIME_SHA,
    GREETLIB_SHA,
    HELLO_SHA,
    file_download,
    root,
    sha256_hex,
    store_fixture,
    tarball,
    tarball_url,
)
from conftest import REPO

from reconcile.cache.gc import gc
from reconcile.cache.scan import scan_root
from reconcile.cache.store import BlobCache

# Writes half of a blob through open_for_write, says so, then waits to be killed.
HALF_WRITER = """
import sys, time
from pathlib import Path
from reconcile.cache.roots import CacheRootConfig
from reconcile.cache.store import BlobCache

root, url, sha, source = sys.argv[1:]
cache = BlobCache([CacheRootConfig(path=Path(root))])
data = Path(source).read_bytes()
with cache.open_for_write(url, sha) as pending:
    with pending.path.open("wb") as stream:
        stream.write(data[: len(data) // 2])
        stream.flush()
    print("half written", flush=True)
    time.sleep(60)
    pending.commit()
"""

# Stores one blob several times over, as several CI jobs sharing a root would.
REPEAT_WRITER = """
import sys
from pathlib import Path
from reconcile.cache.roots import CacheRootConfig
from reconcile.cache.store import BlobCache
from reconcile.transport.file import FileTransport

root, url, sha, times = sys.argv[1:]
cache = BlobCache([CacheRootConfig(path=Path(root))])
for job in range(int(times)):
    blob = cache.store_download(
        url, sha, f"job-{job}", lambda dest: FileTransport().download(url, dest)
    )
    assert blob is not None
"""


def _python(script: str, *args: str, talks: bool = False) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        cwd=REPO,
        stdout=subprocess.PIPE if talks else subprocess.DEVNULL,
        text=True,
    )


def test_a_writer_killed_before_its_commit_leaves_no_blob(tmp_path: Path) -> None:
    cache_root = tmp_path / "cache"
    source = tarball("gcc-runtime")
    url = tarball_url("gcc-runtime")
    cache = BlobCache([root(cache_root)])
    with _python(HALF_WRITER, str(cache_root), url, GCC_RUNTIME_SHA, str(source), talks=True) as (
        writer
    ):
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "half written"
        (leftover,) = scan_root(root(cache_root)).leftovers
        # The writer is at work: gc leaves its temporary file alone.
        assert gc(cache, max_size=0, older_than=None).leftovers == ()
        assert leftover.path.exists()
        writer.send_signal(signal.SIGKILL)
    assert writer.returncode == -signal.SIGKILL
    assert cache.lookup(GCC_RUNTIME_SHA) is None
    assert cache.entries() == []
    assert leftover.why == "unfinished write"
    assert leftover.path.name.startswith(f".{GCC_RUNTIME_SHA}.")
    assert f"-{writer.pid}-" in leftover.path.name  # whose it is, in its name
    assert leftover.size == source.stat().st_size // 2
    # Its writer is gone (the name says which process it was): removed at once.
    report = gc(cache, max_size=None, older_than=None)
    assert [found.path for found in report.leftovers] == [leftover.path]
    assert not leftover.path.exists()
    # The next job downloads it again, as if nothing had happened.
    assert cache.store_download(url, GCC_RUNTIME_SHA, "", file_download(url)) is not None


def test_an_untagged_temporary_blob_is_removed_only_when_a_day_old(tmp_path: Path) -> None:
    """Names without an owner (older reconcile, another tool) cannot be judged: age decides."""
    cache = BlobCache([root(tmp_path / "cache")])
    blob = store_fixture(cache, "greetlib", GREETLIB_SHA)
    stray = blob.with_name(f".{GREETLIB_SHA}.k2j4h5g6.tmp")
    stray.write_bytes(b"half")
    assert gc(cache, max_size=None, older_than=None).leftovers == ()
    later = datetime.now(UTC) + timedelta(days=2)
    report = gc(cache, max_size=None, older_than=None, now=later)
    assert [found.path for found in report.leftovers] == [stray]


def test_concurrent_writers_of_one_blob_all_succeed_and_readers_see_whole_blobs(
    tmp_path: Path,
) -> None:
    cache_root = tmp_path / "cache"
    url = tarball_url("gcc-runtime")
    writers = [_python(REPEAT_WRITER, str(cache_root), url, GCC_RUNTIME_SHA, "3") for _ in range(4)]
    cache = BlobCache([root(cache_root)])
    seen = 0
    try:
        while any(writer.poll() is None for writer in writers):
            blob = cache.lookup(GCC_RUNTIME_SHA)
            if blob is not None:
                # Whatever a reader finds under the blob's name is the whole blob.
                assert cache.verify(blob, GCC_RUNTIME_SHA)
                seen += 1
            time.sleep(0.005)
    finally:
        for writer in writers:
            writer.wait(timeout=120)
    assert [writer.returncode for writer in writers] == [0, 0, 0, 0]
    (entry,) = cache.entries()
    assert entry.size == tarball("gcc-runtime").stat().st_size
    assert entry.recorded
    assert entry.urls == (url,)
    assert cache.verify(entry.path, GCC_RUNTIME_SHA)
    assert scan_root(root(cache_root)).leftovers == ()  # every temporary file was renamed
    assert seen > 0


def test_threads_storing_blobs_at_once(tmp_path: Path) -> None:
    """The executor fetches several specs in parallel threads into one cache."""
    cache = BlobCache([root(tmp_path / "cache")])
    jobs = [
        ("hello-app", HELLO_SHA),
        ("greetlib", GREETLIB_SHA),
        ("gcc-runtime", GCC_RUNTIME_SHA),
    ] * 3
    results: list[Path | None] = []
    errors: list[BaseException] = []

    def store(name: str, sha: str) -> None:
        try:
            url = tarball_url(name)
            results.append(cache.store_download(url, sha, name, file_download(url)))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=store, args=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert len(results) == len(jobs)
    assert sorted(entry.sha256 for entry in cache.entries()) == sorted(
        [HELLO_SHA, GREETLIB_SHA, GCC_RUNTIME_SHA]
    )
    for entry in cache.entries():
        assert sha256_hex(entry.path.read_bytes()) == entry.sha256
