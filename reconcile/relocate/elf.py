"""ELF binaries: the RPATH/RUNPATH search paths and the PT_INTERP interpreter.

A string that does not grow is rewritten in place in the file (``.dynstr`` for the search
paths), padded with NUL bytes; a longer one needs room the file does not have, so
``patchelf`` rewrites it (see ``patchelf.py``).
"""

from __future__ import annotations

import io
import mmap
import os
from pathlib import Path
from typing import IO, Literal, cast

import attrs
from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSegment
from elftools.elf.elffile import ELFFile

from reconcile.errors import RelocationError
from reconcile.relocate.cstrings import Span
from reconcile.relocate.elf_quick import StringKind, quick_string_offsets
from reconcile.relocate.files import ByteEdit
from reconcile.relocate.prefix_map import PrefixMap
from reconcile.reprs import fields_repr

SearchPathTag = Literal["DT_RPATH", "DT_RUNPATH"]

_ELF_MAGIC = b"\x7fELF"
_MACH_O_MAGICS = (
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",
)


@attrs.frozen(kw_only=True)
class ElfString:
    """A NUL-terminated string of the ELF that relocation may rewrite."""

    __repr__ = fields_repr

    kind: StringKind
    offset: int  # file offset of the first byte
    value: str

    @property
    def span(self) -> Span:
        return (self.offset, self.offset + len(os.fsencode(self.value)) + 1)


@attrs.frozen(kw_only=True)
class ElfPlan:
    """What relocating one ELF file takes: in-place edits, and what only patchelf can do."""

    __repr__ = fields_repr

    edits: tuple[ByteEdit, ...]
    strings: tuple[ElfString, ...]  # every search path and interpreter, relocated or not
    grown_search_path: tuple[SearchPathTag, str] | None  # the tag to keep, the new value
    grown_interpreter: str | None

    @property
    def needs_patchelf(self) -> bool:
        return self.grown_search_path is not None or self.grown_interpreter is not None

    @property
    def skip(self) -> tuple[Span, ...]:
        """The spans the C-string scan must leave alone: they are handled here."""
        return tuple(string.span for string in self.strings)


def check_elf(path: Path, data: bytes | mmap.mmap) -> None:
    """``RelocationError`` unless ``data`` (the bytes of ``path``) starts like an ELF file."""
    head = bytes(data[:4])
    if head == _ELF_MAGIC:
        return
    found = "a Mach-O file" if head in _MACH_O_MAGICS else f"a file starting with {head!r}"
    raise RelocationError(
        f"{path} is listed as a binary to relocate: found {found}, expected an ELF file",
        hint="reconcile relocates Linux (ELF) binaries only; use a binary cache built for Linux",
        reference="not-elf",
    )


def read_elf_strings(path: Path, data: bytes | mmap.mmap) -> tuple[ElfString, ...]:
    """The RPATH/RUNPATH and PT_INTERP strings of the ELF file ``path`` whose bytes are
    ``data``, with their file offsets.

    Read with ``struct`` from the program headers and the dynamic table when they are plainly
    well formed (``elf_quick``), else by pyelftools, which refuses a damaged file.
    """
    quick = quick_string_offsets(data)
    if quick is not None:
        return tuple(_string_at(data, offset, kind) for kind, offset in quick)
    return read_elf_strings_with_pyelftools(path, data)


def read_elf_strings_with_pyelftools(path: Path, data: bytes | mmap.mmap) -> tuple[ElfString, ...]:
    """``read_elf_strings`` by pyelftools: for files ``elf_quick`` does not answer for, and
    the reference the tests hold it to."""
    try:
        # An mmap reads and seeks like a file, which is all pyelftools asks of a stream.
        stream = io.BytesIO(data) if isinstance(data, bytes) else cast(IO[bytes], data)
        elf = ELFFile(stream)
        strings: list[ElfString] = []
        for segment in elf.iter_segments():
            if segment["p_type"] == "PT_INTERP":
                strings.append(_string_at(data, segment["p_offset"], "PT_INTERP"))
            elif isinstance(segment, DynamicSegment):
                strings.extend(_search_paths(elf, segment, data))
    # pyelftools also fails with OverflowError (offsets beyond any file) and AssertionError
    # (a string table it cannot find) on some damaged files.
    except (ELFError, ValueError, IndexError, OverflowError, AssertionError) as error:
        raise RelocationError(
            f"{path} could not be read as an ELF file: {error}",
            hint="the tarball holds a damaged binary; rebuild or re-push the package",
            reference="bad-elf",
        ) from error
    return tuple(strings)


