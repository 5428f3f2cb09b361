"""Permissions: the mode table, Hypothesis invariants, and real trees (as root and as nobody)."""

from __future__ import annotations

import grp
import os
import shutil
import stat
import subprocess
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconcile.errors import ReconcileError
from reconcile.manifest.model import Permissions
from reconcile.permissions import (
    PermissionChange,
    apply_permissions,
    describe_permissions,
    permission_changes,
    resolve_group,
    target_mode,
)

NOBODY = 65534
SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX
READ_SCOPE_MASK = {"user": 0o700, "group": 0o770, "world": 0o777}

HELLO_C = r"""
#include <stdio.h>
int main(void) { puts("hello from a real ELF"); return 0; }
"""


def other_group() -> grp.struct_group:
    """An existing group other than the process's own (tests run as root)."""
    return grp.getgrnam("daemon")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# --- target_mode -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "is_dir", "permissions", "expected"),
    [
        (0o644, False, Permissions(), 0o644),
        (0o755, False, Permissions(), 0o755),
        (0o700, False, Permissions(), 0o755),  # executable for the user: executable for readers
        (0o100, False, Permissions(), 0o755),
        (0o600, False, Permissions(read="group", write="group"), 0o660),
        (0o755, False, Permissions(read="group", write="group"), 0o770),
        (0o777, False, Permissions(read="user", write="user"), 0o700),
        (0o666, False, Permissions(read="user", write="world"), 0o600),  # write never past read
        (0o644, False, Permissions(read="group", write="world"), 0o660),
        (0o644, False, Permissions(read="world", write="world"), 0o666),
        (0o4755, False, Permissions(), 0o755),  # no set-uid
        (0o2755, False, Permissions(group="daemon"), 0o755),  # set-gid only on folders
        (0o000, True, Permissions(), 0o755),
        (0o1777, True, Permissions(), 0o755),  # no sticky bit
        (0o755, True, Permissions(group="daemon"), 0o2755),
        (0o700, True, Permissions(read="group", write="group", group="daemon"), 0o2770),
        (0o755, True, Permissions(read="user"), 0o700),
        (stat.S_IFREG | 0o750, False, Permissions(), 0o755),  # a whole st_mode is fine too
    ],
)
def test_target_mode_table(
    current: int, is_dir: bool, permissions: Permissions, expected: int
) -> None:
    assert target_mode(current, is_dir=is_dir, permissions=permissions) == expected


all_permissions = st.builds(
    Permissions,
    read=st.sampled_from(["user", "group", "world"]),
    write=st.sampled_from(["user", "group", "world"]),
    group=st.none() | st.just("daemon"),
)


@given(st.integers(0, 0o7777), st.booleans(), all_permissions)
def test_target_mode_invariants(current: int, is_dir: bool, permissions: Permissions) -> None:
    mode = target_mode(current, is_dir=is_dir, permissions=permissions)
    # Never wider than the read scope; the owner always reads and writes.
    assert mode & 0o777 & ~READ_SCOPE_MASK[permissions.read] == 0
    assert mode & 0o600 == 0o600
    # Idempotent: a second pass changes nothing.
    assert target_mode(mode, is_dir=is_dir, permissions=permissions) == mode
    # Execute bits follow the read bits, for folders and executables only.
    executes = is_dir or bool(current & 0o111)
    assert bool(mode & 0o111) == executes
    if executes:
        assert (mode & 0o111) << 2 == mode & 0o444
    # Whoever may write may read.
    assert (mode & 0o222) << 1 & ~mode == 0
    # The only special bit is set-gid, on folders, when a group is set.
    assert mode & SPECIAL_BITS == (stat.S_ISGID if is_dir and permissions.group else 0)


# --- resolve_group / describe_permissions -----------------------------------------------------


def test_resolve_group_finds_real_groups() -> None:
    assert resolve_group("root") == 0
    assert resolve_group("daemon") == other_group().gr_gid


def test_resolve_group_reports_an_unknown_group_with_a_hint() -> None:
    with pytest.raises(ReconcileError) as caught:
        resolve_group("no-such-group-xyz")
    assert caught.value.reference == "unknown-group"
    assert "'no-such-group-xyz'" in caught.value.message
    assert caught.value.hint is not None and "groupadd no-such-group-xyz" in caught.value.hint


