"""C strings inside binaries: same-length rewrites, Spack's two forms, and refusal to grow."""

from __future__ import annotations

import mmap
from pathlib import Path

from reconcile.relocate.cstrings import SUFFIX_WINDOW, CStringPlan, CStringRelocator
from reconcile.relocate.prefix_map import PrefixMap

OLD = "/build/root/__placeholder__/pkg-1.0-abc"


def plan(
    data: bytes | mmap.mmap, *pairs: tuple[str, str], skip: tuple[tuple[int, int], ...] = ()
) -> CStringPlan:
    return CStringRelocator.for_map(PrefixMap(pairs=pairs)).plan(data, skip=skip)


def applied(data: bytes, result: CStringPlan) -> bytes:
    edited = bytearray(data)
    for edit in result.edits:
        edited[edit.offset : edit.offset + len(edit.data)] = edit.data
    assert len(edited) == len(data)
    return bytes(edited)


def test_a_long_tail_is_kept_and_the_prefix_padded_with_slashes() -> None:
    data = b"\x00junk" + OLD.encode() + b"/share/data.txt\x00more"
    result = plan(data, (OLD, "/n/pkg"))

    shrink = len(OLD) - len("/n/pkg")
    assert applied(data, result) == b"\x00junk" + b"/" * shrink + b"/n/pkg/share/data.txt\x00more"
    assert result.growing == ()


def test_a_short_tail_moves_when_the_string_shrinks_by_more_than_the_window() -> None:
    data = OLD.encode() + b"/lib\x00next string\x00"
    result = plan(data, (OLD, "/n/pkg"))

    shrink = len(OLD) - len("/n/pkg")
    assert shrink > SUFFIX_WINDOW
    assert applied(data, result) == b"/n/pkg/lib" + b"\x00" * (shrink + 1) + b"next string\x00"


def test_a_small_shrink_is_padded_even_with_a_short_tail() -> None:
    new = OLD[:-3]
    data = b"\x00" + OLD.encode() + b"\x00"
    assert applied(data, plan(data, (OLD, new))) == b"\x00///" + new.encode() + b"\x00"


def test_a_string_without_a_nul_in_the_window_is_padded() -> None:
    data = OLD.encode() + b"/share/long/tail/without/end"
    assert applied(data, plan(data, (OLD, "/n"))).endswith(b"/n/share/long/tail/without/end")


def test_several_prefixes_in_one_string_are_each_rewritten() -> None:
    other = "/build/root/__placeholder__/dep-2.0-xyz"
    data = f"{other}/lib:{OLD}/lib\x00".encode()
    result = plan(data, (OLD, "/n/pkg"), (other, "/n/dep"), ("/build/root", "/n"))

    text = applied(data, result).rstrip(b"\x00").decode()
    entries = text.split(":")
    assert entries[0].lstrip("/") == "n/dep/lib"
    assert entries[1].lstrip("/") == "n/pkg/lib"


def test_a_growing_prefix_is_reported_and_not_edited() -> None:
    data = b"x" + OLD.encode() + b"\x00" + OLD.encode() + b"/lib\x00"
    longer = OLD + "/and/more"
    result = plan(data, (OLD, longer))

    assert result.edits == ()
    assert [(g.offset, g.old, g.new) for g in result.growing] == [
        (1, OLD, longer),
        (len(OLD) + 2, OLD, longer),
    ]


def test_skipped_spans_are_left_alone() -> None:
    data = OLD.encode() + b"\x00" + OLD.encode() + b"\x00"
    second = len(OLD) + 1
    result = plan(data, (OLD, "/n"), skip=((second, second + len(OLD) + 1),))

    assert [edit.offset for edit in result.edits] == [0]


def test_a_memory_mapped_file_is_scanned_like_bytes(tmp_path: Path) -> None:
    binary = tmp_path / "blob"
    data = b"\x7fELF" + b"\x00" * 100 + OLD.encode() + b"/bin/x\x00"
    binary.write_bytes(data)
    with binary.open("rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as m:
        assert plan(m, (OLD, "/n")) == plan(data, (OLD, "/n"))