def _search_paths(
    elf: ELFFile, segment: DynamicSegment, data: bytes | mmap.mmap
) -> list[ElfString]:
    tags = list(segment.iter_tags())
    wanted = [tag for tag in tags if tag.entry.d_tag in ("DT_RPATH", "DT_RUNPATH")]
    if not wanted:
        return []
    string_table = next((tag.entry.d_ptr for tag in tags if tag.entry.d_tag == "DT_STRTAB"), None)
    if string_table is None:
        raise ValueError("the dynamic section has a search path but no string table")
    # DT_STRTAB is an address: map it to the file offset through the loadable segments, which
    # works even when section headers are stripped.
    table_offset = next(iter(elf.address_offsets(string_table)), None)
    if table_offset is None:
        raise ValueError(f"the string table address {string_table:#x} is in no loaded segment")
    return [_string_at(data, table_offset + tag.entry.d_val, tag.entry.d_tag) for tag in wanted]


def _string_at(data: bytes | mmap.mmap, offset: int, kind: StringKind) -> ElfString:
    end = data.find(b"\0", offset)
    if end == -1:
        raise ValueError(f"the {kind} string at offset {offset} is not NUL-terminated")
    return ElfString(kind=kind, offset=offset, value=os.fsdecode(bytes(data[offset:end])))


def plan_elf(path: Path, data: bytes | mmap.mmap, prefix_map: PrefixMap) -> ElfPlan:
    """The edits that point the search paths and the interpreter of ``path`` to the new
    prefixes. Entries that do not start with an old prefix (``$ORIGIN/..``, ``/usr/lib``)
    stay as they are."""
    strings = read_elf_strings(path, data)
    edits: list[ByteEdit] = []
    grown_search_paths: list[tuple[SearchPathTag, str]] = []
    grown_interpreter = None
    for string in strings:
        new_value = _relocated(string, prefix_map)
        if new_value == string.value:
            continue
        old_bytes, new_bytes = os.fsencode(string.value), os.fsencode(new_value)
        if len(new_bytes) <= len(old_bytes):
            padding = b"\0" * (len(old_bytes) - len(new_bytes))
            edits.append(ByteEdit(offset=string.offset, data=new_bytes + padding))
        elif string.kind == "PT_INTERP":
            grown_interpreter = new_value
        else:
            grown_search_paths.append((string.kind, new_value))
    if len(grown_search_paths) > 1 or (
        grown_search_paths and sum(s.kind != "PT_INTERP" for s in strings) > 1
    ):
        raise RelocationError(
            f"{path} has both DT_RPATH and DT_RUNPATH, and a new search path is longer than "
            "the old one; patchelf can rewrite only one of them",
            hint="use an install root no longer than the root the binaries were built in "
            "(Spack's padded_length), so the search paths can be rewritten in place",
            reference="cannot-grow-string",
        )
    return ElfPlan(
        edits=tuple(edits),
        strings=strings,
        grown_search_path=grown_search_paths[0] if grown_search_paths else None,
        grown_interpreter=grown_interpreter,
    )


def _relocated(string: ElfString, prefix_map: PrefixMap) -> str:
    if string.kind == "PT_INTERP":
        return prefix_map.relocate_path(string.value) or string.value
    entries = string.value.split(":")
    return ":".join(prefix_map.relocate_path(entry) or entry for entry in entries)
