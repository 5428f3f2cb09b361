"""Text relocation: boundaries, overlapping prefixes, and how files are rewritten."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from reconcile.relocate.prefix_map import PrefixMap
from reconcile.relocate.text import TextRelocator


def relocator(*pairs: tuple[str, str]) -> TextRelocator:
    return TextRelocator.for_map(PrefixMap(pairs=pairs))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/old/prefix", "/new"),
        ("prefix=/old/prefix\n", "prefix=/new\n"),
        ('exec /old/prefix/bin/app "$@"', 'exec /new/bin/app "$@"'),
        ("a:/old/prefix/lib:b", "a:/new/lib:b"),
        ("'/old/prefix' \"/old/prefix\"", "'/new' \"/new\""),
        ("-L/old/prefix/lib -I/old/prefix/include", "-L/new/lib -I/new/include"),
        # Inside a longer path or word: not this prefix.
        ("/x/old/prefix", "/x/old/prefix"),
        ("word/old/prefix", "word/old/prefix"),
        ("../old/prefix", "../old/prefix"),
        ("x-L/old/prefix", "x-L/old/prefix"),
        ("/old/prefix/old/prefix", "/new/old/prefix"),
    ],
)
def test_a_prefix_is_replaced_only_where_a_path_starts(text: str, expected: str) -> None:
    assert relocator(("/old/prefix", "/new")).relocate_bytes(text.encode()) == expected.encode()


def test_the_longest_old_prefix_wins_whatever_the_map_order() -> None:
    text = b"/root/pkg-dep/lib:/root/pkg/lib:/root/other"
    expected = b"/D/lib:/P/lib:/R/other"
    pairs = [("/root/pkg-dep", "/D"), ("/root/pkg", "/P"), ("/root", "/R")]
    assert relocator(*pairs).relocate_bytes(text) == expected
    assert relocator(*reversed(pairs)).relocate_bytes(text) == expected


def test_a_new_prefix_that_contains_an_old_one_is_not_replaced_again() -> None:
    pairs = (("/opt/a", "/opt/a/b/opt/a"), ("/opt", "/opt/opt"))
    assert relocator(*pairs).relocate_bytes(b"/opt/a/x /opt/y") == b"/opt/a/b/opt/a/x /opt/opt/y"


def test_a_file_is_rewritten_with_its_mode_and_without_leftovers(tmp_path: Path) -> None:
    script = tmp_path / "bin" / "tool"
    script.parent.mkdir()
    script.write_text('#!/bin/sh\nexec /build/root/pkg/bin/real "$@"\n')
    script.chmod(0o751)

    changed = relocator(("/build/root/pkg", "/p")).relocate_file(script)

    assert changed
    assert script.read_text() == '#!/bin/sh\nexec /p/bin/real "$@"\n'
    assert stat.S_IMODE(script.stat().st_mode) == 0o751
    assert os.listdir(script.parent) == ["tool"]


def test_a_file_without_old_prefixes_is_left_alone(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("nothing to see at /x/build/root\n")
    before = text.stat()

    assert not relocator(("/build/root", "/n")).relocate_file(text)
    after = text.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_hard_linked_file_is_rewritten_in_place_so_every_name_sees_it(tmp_path: Path) -> None:
    # Spack lists one name per hard-linked file (hardlinks_deduped): a rename would leave
    # the other names with the old contents.
    first = tmp_path / "first.pc"
    second = tmp_path / "second.pc"
    first.write_text("prefix=/build/root/pkg\n")
    os.link(first, second)

    relocator(("/build/root/pkg", "/a/much/longer/new/prefix")).relocate_file(first)

    assert second.read_text() == "prefix=/a/much/longer/new/prefix\n"
    assert first.stat().st_ino == second.stat().st_ino


def test_a_read_only_file_in_a_read_only_folder_is_rewritten(tmp_path: Path) -> None:
    folder = tmp_path / "share"
    folder.mkdir()
    text = folder / "message.txt"
    text.write_text("lives in /build/root/pkg/share\n")
    text.chmod(0o444)
    folder.chmod(0o555)
    try:
        relocator(("/build/root/pkg", "/p")).relocate_file(text)
    finally:
        folder.chmod(0o755)

    assert text.read_text() == "lives in /p/share\n"
    assert stat.S_IMODE(text.stat().st_mode) == 0o444


def test_a_file_is_rewritten_in_place_and_cut_to_its_new_length(tmp_path: Path) -> None:
    """The prefix is in private staging: the same inode is rewritten, no temporary file."""
    config = tmp_path / "tool.conf"
    config.write_text("root=/build/root/a/much/longer/old/prefix/etc\n" * 3)
    before = config.stat()

    assert relocator(("/build/root/a/much/longer/old/prefix", "/p")).relocate_file(config)

    assert config.read_text() == "root=/p/etc\n" * 3
    after = config.stat()
    assert (after.st_ino, after.st_nlink, after.st_size) == (before.st_ino, 1, 12 * 3)
    assert os.listdir(tmp_path) == ["tool.conf"]


def test_hard_links_see_a_rewrite_that_grows_and_one_that_shrinks(tmp_path: Path) -> None:
    names = [tmp_path / "a.pc", tmp_path / "b.pc", tmp_path / "c.pc"]
    names[0].write_text("prefix=/build/root/pkg\nlibdir=${prefix}/lib\n")
    for other in names[1:]:
        os.link(names[0], other)

    relocator(("/build/root/pkg", "/a/much/longer/new/prefix")).relocate_file(names[1])
    assert {n.read_text() for n in names} == {
        "prefix=/a/much/longer/new/prefix\nlibdir=${prefix}/lib\n"
    }
    relocator(("/a/much/longer/new/prefix", "/p")).relocate_file(names[2])
    assert {n.read_text() for n in names} == {"prefix=/p\nlibdir=${prefix}/lib\n"}
    assert len({n.stat().st_ino for n in names}) == 1


def test_a_symlink_is_never_written_through(tmp_path: Path) -> None:
    """Listed files are checked to be regular files; the rewrite refuses a link anyway."""
    outside = tmp_path / "outside.txt"
    outside.write_text("/build/root/pkg stays\n")
    link = tmp_path / "link.txt"
    link.symlink_to(outside)

    with pytest.raises(OSError):
        relocator(("/build/root/pkg", "/p")).relocate_file(link)
    assert outside.read_text() == "/build/root/pkg stays\n"
