"""Where the interpreter and search paths of an ordinary ELF file are, read with ``struct``.

pyelftools takes milliseconds per file (it builds objects for every header and section);
this reads only the program headers and the dynamic table, which is all the dynamic loader
and relocation use. It answers only for a file whose structures all lie plainly inside it;
anything unusual (an unknown class or byte order, extended numbering, a table that runs past
the end, a dynamic table without its terminator, a string without its NUL) gets ``None``,
and the caller asks pyelftools, which stays the reference. When pyelftools reads a file,
this gives the same answer (the tests hold it to that, on real and on damaged binaries);
unlike pyelftools it does not judge the section table beyond its bounds, which neither the
loader nor relocation reads.
"""

from __future__ import annotations

import mmap
import struct
from typing import Literal

StringKind = Literal["DT_RPATH", "DT_RUNPATH", "PT_INTERP"]

_ELF_MAGIC = b"\x7fELF"
_PT_LOAD, _PT_DYNAMIC, _PT_INTERP = 1, 2, 3
_DT_NULL, _DT_STRTAB = 0, 5
_SEARCH_PATH_TAGS: dict[int, StringKind] = {15: "DT_RPATH", 29: "DT_RUNPATH"}
_PN_XNUM = 0xFFFF  # the real number of program headers is elsewhere: left to pyelftools


class _Format:
    """The struct layouts of one ELF class (32 or 64 bits) in one byte order."""

    def __init__(self, order: str, *, bits: int):
        wide = bits == 64
        # e_phoff, e_shoff, then e_phentsize, e_phnum, e_shentsize, e_shnum (after e_ident).
        self.header = struct.Struct(order + ("HHIQQQIHHHHHH" if wide else "HHIIIIIHHHHHH"))
        self.program_header = struct.Struct(order + ("IIQQQQQQ" if wide else "IIIIIIII"))
        self.dynamic_entry = struct.Struct(order + ("qQ" if wide else "iI"))
        self.section_header_size = 64 if wide else 40
        self.wide = wide

    def segment(self, data: bytes | mmap.mmap, offset: int) -> tuple[int, int, int, int]:
        """``(p_type, p_offset, p_vaddr, p_filesz)`` of the program header at ``offset``."""
        fields = self.program_header.unpack_from(data, offset)
        if self.wide:
            p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = fields[:6]
        else:
            p_type, p_offset, p_vaddr, _paddr, p_filesz = fields[:5]
        return p_type, p_offset, p_vaddr, p_filesz


_FORMATS = {
    (bits_code, order_code): _Format(order, bits=bits)
    for bits_code, bits in ((1, 32), (2, 64))
    for order_code, order in ((1, "<"), (2, ">"))
}


def quick_string_offsets(data: bytes | mmap.mmap) -> list[tuple[StringKind, int]] | None:
    """The file offsets of the PT_INTERP string and of the DT_RPATH/DT_RUNPATH strings, in
    the order pyelftools yields them; None when the file is not plainly well formed."""
    size = len(data)
    if size < 16 or data[:4] != _ELF_MAGIC:
        return None
    layout = _FORMATS.get((data[4], data[5]))
    if layout is None or size < 16 + layout.header.size:
        return None
    header = layout.header.unpack_from(data, 16)
    phoff, shoff = header[4], header[5]
    phentsize, phnum, shentsize, shnum, shstrndx = header[8:13]
    if phnum == _PN_XNUM or (phnum and phentsize < layout.program_header.size):
        return None
    if phoff + phnum * phentsize > size:
        return None
    # pyelftools also reads the section headers (to find the dynamic section): leave it
    # every file whose section table is not plainly inside it.
    if shoff and not (
        shnum
        and shentsize >= layout.section_header_size
        and shoff + shnum * shentsize <= size
        and shstrndx < shnum
    ):
        return None
    segments = [layout.segment(data, phoff + index * phentsize) for index in range(phnum)]
    loads = [
        (vaddr, filesz, offset) for kind, offset, vaddr, filesz in segments if kind == _PT_LOAD
    ]
    found: list[tuple[StringKind, int]] = []
    for kind, offset, _vaddr, filesz in segments:
        if kind == _PT_INTERP:
            found.append(("PT_INTERP", offset))
        elif kind == _PT_DYNAMIC and filesz:
            search_paths = _search_path_offsets(data, layout, offset, filesz, loads)
            if search_paths is None:
                return None
            found += search_paths
    if any(offset >= size or data.find(b"\0", offset) == -1 for _, offset in found):
        return None
    return found


def _search_path_offsets(
    data: bytes | mmap.mmap,
    layout: _Format,
    offset: int,
    filesz: int,
    loads: list[tuple[int, int, int]],
) -> list[tuple[StringKind, int]] | None:
    entry_size = layout.dynamic_entry.size
    end = min(offset + filesz, len(data))
    wanted: list[tuple[StringKind, int]] = []
    string_table = None
    position = offset
    while True:
        if position + entry_size > end:
            return None  # no DT_NULL inside the segment: pyelftools reads on, so let it
        tag, value = layout.dynamic_entry.unpack_from(data, position)
        position += entry_size
        if tag == _DT_NULL:
            break
        if tag == _DT_STRTAB and string_table is None:
            string_table = value
        elif tag in _SEARCH_PATH_TAGS:
            wanted.append((_SEARCH_PATH_TAGS[tag], value))
    if not wanted:
        return []
    if string_table is None:
        return None
    # The first loadable segment whose file bytes hold the address, as pyelftools maps it.
    table_offset = next(
        (
            string_table - vaddr + segment_offset
            for vaddr, filesz_, segment_offset in loads
            if vaddr <= string_table < vaddr + filesz_
        ),
        None,
    )
    if table_offset is None:
        return None
    return [(kind, table_offset + value) for kind, value in wanted]