def test_describe_permissions() -> None:
    assert describe_permissions(None, None) is None
    assert describe_permissions(Permissions(read="group", group="daemon"), 1) == {
        "read": "group",
        "write": "user",
        "group": "daemon",
        "gid": 1,
    }


# --- real trees ---------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A prefix with a real compiled ELF, a script, data, a nested folder and two symlinks."""
    outside = tmp_path / "outside.txt"
    outside.write_text("outside the prefix\n")
    outside.chmod(0o640)
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "share" / "doc").mkdir(parents=True)
    source = tmp_path / "hello.c"
    source.write_text(HELLO_C)
    subprocess.run(["gcc", "-o", str(prefix / "bin" / "hello"), str(source)], check=True)
    (prefix / "bin" / "hello").chmod(0o4711)  # set-uid must go
    (prefix / "bin" / "script").write_text("#!/bin/sh\necho script\n")
    (prefix / "bin" / "script").chmod(0o700)
    (prefix / "share" / "doc" / "README").write_text("read me\n")
    (prefix / "share" / "doc" / "README").chmod(0o666)
    (prefix / "share").chmod(0o1777)  # sticky and world-writable must go
    (prefix / "share" / "outside").symlink_to(outside)
    (prefix / "bin" / "hi").symlink_to("hello")
    yield prefix, outside


def test_apply_sets_modes_group_and_setgid_and_leaves_symlinks_alone(
    tree: tuple[Path, Path],
) -> None:
    prefix, outside = tree
    group = other_group()
    permissions = Permissions(read="group", write="group", group=group.gr_name)
    link_before = (prefix / "share" / "outside").lstat()

    apply_permissions(prefix, permissions, gid=resolve_group(group.gr_name))

    assert mode_of(prefix) == 0o2770
    assert mode_of(prefix / "bin") == 0o2770
    assert mode_of(prefix / "share") == 0o2770
    assert mode_of(prefix / "share" / "doc") == 0o2770
    assert mode_of(prefix / "bin" / "hello") == 0o770
    assert mode_of(prefix / "bin" / "script") == 0o770
    assert mode_of(prefix / "share" / "doc" / "README") == 0o660
    for path in [prefix, *prefix.rglob("*")]:
        if not path.is_symlink():
            assert path.lstat().st_gid == group.gr_gid, path
    # The symlink's target outside the prefix is untouched, and so is the link itself.
    assert mode_of(outside) == 0o640
    assert outside.stat().st_gid == os.getgid()
    link_after = (prefix / "share" / "outside").lstat()
    assert (link_after.st_gid, link_after.st_mode) == (link_before.st_gid, link_before.st_mode)
    # The compiled program still runs, directly and through its symlink.
    for program in ("hello", "hi"):
        result = subprocess.run([str(prefix / "bin" / program)], capture_output=True, text=True)
        assert (result.returncode, result.stdout) == (0, "hello from a real ELF\n")


def test_apply_without_a_gid_keeps_groups(tree: tuple[Path, Path]) -> None:
    prefix, _ = tree
    os.chown(prefix / "share" / "doc" / "README", -1, other_group().gr_gid)
    apply_permissions(prefix, Permissions(read="user", write="user"), gid=None)
    assert (prefix / "share" / "doc" / "README").lstat().st_gid == other_group().gr_gid
    assert prefix.lstat().st_gid == os.getgid()
    assert mode_of(prefix) == 0o700
    assert mode_of(prefix / "bin" / "hello") == 0o700
    assert mode_of(prefix / "share" / "doc" / "README") == 0o600


def test_permission_changes_is_read_only_and_empty_after_apply(tree: tuple[Path, Path]) -> None:
    prefix, _ = tree
    gid = other_group().gr_gid
    permissions = Permissions(read="world", write="user", group="daemon")
    snapshot = {p: (p.lstat().st_mode, p.lstat().st_gid) for p in [prefix, *prefix.rglob("*")]}
    root_gid = os.getgid()

    changes = permission_changes(prefix, permissions, gid)

    assert snapshot == {p: (p.lstat().st_mode, p.lstat().st_gid) for p in snapshot}
    assert changes == [
        PermissionChange(".", 0o755, 0o2755, root_gid, gid),
        PermissionChange("bin", 0o755, 0o2755, root_gid, gid),
        PermissionChange("bin/hello", 0o4711, 0o755, root_gid, gid),
        PermissionChange("bin/script", 0o700, 0o755, root_gid, gid),
        PermissionChange("share", 0o1777, 0o2755, root_gid, gid),
        PermissionChange("share/doc", 0o755, 0o2755, root_gid, gid),
        PermissionChange("share/doc/README", 0o666, 0o644, root_gid, gid),
    ]
    apply_permissions(prefix, permissions, gid=gid)
    assert permission_changes(prefix, permissions, gid) == []
    # A second apply touches nothing: not even the change time of an inode moves.
    ctimes = {p: p.lstat().st_ctime_ns for p in [prefix, *prefix.rglob("*")]}
    apply_permissions(prefix, permissions, gid=gid)
    assert ctimes == {p: p.lstat().st_ctime_ns for p in ctimes}


