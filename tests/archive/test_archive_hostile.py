"""Every hostile tarball is refused with the rule it breaks, and nothing lands outside staging."""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

import pytest
from hostile import ATTACKS, DAG_HASH, ESCAPED, PREFIX, Member, build_tarball, spack_tarball

from reconcile.archive.unpack import check_symlinks, unpack_package
from reconcile.errors import ArchiveError

NEW_PREFIX = "/opt/new-root/victim-1.0"
NEW_DEPENDENCY = "/opt/new-root/dependency-2.0"


def snapshot(root: Path, skip: Path) -> dict[str, tuple[int, int, str]]:
    """Every path below ``root`` except below ``skip``: (mode, size, link target)."""
    seen = {}
    for folder, dirs, files in os.walk(root):
        if Path(folder) == skip or skip in Path(folder).parents:
            continue
        for name in dirs + files:
            path = Path(folder, name)
            if path == skip:
                continue
            info = path.lstat()
            target = os.readlink(path) if path.is_symlink() else ""
            seen[str(path)] = (info.st_mode, info.st_size, target)
    return seen


def refuse(tarball: Path, staging: Path) -> ArchiveError:
    with pytest.raises(ArchiveError) as caught:
        unpack_package(tarball, staging, dag_hash=DAG_HASH, signed_size=tarball.stat().st_size)
    return caught.value


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_is_refused_and_nothing_escapes(name: str, tmp_path: Path) -> None:
    attack = ATTACKS[name]
    tarball = attack.build(tmp_path / f"{name}.spack")
    staging = tmp_path / "staging"
    before = snapshot(tmp_path, staging)

    if attack.stage == "unpack":
        error = refuse(tarball, staging)
        message = str(error)
        assert f"rule '{attack.rule}'" in message
        assert str(tarball) in message
        assert error.hint is not None and "hostile" in error.hint
        assert error.reference == "unsafe-archive"
    else:
        unpacked = unpack_package(
            tarball, staging, dag_hash=DAG_HASH, signed_size=tarball.stat().st_size
        )
        with pytest.raises(ArchiveError) as caught:
            check_symlinks(
                unpacked.prefix_dir, final_prefix=NEW_PREFIX, allowed_prefixes=(NEW_DEPENDENCY,)
            )
        assert attack.rule in str(caught.value)
        assert str(unpacked.prefix_dir) in str(caught.value)

    assert snapshot(tmp_path, staging) == before
    assert not os.path.lexists(f"/tmp/{ESCAPED}")
    assert not [p for p in tmp_path.rglob(ESCAPED) if staging not in p.parents]


def test_messages_name_the_member(tmp_path: Path) -> None:
    tarball = ATTACKS["setuid_file"].build(tmp_path / "setuid.spack")
    message = str(refuse(tarball, tmp_path / "staging"))
    assert f"member '{PREFIX}/bin/su-helper'" in message
    assert "set-uid" in message and "4755" in message


def test_write_through_symlink_never_follows_it(tmp_path: Path) -> None:
    """The symlink itself may be created in staging; the file behind it never is."""
    target = tmp_path / "victim-folder"
    target.mkdir()
    tarball = spack_tarball(
        tmp_path / "t.spack",
        [
            Member(f"{PREFIX}/lib/out", "symlink", linkname=str(target)),
            Member(f"{PREFIX}/lib/out/planted", data=b"pwned\n"),
        ],
    )
    assert "rule 'through-symlink'" in str(refuse(tarball, tmp_path / "staging"))
    assert list(target.iterdir()) == []


def test_symlink_over_implied_folder_is_a_duplicate(tmp_path: Path) -> None:
    """A member implies its folder; a later symlink of that name would redirect it."""
    members = [
        Member(f"{PREFIX}/.spack/binary_distribution", data=b"{}"),  # implies every folder
        Member(f"{PREFIX}/.spack", "symlink", linkname="/tmp"),
    ]
    message = str(refuse(build_tarball(tmp_path / "t.spack", members), tmp_path / "staging"))
    assert "rule 'duplicate-name'" in message and "implied" in message


@pytest.mark.parametrize(
    "spelling", [f"./{PREFIX}/bin/tool", f"{PREFIX}//bin/./tool", f"{PREFIX}/bin/tool/"]
)
def test_other_spellings_of_a_name_are_duplicates(spelling: str, tmp_path: Path) -> None:
    tarball = spack_tarball(tmp_path / "t.spack", [Member(spelling, data=b"evil\n")])
    assert "rule 'duplicate-name'" in str(refuse(tarball, tmp_path / "staging"))


