"""The file lists of binary_distribution are checked before they are trusted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconcile.buildcache.build_info import BuildInfo
from reconcile.errors import RelocationError
from reconcile.relocate.package import relocate_package
from reconcile.relocate.prefix_map import PrefixMap

PREFIX_MAP = PrefixMap(pairs=(("/build/root/pkg", "/n/pkg"),))


def build_info(*, textfiles: tuple[str, ...] = (), binaries: tuple[str, ...] = ()) -> BuildInfo:
    return BuildInfo(
        buildpath="/build/root",
        old_prefix="/build/root/pkg",
        relative_prefix="pkg",
        relocate_textfiles=textfiles,
        relocate_binaries=binaries,
        relocate_links=(),
        hash_to_prefix={},
    )


@pytest.mark.parametrize("listed", ["../outside.txt", "/etc/passwd", "a/../../outside.txt"])
def test_a_path_leaving_the_prefix_is_refused(tmp_path: Path, listed: str) -> None:
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    (tmp_path / "outside.txt").write_text("/build/root/pkg\n")

    with pytest.raises(RelocationError) as caught:
        relocate_package(prefix, build_info(textfiles=(listed,)), PREFIX_MAP)

    assert caught.value.reference == "bad-relocation-list"
    assert (tmp_path / "outside.txt").read_text() == "/build/root/pkg\n"


def test_a_path_through_a_symlinked_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "file.txt").write_text("/build/root/pkg\n")
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    (prefix / "share").symlink_to(outside)

    with pytest.raises(RelocationError, match="through a symlink"):
        relocate_package(prefix, build_info(textfiles=("share/file.txt",)), PREFIX_MAP)
    assert (outside / "file.txt").read_text() == "/build/root/pkg\n"


def test_a_missing_listed_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(RelocationError, match=r"lib/libgone\.so"):
        relocate_package(tmp_path, build_info(binaries=("lib/libgone.so",)), PREFIX_MAP)


def test_a_path_through_a_symlinked_folder_deeper_down_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "file.txt").write_text("/build/root/pkg\n")
    prefix = tmp_path / "prefix"
    (prefix / "share").mkdir(parents=True)
    (prefix / "share" / "doc").symlink_to(outside)

    with pytest.raises(RelocationError, match="through a symlink"):
        relocate_package(prefix, build_info(textfiles=("share/doc/file.txt",)), PREFIX_MAP)
    assert (outside / "file.txt").read_text() == "/build/root/pkg\n"


def test_a_path_through_a_regular_file_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "share").write_text("a file, not a folder\n")
    with pytest.raises(RelocationError, match=r"share/file\.txt.*not in the unpacked prefix"):
        relocate_package(tmp_path, build_info(textfiles=("share/file.txt",)), PREFIX_MAP)


def test_a_listed_symlink_is_left_to_the_link_relocation(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("at /build/root/pkg\n")
    (tmp_path / "alias.txt").symlink_to("/build/root/pkg/real.txt")

    relocate_package(tmp_path, build_info(textfiles=("alias.txt", "real.txt")), PREFIX_MAP)

    assert (tmp_path / "real.txt").read_text() == "at /n/pkg\n"
    assert (tmp_path / "alias.txt").readlink() == Path("/n/pkg/real.txt")


def test_a_binary_that_is_not_elf_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tool").write_text("#!/bin/sh\necho /build/root/pkg\n")
    (tmp_path / "empty").write_bytes(b"")
    for name in ("tool", "empty"):
        with pytest.raises(RelocationError, match="expected an ELF file") as caught:
            relocate_package(tmp_path, build_info(binaries=(name,)), PREFIX_MAP)
        assert caught.value.reference == "not-elf"


def test_a_damaged_elf_is_refused(tmp_path: Path) -> None:
    (tmp_path / "broken").write_bytes(b"\x7fELF\x02\x01\x01" + b"\xff" * 20)
    with pytest.raises(RelocationError) as caught:
        relocate_package(tmp_path, build_info(binaries=("broken",)), PREFIX_MAP)
    assert caught.value.reference == "bad-elf"
    assert "broken" in caught.value.message


def test_a_file_listed_under_two_hard_linked_names_is_relocated_once(tmp_path: Path) -> None:
    (tmp_path / "a.pc").write_text("prefix=/build/root/pkg\n")
    os.link(tmp_path / "a.pc", tmp_path / "b.pc")
    # The new prefix contains the old one: a second pass would replace it again.
    growing_map = PrefixMap(pairs=(("/build/root/pkg", "/build/root/pkg/v2"),))

    relocate_package(tmp_path, build_info(textfiles=("a.pc", "b.pc")), growing_map)

    assert (tmp_path / "b.pc").read_text() == "prefix=/build/root/pkg/v2\n"