def test_only_differences_are_listed(tree: tuple[Path, Path]) -> None:
    prefix, _ = tree
    permissions = Permissions()
    apply_permissions(prefix, permissions, gid=None)
    (prefix / "share" / "doc" / "README").chmod(0o664)
    assert permission_changes(prefix, permissions, None) == [
        PermissionChange("share/doc/README", 0o664, 0o644, os.getgid(), os.getgid())
    ]


def test_a_prefix_must_be_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path)
    for path in (tmp_path / "file", tmp_path / "link"):
        with pytest.raises(ReconcileError, match="is not a folder"):
            apply_permissions(path, Permissions(), gid=None)
        with pytest.raises(ReconcileError, match="is not a folder"):
            permission_changes(path, Permissions(), None)
    with pytest.raises(ReconcileError, match="cannot inspect"):
        apply_permissions(tmp_path / "missing", Permissions(), gid=None)


# --- as an ordinary user: a read-only folder must not hide its contents ---------------------------


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder that the user nobody can reach (pytest's tmp_path is private to root)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another user")
    # /tmp itself, not $TMPDIR: the test session points TMPDIR into pytest's private folder
    folder = Path(tempfile.mkdtemp(prefix="reconcile-perms-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def run_as_nobody(action: Callable[[], None]) -> tuple[int, str]:
    """Run ``action`` in a forked child that has dropped root; (exit code, error text)."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(read_end)
        code = 0
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            action()
        except ReconcileError as exc:
            os.write(write_end, exc.diagnostics().encode())
            code = 3
        except BaseException:
            os.write(write_end, traceback.format_exc().encode())
            code = 4
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as stream:
        message = stream.read().decode()
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status), message


def test_a_read_only_folder_does_not_stop_its_owner(shared_tmp: Path) -> None:
    prefix = shared_tmp / "prefix"
    (prefix / "locked" / "deeper").mkdir(parents=True)
    (prefix / "locked" / "deeper" / "data").write_text("data\n")
    for path in [prefix, *prefix.rglob("*")]:
        os.chown(path, NOBODY, NOBODY)
    (prefix / "locked" / "deeper" / "data").chmod(0o000)
    (prefix / "locked" / "deeper").chmod(0o000)
    (prefix / "locked").chmod(0o000)  # the owner cannot even list it yet
    wanted = Permissions(read="group", write="group")

    def look() -> None:
        permission_changes(prefix, wanted, None)

    code, message = run_as_nobody(look)
    assert code == 3 and f"cannot list {prefix / 'locked'}: Permission denied" in message

    code, message = run_as_nobody(lambda: apply_permissions(prefix, wanted, gid=None))

    assert (code, message) == (0, "")
    assert mode_of(prefix / "locked") == 0o770
    assert mode_of(prefix / "locked" / "deeper") == 0o770
    assert mode_of(prefix / "locked" / "deeper" / "data") == 0o660


def test_a_file_of_another_owner_is_reported_not_raised_raw(shared_tmp: Path) -> None:
    prefix = shared_tmp / "prefix"
    prefix.mkdir()
    os.chown(prefix, NOBODY, NOBODY)
    (prefix / "roots-file").write_text("owned by root\n")
    (prefix / "roots-file").chmod(0o600)

    code, message = run_as_nobody(lambda: apply_permissions(prefix, Permissions(), gid=None))

    assert code == 3, message
    assert f"cannot change the mode or group of {prefix / 'roots-file'}" in message
    assert "Operation not permitted" in message
    assert "hint: run reconcile as the owner" in message
    assert mode_of(prefix / "roots-file") == 0o600
