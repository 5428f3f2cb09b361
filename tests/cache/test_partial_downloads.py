"""Partial downloads kept for the next run (cache/partial.py): which one is resumed, and that
no leftover sweep ever takes one."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from reconcile.apply.leftovers import clear_leftovers
from reconcile.cache.partial import cache_place, download_resumable, state_place
from reconcile.cache.roots import CacheRootConfig
from reconcile.cache.store import BlobCache
from reconcile.state.leftovers import (
    is_dead_temp,
    owner_is_gone,
    owner_of,
    resumable_key,
    resumable_name,
    this_boot,
    this_host,
)
from reconcile.state.lock import state_dir
from reconcile.transport.file import FileTransport

DATA = bytes(range(256)) * 4096  # 1 MiB
SHA256 = hashlib.sha256(DATA).hexdigest()


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _dead_name(sha256: str = SHA256) -> str:
    return f"{sha256}.{this_host()}-{this_boot()}-{_dead_pid()}-0badc0de.partial"


def _served(tmp_path: Path) -> str:
    source = tmp_path / "served.bin"
    source.write_bytes(DATA)
    return source.as_uri()


def test_a_partial_name_tells_its_owner_and_is_never_a_dead_temporary_file() -> None:
    mine = resumable_name(SHA256)
    owner = owner_of(mine)
    assert owner is not None and owner.pid == os.getpid() and not owner_is_gone(owner)
    assert resumable_key(mine) == SHA256
    dead = _dead_name()
    dead_owner = owner_of(dead)
    assert dead_owner is not None and owner_is_gone(dead_owner)
    assert not is_dead_temp(dead)
    assert resumable_key("../" + dead) is None


def test_no_sweep_removes_a_partial_download(tmp_path: Path) -> None:
    root = tmp_path / "opt"
    cache_root = tmp_path / "cache"
    kept = []
    for place in (cache_place(cache_root), state_place(state_dir(root))):
        place.folder.mkdir(parents=True)
        for name in (_dead_name(), resumable_name(SHA256)):
            (place.folder / name).write_bytes(b"part")
            kept.append(place.folder / name)
    removed = clear_leftovers(root, BlobCache([CacheRootConfig(path=cache_root)]))
    assert removed == []
    assert all(path.exists() for path in kept)


def test_an_ended_runs_partial_is_resumed_and_removed(tmp_path: Path) -> None:
    place = cache_place(tmp_path / "cache")
    place.folder.mkdir(parents=True)
    (place.folder / _dead_name()).write_bytes(DATA[:300_000])
    transport = FileTransport()
    dest = tmp_path / "private"
    got = download_resumable(
        transport, _served(tmp_path), dest, sha256=SHA256, expected_size=len(DATA), place=place
    )
    assert (got.resumed_from, got.received, got.sha256) == (300_000, len(DATA) - 300_000, SHA256)
    assert transport.bytes_received == len(DATA) - 300_000
    assert dest.read_bytes() == DATA
    assert dest.stat().st_mode & 0o777 == 0o600
    assert list(place.folder.iterdir()) == []


def test_a_live_runs_partial_is_left_to_it(tmp_path: Path) -> None:
    place = cache_place(tmp_path / "cache")
    place.folder.mkdir(parents=True)
    live = place.folder / f"{SHA256}.{this_host()}-{this_boot()}-1-0badc0de.partial"
    live.write_bytes(DATA[:300_000])  # pid 1 is alive: its writer may still be at work
    got = download_resumable(
        FileTransport(),
        _served(tmp_path),
        tmp_path / "private",
        sha256=SHA256,
        expected_size=len(DATA),
        place=place,
    )
    assert got.resumed_from == 0
    assert live.read_bytes() == DATA[:300_000]
    assert sorted(place.folder.iterdir()) == [live]


def test_a_partial_longer_than_the_file_or_rewritten_is_fetched_again(tmp_path: Path) -> None:
    place = cache_place(tmp_path / "cache")
    place.folder.mkdir(parents=True)
    url = _served(tmp_path)
    for kept in (DATA + b"more", b"X" + DATA[1:500_000], b"X" + DATA[1:]):
        (place.folder / _dead_name()).write_bytes(kept)
        thrown_away: list[int] = []
        got = download_resumable(
            FileTransport(),
            url,
            tmp_path / "private",
            sha256=SHA256,
            expected_size=len(DATA),
            place=place,
            restarted=thrown_away.append,
        )
        assert got.sha256 == SHA256 and got.resumed_from == 0
        assert (tmp_path / "private").read_bytes() == DATA
        assert list(place.folder.iterdir()) == []
        if len(kept) <= len(DATA):
            assert thrown_away == [len(kept)]


def test_the_install_roots_partial_folder_is_removed_once_empty(tmp_path: Path) -> None:
    place = state_place(state_dir(tmp_path / "opt"))
    place.folder.mkdir(parents=True)
    (place.folder / _dead_name()).write_bytes(DATA[:1000])
    got = download_resumable(
        FileTransport(),
        _served(tmp_path),
        tmp_path / "private",
        sha256=SHA256,
        expected_size=len(DATA),
        place=place,
    )
    assert got.resumed_from == 1000
    assert not place.folder.exists() and place.folder.parent.is_dir()


def test_without_a_usable_folder_the_download_goes_straight_to_the_private_file(
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache root's folder would be")
    got = download_resumable(
        FileTransport(),
        _served(tmp_path),
        tmp_path / "private",
        sha256=SHA256,
        expected_size=len(DATA),
        place=cache_place(blocked),
    )
    assert (got.sha256, got.received) == (SHA256, len(DATA))
