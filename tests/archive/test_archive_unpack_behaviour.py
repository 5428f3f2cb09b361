"""What a well-formed archive becomes: modes, mtimes, links, folders, long names."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hostile import (
    DAG_HASH,
    MTIME,
    PREFIX,
    Member,
    binary_distribution,
    binary_distribution_text,
    build_tarball,
    spack_tarball,
)

from reconcile.archive.unpack import restore_directory_modes, unpack_package
from reconcile.archive.writer import MAX_OPEN_DEPTH

REPO = Path(__file__).resolve().parents[2]


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_modes_follow_the_umask(tmp_path: Path) -> None:
    """Run in a child with umask 077: files keep only the owner's bits from the archive."""
    tarball = spack_tarball(
        tmp_path / "t.spack",
        [Member(f"{PREFIX}/share/victim/private", data=b"x", mode=0o640)],
    )
    staging = tmp_path / "staging"
    script = (
        "import os, sys, json, stat\n"
        "os.umask(0o077)\n"
        "from pathlib import Path\n"
        "from reconcile.archive.unpack import unpack_package\n"
        "p = unpack_package(Path(sys.argv[1]), Path(sys.argv[2])).prefix_dir\n"
        "names = ['bin/tool', 'share/victim/readme.txt', 'share/victim/private', 'bin', '.']\n"
        "print(json.dumps({n: stat.S_IMODE((p / n).stat().st_mode) for n in names}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tarball), str(staging)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    modes = json.loads(result.stdout)
    assert modes == {
        "bin/tool": 0o700,
        "share/victim/readme.txt": 0o600,
        "share/victim/private": 0o600,
        "bin": 0o700,
        ".": 0o700,
    }


def test_modes_and_mtimes_are_the_archives(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    tarball = spack_tarball(
        tmp_path / "t.spack",
        [
            Member(f"{PREFIX}/share/victim/readonly", "dir", mode=0o555, mtime=1_234_567_890),
            Member(f"{PREFIX}/share/victim/readonly/inside", data=b"in", mode=0o444),
            Member(f"{PREFIX}/share/victim/odd", data=b"x", mode=0o604, mtime=1_111_111_111),
        ],
    )
    prefix = unpack_package(tarball, tmp_path / "staging").prefix_dir
    folder = prefix / "share/victim/readonly"
    assert mode_of(folder) == 0o555 & ~mask
    assert folder.stat().st_mtime == 1_234_567_890  # set after its content was written
    assert (folder / "inside").read_bytes() == b"in"
    assert mode_of(folder / "inside") == 0o444 & ~mask
    assert mode_of(prefix / "share/victim/odd") == 0o604 & ~mask
    assert (prefix / "share/victim/odd").stat().st_mtime == 1_111_111_111
    assert (prefix / "bin/tool").stat().st_mtime == MTIME
    assert (prefix / "lib/libvictim.so").lstat().st_mtime == MTIME
    assert (prefix / "bin").stat().st_mtime == MTIME


def test_directory_modes_can_wait_for_relocation(tmp_path: Path) -> None:
    tarball = spack_tarball(
        tmp_path / "t.spack", [Member(f"{PREFIX}/share/victim/locked", "dir", mode=0o500)]
    )
    package = unpack_package(tarball, tmp_path / "staging", restore_modes=False)
    locked = package.prefix_dir / "share/victim/locked"
    assert mode_of(locked) == 0o700  # writable while relocation runs
    assert mode_of(package.prefix_dir) == 0o700
    listed = {d.parts: d.mode for d in package.directory_modes}
    assert listed[()] == 0o755 and listed[("share", "victim", "locked")] == 0o500
    (locked / "relocated.tmp").write_text("relocation could write here")
    restore_directory_modes(package.prefix_dir, package.directory_modes)
    assert mode_of(locked) == 0o500
    assert locked.stat().st_mtime == MTIME


def test_hard_links_share_one_file(tmp_path: Path) -> None:
    tarball = spack_tarball(
        tmp_path / "t.spack",
        [Member(f"{PREFIX}/bin/tool-again", "hardlink", linkname=f"{PREFIX}/bin/tool")],
    )
    prefix = unpack_package(tarball, tmp_path / "staging").prefix_dir
    first, second = prefix / "bin/tool", prefix / "bin/tool-again"
    assert first.stat().st_ino == second.stat().st_ino
    assert second.read_bytes() == b"#!/bin/sh\necho tool\n"
    assert subprocess.run([str(second)], capture_output=True, text=True).stdout == "tool\n"


def test_folders_implied_by_members_are_created(tmp_path: Path) -> None:
    """No folder members at all; the prefix's own folder member comes after its content."""
    members = [
        Member(f"{PREFIX}/bin/tool", data=b"#!/bin/sh\n", mode=0o755),
        Member(PREFIX, "dir", mode=0o750),
        binary_distribution(),
    ]
    mask = os.umask(0o022)
    os.umask(mask)
    package = unpack_package(build_tarball(tmp_path / "t.spack", members), tmp_path / "staging")
    assert (package.prefix_dir / "bin/tool").read_bytes() == b"#!/bin/sh\n"
    assert mode_of(package.prefix_dir) == 0o750 & ~mask
    assert mode_of(package.prefix_dir / "bin") == 0o755 & ~mask
    assert package.member_prefix == PREFIX


def test_shortest_binary_distribution_marks_the_prefix(tmp_path: Path) -> None:
    """A package may ship another package's metadata as data; the outermost marker wins."""
    nested = f"{PREFIX}/share/victim/vendored/.spack/binary_distribution"
    package = unpack_package(
        spack_tarball(tmp_path / "t.spack", [Member(nested, data=b"not: [yaml")]),
        tmp_path / "staging",
        dag_hash=DAG_HASH,
    )
    assert package.member_prefix == PREFIX
    assert package.build_info.old_prefix == "/" + PREFIX
    assert (package.prefix_dir / "share/victim/vendored/.spack/binary_distribution").is_file()


def test_long_and_non_ascii_names_from_python_tarfile(tmp_path: Path) -> None:
    """PAX records that only carry what the ustar fields cannot hold are fine."""
    long_name = f"{PREFIX}/share/victim/" + "/".join(["deep-folder-name"] * 12) + "/leaf.txt"
    tarball = spack_tarball(
        tmp_path / "t.spack",
        [
            Member(long_name, data=b"long\n"),
            Member(f"{PREFIX}/share/victim/café.txt", data=b"non-ascii\n"),
            Member(f"{PREFIX}/share/victim/long-link", "symlink", linkname="x" * 150),
        ],
    )
    prefix = unpack_package(tarball, tmp_path / "staging").prefix_dir
    assert (prefix / long_name[len(PREFIX) + 1 :]).read_bytes() == b"long\n"
    assert (prefix / "share/victim/café.txt").read_bytes() == b"non-ascii\n"
    assert os.readlink(prefix / "share/victim/long-link") == "x" * 150


@pytest.mark.parametrize("tar_format", ["gnu", "posix", "ustar"])
def test_archives_made_by_gnu_tar(tar_format: str, tmp_path: Path) -> None:
    """GNU tar's long-name records, PAX headers and hard links are accepted as they are."""
    source = tmp_path / "source"
    # ustar has no long-link record: keep hard link targets within its 100 bytes there.
    padding = "p" * (8 if tar_format == "ustar" else 60)
    deep = f"opt/root-padded-{padding}/pkg-1.0-" + "h" * 32
    prefix = source / deep
    (prefix / ".spack").mkdir(parents=True)
    (prefix / "lib" / "sub").mkdir(parents=True)
    (prefix / "lib" / "sub" / "libthing.so.1").write_bytes(b"\x7fELF thing\n")
    os.link(prefix / "lib/sub/libthing.so.1", prefix / "lib/sub/libthing-hard.so.1")
    (prefix / "lib" / "sub" / "libthing.so").symlink_to("libthing.so.1")
    (prefix / ".spack" / "binary_distribution").write_text(binary_distribution_text(deep, "h" * 32))
    tarball = tmp_path / "made-by-tar.spack"
    names = [deep.split("/")[0]] if tar_format != "ustar" else [f"{deep}/lib", f"{deep}/.spack"]
    made = subprocess.run(
        ["tar", f"--format={tar_format}", "-czf", str(tarball), "-C", str(source), *names],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    package = unpack_package(tarball, tmp_path / "staging", dag_hash="h" * 32)
    lib = package.prefix_dir / "lib" / "sub"
    assert (lib / "libthing-hard.so.1").stat().st_ino == (lib / "libthing.so.1").stat().st_ino
    assert os.readlink(lib / "libthing.so") == "libthing.so.1"
    assert package.member_prefix == deep


def test_writer_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    """Defence in depth: even if a symlink appeared in staging behind the rules' back
    (another process, a bug), writing through it fails instead of landing outside."""
    from reconcile.archive.writer import SafeTree

    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "tree"
    root.mkdir()
    (root / "planted").symlink_to(outside)
    (root / "file-link").symlink_to(outside / "target")
    with SafeTree(root, umask=0o022) as tree:
        with pytest.raises(OSError):
            tree.make_directory(("planted", "inner"))
        with pytest.raises(OSError):
            tree.write_file(("planted", "x"), io.BytesIO(b"pwned"), mode=0o644, mtime_ns=0)
        with pytest.raises(OSError):
            tree.write_file(("file-link",), io.BytesIO(b"pwned"), mode=0o644, mtime_ns=0)
    assert list(outside.iterdir()) == []


def test_folder_modes_are_restored_at_every_depth_and_in_every_branch(tmp_path: Path) -> None:
    """Modes are given innermost first along one kept-open path: a chain deeper than the
    folders kept open, read-only folders above others, and sibling branches."""
    chain = [f"{PREFIX}/deep" + "/d" * level for level in range(MAX_OPEN_DEPTH + 6)]
    extra = [
        Member(folder, "dir", mode=0o555 if i % 2 else 0o750) for i, folder in enumerate(chain)
    ]
    extra += [
        Member(f"{PREFIX}/a", "dir", mode=0o500),
        Member(f"{PREFIX}/a/b", "dir", mode=0o710),
        Member(f"{PREFIX}/a/b/c", "dir", mode=0o555),
        Member(f"{PREFIX}/a/b2", "dir", mode=0o700),
        Member(f"{PREFIX}/a/b/c/file", data=b"x"),
    ]
    package = unpack_package(spack_tarball(tmp_path / "t.spack", extra), tmp_path / "s")
    mask = os.umask(0)
    os.umask(mask)
    for member in extra:
        if member.kind == "dir":
            relative = member.name.removeprefix(PREFIX + "/")
            found = stat.S_IMODE((package.prefix_dir / relative).stat().st_mode)
            assert found == (member.mode or 0) & ~mask, relative
