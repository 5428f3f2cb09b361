"""The struct reader of ELF strings against pyelftools, the reference: real binaries compiled
here and built by Spack, hand-made files of every class and byte order, and damaged ones."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from conftest import SIGNED_CACHE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relocate_support import build_demo, root_of_length, unpack_fixture_packages

from reconcile.errors import RelocationError
from reconcile.relocate.elf import ElfString, read_elf_strings, read_elf_strings_with_pyelftools
from reconcile.relocate.elf_quick import quick_string_offsets

NAME = Path("binary")


@pytest.fixture(scope="module")
def real_binaries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Programs and libraries compiled here (RPATH, RUNPATH, own interpreter) and every
    binary of the Spack-made fixture packages."""
    base = tmp_path_factory.mktemp("elf")
    found: dict[str, bytes] = {}
    for new_dtags in (False, True):
        workspace = base / f"demo-{int(new_dtags)}"
        demo = build_demo(
            workspace,
            old_root=root_of_length(base / f"old{int(new_dtags)}", 90),
            new_dtags=new_dtags,
            cstrings=True,
            own_loader=new_dtags,
        )
        for relative in demo.build_info.relocate_binaries:
            found[f"demo-{int(new_dtags)}/{relative}"] = (demo.store / relative).read_bytes()
    for dag_hash, package in unpack_fixture_packages(SIGNED_CACHE, base / "fixtures").items():
        for relative in package.build_info.relocate_binaries:
            path = package.store / relative
            if not path.is_symlink():
                found[f"{dag_hash}/{relative}"] = path.read_bytes()
    return found


def outcome(reader: object, data: bytes) -> tuple[ElfString, ...] | str:
    try:
        return reader(NAME, data)  # type: ignore[operator, no-any-return]
    except RelocationError as error:
        return f"refused: {error.reference}"


def test_real_binaries_are_read_quickly_and_as_pyelftools_reads_them(
    real_binaries: dict[str, bytes],
) -> None:
    assert len(real_binaries) >= 6
    kinds = set()
    for name, data in real_binaries.items():
        assert quick_string_offsets(data) is not None, name
        strings = read_elf_strings(NAME, data)
        assert strings == read_elf_strings_with_pyelftools(NAME, data), name
        kinds.update(string.kind for string in strings)
    assert kinds == {"PT_INTERP", "DT_RPATH", "DT_RUNPATH"}


def handmade_elf(*, bits: int, order: str, rpath: str, runpath: str, interp: str) -> bytes:
    """A minimal ELF: one PT_LOAD over the whole file, PT_INTERP, and a dynamic table with
    DT_STRTAB, DT_RPATH and DT_RUNPATH into its string table."""
    wide = bits == 64
    header = struct.Struct(order + ("16sHHIQQQIHHHHHH" if wide else "16sHHIIIIIHHHHHH"))
    program_header = struct.Struct(order + ("IIQQQQQQ" if wide else "IIIIIIII"))
    entry = struct.Struct(order + ("qQ" if wide else "iI"))
    base = 0x400000
    interp_at = header.size + 3 * program_header.size
    interp_bytes = interp.encode() + b"\0"
    strtab_at = interp_at + len(interp_bytes)
    strtab = b"\0" + rpath.encode() + b"\0" + runpath.encode() + b"\0"
    dynamic_at = strtab_at + len(strtab)
    dynamic = b"".join(
        entry.pack(tag, value)
        for tag, value in ((5, base + strtab_at), (15, 1), (29, 2 + len(rpath)), (0, 0))
    )
    size = dynamic_at + len(dynamic)

    def segment(kind: int, offset: int, length: int) -> bytes:
        vaddr = base + offset
        if wide:
            return program_header.pack(kind, 4, offset, vaddr, vaddr, length, length, 8)
        return program_header.pack(kind, offset, vaddr, vaddr, length, length, 4, 4)

    ident = b"\x7fELF" + bytes([2 if wide else 1, 1 if order == "<" else 2, 1]) + bytes(9)
    machine = (62 if order == "<" else 43) if wide else (3 if order == "<" else 2)
    return (
        header.pack(
            ident,
            3,
            machine,
            1,
            0,
            header.size,
            0,
            0,
            header.size,
            program_header.size,
            3,
            0,
            0,
            0,
        )
        + segment(1, 0, size)
        + segment(3, interp_at, len(interp_bytes))
        + segment(2, dynamic_at, len(dynamic))
        + interp_bytes
        + strtab
        + dynamic
    )


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("order", ["<", ">"], ids=["little-endian", "big-endian"])
def test_every_class_and_byte_order(bits: int, order: str) -> None:
    data = handmade_elf(
        bits=bits, order=order, rpath="/old/r/lib", runpath="/old/r/lib64", interp="/old/ld.so"
    )
    assert quick_string_offsets(data) is not None
    strings = read_elf_strings(NAME, data)
    assert strings == read_elf_strings_with_pyelftools(NAME, data)
    assert [(s.kind, s.value) for s in strings] == [
        ("PT_INTERP", "/old/ld.so"),
        ("DT_RPATH", "/old/r/lib"),
        ("DT_RUNPATH", "/old/r/lib64"),
    ]


