"""The work one tarball can cause is bounded, and the end of the archive is where GNU tar says.

Each bound is exercised with low limits, so that "gigabytes" cost kilobytes here; each
refusal comes before the offending member is written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from hostile import (
    ATTACKS,
    DAG_HASH,
    NESTING_LEVELS,
    PREFIX,
    Member,
    binary_distribution,
    binary_distribution_text,
    build_tarball,
    package_body,
    parent_folders,
    spack_tarball,
)

from reconcile.archive.budget import MAX_DEPTH
from reconcile.archive.rules import MemberTable
from reconcile.archive.tar_headers import MAX_EXTENDED_BYTES, TarMember
from reconcile.archive.unpack import unpack_package
from reconcile.archive.violation import ArchiveRuleError
from reconcile.buildcache.build_info import parse_build_info
from reconcile.errors import ArchiveError
from reconcile.limits import Limits
from reconcile.safe_fs import remove_tree_at


def unpack(tarball: Path, staging: Path, **limits: int) -> Path:
    return unpack_package(
        tarball,
        staging,
        dag_hash=DAG_HASH,
        signed_size=tarball.stat().st_size,
        limits=Limits(**limits),
    ).prefix_dir


def refusal(tarball: Path, staging: Path, **limits: int) -> str:
    with pytest.raises(ArchiveError) as caught:
        unpack(tarball, staging, **limits)
    return str(caught.value)


def written_bytes(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file())


# -- the end of the archive ---------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar is the reference")
@pytest.mark.parametrize("attack", ["junk_header_in_middle", "garbage_after_gzip"])
def test_gnu_tar_and_reconcile_both_refuse_junk(attack: str, tmp_path: Path) -> None:
    tarball = ATTACKS[attack].build(tmp_path / "t.spack")
    gnu = subprocess.run(
        ["tar", "-tzf", str(tarball)], capture_output=True, check=False, timeout=60
    )
    assert gnu.returncode == 2, "GNU tar accepts it: the fixture is not junk"
    message = refusal(tarball, tmp_path / "staging")
    assert f"rule '{ATTACKS[attack].rule}'" in message


@pytest.mark.parametrize("attack", ["junk_after_end", "lone_zero_block_then_member"])
def test_only_zero_padding_may_follow_the_end(attack: str, tmp_path: Path) -> None:
    """Stricter than GNU tar, which stops reading at the end blocks (a lone zero block
    gets a warning): whatever follows would be a member nobody sees installed."""
    tarball = ATTACKS[attack].build(tmp_path / "t.spack")
    message = refusal(tarball, tmp_path / "staging")
    assert "rule 'data-after-end'" in message and "zero padding" in message


def test_members_after_junk_are_not_silently_dropped(tmp_path: Path) -> None:
    """tarfile alone stops at the junk and reports success with the members before it."""
    tarball = ATTACKS["junk_header_in_middle"].build(tmp_path / "t.spack")
    with tarfile.open(tarball, "r|gz") as plain:
        names = [m.name for m in plain]
    assert not any(n.endswith("after-junk") for n in names)  # what tarfile would do
    assert "damaged" in refusal(tarball, tmp_path / "staging")


def test_zero_padding_after_the_end_is_fine(tmp_path: Path) -> None:
    """Python's and GNU tar's writers pad to a record of 10 KiB with zeros."""
    tarball = spack_tarball(tmp_path / "t.spack", tail=bytes(20 * tarfile.BLOCKSIZE))
    prefix = unpack(tarball, tmp_path / "staging")
    assert (prefix / "share/victim/readme.txt").is_file()


def test_tarfile_written_archive_with_record_padding_is_fine(tmp_path: Path) -> None:
    source = tmp_path / "src"
    unpack(spack_tarball(tmp_path / "ref.spack"), source)
    tarball = tmp_path / "t.spack"
    with tarfile.open(tarball, "w:gz", format=tarfile.PAX_FORMAT) as out:
        out.add(source / "prefix", arcname=PREFIX)
    prefix = unpack(tarball, tmp_path / "staging")
    assert (prefix / ".spack/binary_distribution").is_file()


def test_zero_padding_is_bounded_by_the_unpack_ratio(tmp_path: Path) -> None:
    tarball = spack_tarball(tmp_path / "t.spack", tail=bytes(4 << 20))
    assert "rule 'unpacked-size'" in refusal(tarball, tmp_path / "staging", max_unpack_ratio=5)


def test_gzip_cut_before_its_trailer_is_unreadable(tmp_path: Path) -> None:
    whole = spack_tarball(tmp_path / "whole.spack").read_bytes()
    cut = tmp_path / "cut.spack"
    cut.write_bytes(whole[:-4])
    assert "rule 'unreadable-archive'" in refusal(cut, tmp_path / "staging")


def test_garbage_header_with_huge_size_is_refused(tmp_path: Path) -> None:
    """A header whose size field is not a number: an error, not the end of the archive."""
    header = bytearray(tarfile.TarInfo(f"{PREFIX}/lib/big").tobuf(tarfile.USTAR_FORMAT))
    header[124:136] = b"\xff" * 12  # the size field: garbage instead of octal digits
    members = [*parent_folders(), *package_body(), Member("", kind="raw", data=bytes(header))]
    tarball = build_tarball(tmp_path / "t.spack", [*members, binary_distribution()])
    assert "rule 'unreadable-archive'" in refusal(tarball, tmp_path / "staging")


# -- unpacked size ----------------------------------------------------------------------------


def test_zero_file_over_the_ratio_is_refused_before_it_is_written(tmp_path: Path) -> None:
    """The 2 GiB sparse/zero file in a small tarball, at 1/1000 scale: 2 MiB of zeros in a
    tarball of a few KiB, against a ratio of 20."""
    tarball = spack_tarball(
        tmp_path / "t.spack", [Member(f"{PREFIX}/lib/zeros", data=bytes(2 << 20))]
    )
    assert tarball.stat().st_size < 20_000
    staging = tmp_path / "staging"
    message = refusal(tarball, staging, max_unpack_ratio=20)
    assert "rule 'unpacked-size'" in message and "lib/zeros" in message
    assert "max_unpack_ratio" in message
    assert written_bytes(staging) < 1 << 20


def test_declared_size_is_charged_before_reading(tmp_path: Path) -> None:
    """A header claiming 2 GiB, with no data behind it: refused by size, not by a short read."""
    header = tarfile.TarInfo(f"{PREFIX}/lib/huge")
    header.size = 2 << 30
    members = [*parent_folders(), *package_body(), Member("", kind="raw", data=header.tobuf())]
    tarball = build_tarball(tmp_path / "t.spack", members)
    assert "rule 'unpacked-size'" in refusal(tarball, tmp_path / "staging")


def test_same_tarball_within_a_higher_ratio_is_installed(tmp_path: Path) -> None:
    tarball = spack_tarball(
        tmp_path / "t.spack", [Member(f"{PREFIX}/lib/zeros", data=bytes(2 << 20))]
    )
    prefix = unpack(tarball, tmp_path / "staging", max_unpack_ratio=10_000)
    assert (prefix / "lib/zeros").stat().st_size == 2 << 20


def test_hard_links_do_not_count_twice(tmp_path: Path) -> None:
    data = os.urandom(64 << 10)
    extra = [Member(f"{PREFIX}/lib/a", data=data)]
    extra += [
        Member(f"{PREFIX}/lib/l{i}", "hardlink", linkname=f"{PREFIX}/lib/a") for i in range(40)
    ]
    tarball = spack_tarball(tmp_path / "t.spack", extra)
    assert (unpack(tarball, tmp_path / "staging", max_unpack_ratio=2) / "lib/l39").is_file()


# -- members and depth --------------------------------------------------------------------------


def test_many_tiny_members_are_bounded(tmp_path: Path) -> None:
    extra = [Member(f"{PREFIX}/share/victim/f{i}", data=b"") for i in range(400)]
    tarball = spack_tarball(tmp_path / "t.spack", extra)
    staging = tmp_path / "staging"
    message = refusal(tarball, staging, max_members=100)
    assert "rule 'too-many-members'" in message and "max_members" in message
    assert sum(1 for _ in staging.rglob("*")) < 150
    assert unpack(tarball, tmp_path / "again", max_members=500).is_dir()


def test_deep_nesting_is_refused_without_recursion_error(tmp_path: Path) -> None:
    tarball = ATTACKS["deep_nesting"].build(tmp_path / "t.spack")
    staging = tmp_path / "staging"
    message = refusal(tarball, staging)
    assert "rule 'too-deep'" in message and f"at most {MAX_DEPTH}" in message
    assert len(message) < 2000  # the 2,000-character member name is shortened
    parent = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        remove_tree_at(parent, staging.name)  # what a later run does with the leftovers
    finally:
        os.close(parent)
    assert not staging.exists()


def test_the_rules_refuse_a_too_deep_name_before_walking_its_folders() -> None:
    """The depth is checked where the name is split: ``admit`` walks every folder of a
    name, which for a megabyte-long name (half a million folders) was quadratic."""
    for kind, name, linkname in (
        (b"0", "d/" * MAX_DEPTH + "f", ""),
        (b"1", "hard", "d/" * MAX_DEPTH + "f"),
    ):
        member = TarMember(
            name=name,
            linkname=linkname,
            type=kind,
            mode=0o644,
            mtime=0,
            size=0,
            sparse=False,
            header_name=name,
            header_linkname=linkname,
        )
        with pytest.raises(ArchiveRuleError) as caught:
            MemberTable().admit(member)
        assert caught.value.rule == "too-deep"
        assert f"{MAX_DEPTH + 1} folders deep" in caught.value.detail


@pytest.mark.parametrize("record", ["pax", "gnu"])
def test_a_megabyte_deep_long_name_is_refused_at_once(record: str, tmp_path: Path) -> None:
    """Half a million folders in one PAX path or GNU long name (under the 1 MiB bound on
    extended headers): a refusal naming the rule, in a message of readable length (before,
    the reader walked the folders until it ran out of memory)."""
    name = f"{PREFIX}/" + "a/" * 500_000 + "f"
    if record == "pax":
        member = Member(name, data=b"x")
    else:
        member = Member(name[:100], data=b"x", gnu_longname=name)
    tarball = spack_tarball(tmp_path / "t.spack", [member])
    message = refusal(tarball, tmp_path / "staging", max_unpack_ratio=1000)
    assert "rule 'too-deep'" in message and "500" in message
    assert len(message) < 2000


def test_extended_headers_count_towards_the_unpacked_size(tmp_path: Path) -> None:
    """A megabyte of PAX records compresses to a kilobyte: they are parsed, never written,
    and bounded by max_unpack_ratio like the data."""
    comment = "c" * (MAX_EXTENDED_BYTES - 100)
    extra = [Member(f"{PREFIX}/lib/x{n}", data=b"x", pax={"comment": comment}) for n in range(3)]
    tarball = spack_tarball(tmp_path / "t.spack", extra)
    assert tarball.stat().st_size * 50 < MAX_EXTENDED_BYTES
    message = refusal(tarball, tmp_path / "staging")
    assert "rule 'unpacked-size'" in message and "max_unpack_ratio" in message
    assert unpack(tarball, tmp_path / "again", max_unpack_ratio=2000).is_dir()


def test_nesting_up_to_the_bound_unpacks(tmp_path: Path) -> None:
    depth = MAX_DEPTH - len(PREFIX.split("/")) - 1
    folders = [f"{PREFIX}/d" + "/d" * level for level in range(depth)]
    extra = [Member(f, "dir") for f in folders] + [Member(f"{folders[-1]}/bottom", data=b"x")]
    prefix = unpack(spack_tarball(tmp_path / "t.spack", extra), tmp_path / "staging")
    assert (prefix / "/".join(["d"] * depth) / "bottom").is_file()
    assert NESTING_LEVELS > MAX_DEPTH


# -- binary_distribution (YAML) ----------------------------------------------------------------


def test_yaml_aliases_are_refused() -> None:
    text = "a: &a [x, x]\nb: [*a, *a]\n" + binary_distribution_text()[1:-2].replace(", ", "\n")
    with pytest.raises(ValueError, match="anchors or aliases"):
        parse_build_info(text)


def test_yaml_anchor_without_alias_is_refused() -> None:
    with pytest.raises(ValueError, match="anchors or aliases"):
        parse_build_info("buildpath: &p /opt\nrelative_prefix: x\n")


def test_yaml_deep_nesting_is_refused_without_crashing() -> None:
    """libyaml's composer would overflow the C stack (a segfault) on 60,000 levels."""
    text = "{buildpath: /x, relative_prefix: y, extra: " + "[" * 60_000 + "]" * 60_000 + "}"
    with pytest.raises(ValueError, match="more than 32 deep"):
        parse_build_info(text)


def test_untrusted_values_in_messages_are_bounded() -> None:
    huge = "[" + ", ".join(["[1, 2, 3]"] * 5_000) + "]"
    with pytest.raises(ValueError) as caught:
        parse_build_info(f"{{buildpath: /x, relative_prefix: y, relocate_textfiles: {huge}}}")
    assert len(str(caught.value)) < 300


def test_alias_bomb_tarball_is_refused_quickly(tmp_path: Path) -> None:
    tarball = ATTACKS["yaml_alias_bomb"].build(tmp_path / "t.spack")
    assert tarball.stat().st_size < 4096
    assert "anchors or aliases" in refusal(tarball, tmp_path / "staging")


def test_binary_distribution_over_the_metadata_cap_is_refused(tmp_path: Path) -> None:
    text = binary_distribution_text().rstrip("\n}") + ", pad: '" + "p" * 5000 + "'}\n"
    tarball = spack_tarball(tmp_path / "t.spack", metadata=binary_distribution(text=text))
    message = refusal(tarball, tmp_path / "staging", max_metadata_bytes=4096)
    assert "rule 'bad-binary-distribution'" in message and "max_metadata_bytes" in message