@pytest.mark.parametrize("name", ["", ".", "./", "//"])
def test_empty_names_are_refused(name: str, tmp_path: Path) -> None:
    tarball = spack_tarball(tmp_path / "t.spack", [Member(name, data=b"x")])
    error = refuse(tarball, tmp_path / "staging")
    assert "rule 'empty-name'" in str(error) or "rule 'absolute-name'" in str(error)


def test_hard_link_to_a_later_member_is_refused(tmp_path: Path) -> None:
    tarball = spack_tarball(
        tmp_path / "t.spack",
        [
            Member(f"{PREFIX}/lib/early", "hardlink", linkname=f"{PREFIX}/lib/late"),
            Member(f"{PREFIX}/lib/late", data=b"x\n"),
        ],
    )
    assert "rule 'hard-link-target'" in str(refuse(tarball, tmp_path / "staging"))


def test_hard_link_to_a_file_outside_the_prefix_is_refused(tmp_path: Path) -> None:
    """The target is an earlier regular file, but outside the prefix: refused at the end."""
    tarball = spack_tarball(
        tmp_path / "t.spack",
        [
            Member("opt/hostile/shared.txt", data=b"x\n"),
            Member(f"{PREFIX}/lib/shared", "hardlink", linkname="opt/hostile/shared.txt"),
        ],
    )
    assert "rule 'outside-prefix'" in str(refuse(tarball, tmp_path / "staging"))


def test_prefix_marker_needs_a_prefix(tmp_path: Path) -> None:
    """``.spack/binary_distribution`` at the archive root marks no prefix."""
    tarball = build_tarball(tmp_path / "t.spack", [Member(".spack/binary_distribution", data=b"")])
    assert "rule 'missing-binary-distribution'" in str(refuse(tarball, tmp_path / "staging"))


def test_second_prefix_in_one_archive_is_outside(tmp_path: Path) -> None:
    other = "opt/hostile/other-2.0-" + "z" * 32
    tarball = spack_tarball(
        tmp_path / "t.spack",
        [Member(f"{other}/.spack/binary_distribution", data=b"{}"), Member(f"{other}/x", data=b"")],
    )
    message = str(refuse(tarball, tmp_path / "staging"))
    assert "rule 'outside-prefix'" in message and other in message


def test_not_gzip_is_unreadable(tmp_path: Path) -> None:
    tarball = tmp_path / "t.spack"
    tarball.write_bytes(b"this is not a tarball at all" * 40)
    assert "rule 'unreadable-archive'" in str(refuse(tarball, tmp_path / "staging"))


def test_truncated_tarball_is_unreadable(tmp_path: Path) -> None:
    whole = spack_tarball(
        tmp_path / "whole.spack", [Member(f"{PREFIX}/lib/big", data=os.urandom(300_000))]
    )
    cut = tmp_path / "cut.spack"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert "rule 'unreadable-archive'" in str(refuse(cut, tmp_path / "staging"))


def test_gzip_of_garbage_is_unreadable(tmp_path: Path) -> None:
    tarball = tmp_path / "t.spack"
    with gzip.open(tarball, "wb") as out:
        out.write(b"\x01" * 2048)
    assert "rule 'unreadable-archive'" in str(refuse(tarball, tmp_path / "staging"))


def test_unknown_member_type_is_refused(tmp_path: Path) -> None:
    tarball = spack_tarball(tmp_path / "t.spack", [Member(f"{PREFIX}/lib/odd", kind="Z")])
    message = str(refuse(tarball, tmp_path / "staging"))
    assert "rule 'special-file'" in message and "unknown type" in message


@pytest.mark.parametrize("tar_format", ["gnu", "posix"])
def test_sparse_files_made_by_gnu_tar_are_refused(tar_format: str, tmp_path: Path) -> None:
    """GNU sparse members (old 'S' type, or PAX GNU.sparse records that rename the member)."""
    prefix = tmp_path / "source" / PREFIX
    (prefix / ".spack").mkdir(parents=True)
    (prefix / ".spack" / "binary_distribution").write_text("{}")
    with (prefix / "holes").open("wb") as sparse:
        sparse.truncate(4 << 20)
        sparse.seek(0, os.SEEK_END)
        sparse.write(b"end\n")
    tarball = tmp_path / "sparse.spack"
    subprocess.run(
        [
            "tar",
            "-S",
            f"--format={tar_format}",
            "-czf",
            str(tarball),
            "-C",
            str(tmp_path / "source"),
            "opt",
        ],
        check=True,
    )
    message = str(refuse(tarball, tmp_path / "staging"))
    assert "rule 'sparse-file'" in message or "rule 'pax-name-override'" in message
    assert "holes" in message