def _patched(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    patched = bytearray(data)
    struct.pack_into(fmt, patched, offset, *values)
    return bytes(patched)


def _unusual_files() -> dict[str, bytes]:
    good = handmade_elf(bits=64, order="<", rpath="/o/lib", runpath="/o/lib64", interp="/o/ld")
    header_size, phdr_size = 64, 56
    dynamic_at = len(good) - 4 * 16
    return {
        "unknown class": good[:4] + b"\x03" + good[5:],
        "unknown byte order": good[:5] + b"\x03" + good[6:],
        "extended numbering": _patched(good, 56, "<H", 0xFFFF),
        "program headers past the end": _patched(good, 32, "<Q", len(good) - 8),
        "short program headers": _patched(good, 54, "<H", 16),
        "section table past the end": _patched(good, 40, "<QIHHHHH", 4096, 0, 64, 56, 3, 64, 2),
        "no DT_NULL": good[: dynamic_at + 3 * 16] + struct.pack("<qQ", 1, 0),
        "string table in no segment": _patched(good, dynamic_at, "<qQ", 5, 0x10),
        "search path past the end": _patched(good, dynamic_at + 16, "<qQ", 15, 1 << 20),
        "interpreter past the end": _patched(
            good, header_size + phdr_size + 8, "<Q", len(good) + 10
        ),
        "truncated header": good[:40],
    }


@pytest.mark.parametrize("name", sorted(_unusual_files()))
def test_unusual_files_are_left_to_pyelftools(name: str) -> None:
    data = _unusual_files()[name]
    assert quick_string_offsets(data) is None
    assert outcome(read_elf_strings, data) == outcome(read_elf_strings_with_pyelftools, data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_binaries_never_read_differently(
    real_binaries: dict[str, bytes], data: st.DataObject
) -> None:
    """Bytes overwritten in the headers and tables: whenever pyelftools reads the file, the
    answer is its answer; the quick reader never refuses a file on its own. (pyelftools also
    refuses some files whose section table alone is inconsistent; the quick reader does not
    read that table, nor does the dynamic loader.)"""
    name = data.draw(st.sampled_from(sorted(real_binaries)))
    damaged = bytearray(real_binaries[name])
    reach = min(len(damaged), 0x4000)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        damaged[data.draw(st.integers(0, reach - 1))] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        del damaged[data.draw(st.integers(0, len(damaged))) :]
    damaged_bytes = bytes(damaged)
    ours = outcome(read_elf_strings, damaged_bytes)
    reference = outcome(read_elf_strings_with_pyelftools, damaged_bytes)
    if not isinstance(reference, str):
        assert ours == reference
    if isinstance(ours, str):
        assert ours == reference
