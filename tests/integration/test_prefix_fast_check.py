"""The fast check of a prefix against its install record, as a plan makes it: every change to
a type, permission bit, size, mtime, group or link target shows, though most entries are
compared from their ``lstat`` alone, without building an entry."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import attrs
import pytest

from reconcile.observe.ignore import IgnoreRules
from reconcile.observe.prefix_drift import compare_prefix
from reconcile.state.records import (
    InstallRecord,
    RecordEntry,
    read_record,
    scan_prefix,
    write_record,
)

HASH = "fastcheck"


def make_prefix(root: Path) -> Path:
    prefix = root / "opt" / f"pkg-1.0-{HASH}"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "lib" / "sub").mkdir(parents=True)
    (prefix / "bin" / "tool").write_bytes(b"#!/bin/sh\necho hi\n")
    (prefix / "bin" / "tool").chmod(0o755)
    (prefix / "lib" / "data").write_bytes(b"0123456789")
    (prefix / "lib" / "sub" / "more").write_bytes(b"more")
    (prefix / "lib" / "link").symlink_to("data")
    return prefix


def recorded(prefix: Path, root: Path, **changes: object) -> InstallRecord:
    """The prefix's record, written and read back (entries checked the short way)."""
    record = InstallRecord(
        hash=HASH,
        name="pkg",
        version="1.0",
        prefix=str(prefix),
        spec={"name": "pkg"},
        mirror="m",
        mirror_url="file:///m",
        tarball_sha256="0" * 64,
        signer=None,
        installed_at="2025-01-31T12:00:00Z",
        entries=scan_prefix(prefix),
    )
    write_record(root / "opt", attrs.evolve(record, **changes))
    found = read_record(root / "opt", HASH)
    assert found is not None
    return found


def kinds(record: InstallRecord, mode: str = "fast") -> set[tuple[str, str]]:
    compared = compare_prefix(record, mode=mode, ignore=IgnoreRules())  # type: ignore[arg-type]
    return {(f.kind, os.path.relpath(f.path, record.prefix)) for f in compared.findings}


def rewrite_keeping_mtime(path: Path, data: bytes) -> None:
    before = path.lstat()
    path.write_bytes(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns), follow_symlinks=False)


def relink(path: Path, target: str) -> None:
    path.unlink()
    path.symlink_to(target)


def folder_for_file(path: Path) -> None:
    path.unlink()
    path.mkdir()


def file_for_folder(path: Path) -> None:
    mode = stat.S_IMODE(path.lstat().st_mode)
    for inside in path.iterdir():
        inside.unlink()
    path.rmdir()
    path.write_bytes(b"")
    path.chmod(mode)  # the same permission bits: only the type differs


CHANGES: dict[str, tuple[Callable[[Path], None], set[tuple[str, str]]]] = {
    "file mode": (lambda p: (p / "bin/tool").chmod(0o700), {("mode", "bin/tool")}),
    "file set-uid bit": (lambda p: (p / "bin/tool").chmod(0o4755), {("mode", "bin/tool")}),
    "folder mode": (lambda p: (p / "lib/sub").chmod(0o700), {("mode", "lib/sub")}),
    "folder set-gid bit": (lambda p: (p / "lib").chmod(0o2755), {("mode", "lib")}),
    "prefix mode": (lambda p: p.chmod(0o700), {("mode", ".")}),
    "size, mtime forged": (
        lambda p: rewrite_keeping_mtime(p / "lib/data", b"01234567890"),
        {("modified", "lib/data")},
    ),
    "content, mtime moved": (
        lambda p: (p / "lib/data").write_bytes(b"9876543210"),
        {("modified", "lib/data")},
    ),
    "link target": (lambda p: relink(p / "lib/link", "dat2"), {("link-target", "lib/link")}),
    "file to link": (lambda p: relink(p / "lib/data", "sub/more"), {("type", "lib/data")}),
    "file to folder": (lambda p: folder_for_file(p / "lib/sub/more"), {("type", "lib/sub/more")}),
    "folder to file": (
        lambda p: file_for_folder(p / "lib/sub"),
        {("type", "lib/sub"), ("missing", "lib/sub/more")},
    ),
    "link to file": (
        lambda p: ((p / "lib/link").unlink(), (p / "lib/link").write_bytes(b"0123456789")),
        {("type", "lib/link")},
    ),
    "file gone": (lambda p: (p / "bin/tool").unlink(), {("missing", "bin/tool")}),
    "file added": (lambda p: (p / "bin/new").write_bytes(b""), {("added", "bin/new")}),
    "mtime only": (lambda p: os.utime(p / "lib/data", ns=(1, 1)), set()),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_change_shows_in_the_fast_check(tmp_path: Path, change: str) -> None:
    prefix = make_prefix(tmp_path)
    record = recorded(prefix, tmp_path)
    assert kinds(record) == set()
    assert compare_prefix(record, mode="fast", ignore=IgnoreRules()).checked == len(record.entries)
    act, expected = CHANGES[change]
    act(prefix)
    assert kinds(record) == expected
    assert kinds(record, "contents") == expected


def test_the_fast_check_trusts_size_and_mtime_and_the_contents_check_does_not(
    tmp_path: Path,
) -> None:
    prefix = make_prefix(tmp_path)
    record = recorded(prefix, tmp_path)
    rewrite_keeping_mtime(prefix / "lib/data", b"9876543210")  # same size, forged mtime
    assert kinds(record) == set()
    assert kinds(record, "contents") == {("modified", "lib/data")}


def test_a_folder_or_file_of_another_group_shows_but_a_link_does_not(tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path)
    other = os.lstat(prefix).st_gid + 1
    record = recorded(prefix, tmp_path, permissions={"gid": other})
    found = kinds(record)
    assert ("group", "lib/data") in found and ("group", "lib") in found
    assert not any(path == "lib/link" for _, path in found)
    assert len(found) == len(record.entries) - 1


def test_a_file_recorded_without_an_mtime_is_hashed(tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path)
    entries = tuple(attrs.evolve(entry, mtime_ns=None) for entry in scan_prefix(prefix))
    record = recorded(prefix, tmp_path, entries=entries)
    assert all(entry.mtime_ns is None for entry in record.entries)
    rewrite_keeping_mtime(prefix / "lib/data", b"9876543210")  # same size, same mtime
    assert kinds(record) == {("modified", "lib/data")}


def test_a_file_swapped_for_a_fifo_is_a_type_change(tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path)
    record = recorded(prefix, tmp_path)
    (prefix / "lib/data").unlink()
    os.mkfifo(prefix / "lib/data")
    assert stat.S_ISFIFO(os.lstat(prefix / "lib/data").st_mode)
    assert kinds(record) == {("type", "lib/data")}


def test_entries_compared_from_rows_match_the_record(tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path)
    record = recorded(prefix, tmp_path)
    assert tuple(record.entries) == scan_prefix(prefix)
    assert all(isinstance(entry, RecordEntry) for entry in record.entries)
