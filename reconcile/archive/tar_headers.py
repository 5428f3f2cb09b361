"""The tar header formats a ``.spack`` tarball may use, parsed from bytes: no I/O.

One 512-byte header block (ustar, GNU or old v7: the fields they share), a PAX extended
header's records and the numeric fields, each checked as strictly as GNU tar reads them
(octal digits between blanks, or GNU's base-256) and refused whole otherwise: a field that
does not parse is a damaged archive, never a zero or a guess. ``reader.py`` strings the
headers together into members.
"""

from __future__ import annotations

import re
import struct

import attrs

from reconcile.archive import violation as rules
from reconcile.archive.violation import ArchiveRuleError
from reconcile.reprs import fields_repr

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)

# Type flags (the byte at offset 156).
REGULAR = b"0"
OLD_REGULAR = b"\0"  # v7; a name ending in "/" makes it a folder
HARD_LINK = b"1"
SYMLINK = b"2"
CHARACTER_DEVICE = b"3"
BLOCK_DEVICE = b"4"
DIRECTORY = b"5"
FIFO = b"6"
CONTIGUOUS = b"7"  # a regular file to every reader
GNU_LONG_NAME = b"L"
GNU_LONG_LINK = b"K"
GNU_SPARSE = b"S"
PAX_LOCAL = b"x"
PAX_LOCAL_SOLARIS = b"X"
PAX_GLOBAL = b"g"

REGULAR_TYPES = frozenset({REGULAR, OLD_REGULAR, CONTIGUOUS, GNU_SPARSE})
# Types whose size counts no data blocks; data follows every other type, known or not.
NO_DATA_TYPES = frozenset({HARD_LINK, SYMLINK, CHARACTER_DEVICE, BLOCK_DEVICE, DIRECTORY, FIFO})
# Header types that describe the member after them, not a member of their own.
GNU_TYPES = frozenset({GNU_LONG_NAME, GNU_LONG_LINK, GNU_SPARSE})

# The most an extended header (PAX records, a GNU long name) may hold. Names stop at
# PATH_MAX (4 KiB); the records are read into memory, so a zero-filled one of gigabytes
# (a few kilobytes compressed) must not be.
MAX_EXTENDED_BYTES = 1 << 20
# mtimes os.utime can set: nanoseconds in a signed 64-bit integer (until the year 2262).
MAX_MTIME = 9_000_000_000

ENCODING = "utf-8"
ERRORS = "surrogateescape"  # undecodable bytes kept as they are, as tarfile and os do

# name, (mode uid gid size mtime chksum), type, linkname, (magic version uname gname devmajor
# devminor), prefix
_TEXT_FIELDS = struct.Struct("100s56xc100s88x155s12x")
_NUMBERS = (
    ("mode", 100, 108),
    ("uid", 108, 116),  # the owner is not used, but a field that does not parse is damage
    ("gid", 116, 124),
    ("size", 124, 136),
    ("mtime", 136, 148),
    ("devmajor", 329, 337),
    ("devminor", 337, 345),
)
_CHECKSUM_FIELD = slice(148, 156)
_MAGIC = slice(257, 263)
POSIX_MAGIC = b"ustar\0"  # "ustar  \0" is GNU's, all zeros v7's: neither has a prefix field
# Mode, uid, gid, size, mtime and checksum as writers write them: zero-padded octal.
_COMMON_NUMBERS = re.compile(
    rb"([0-7]{7})\0([0-7]{7})\0([0-7]{7})\0([0-7]{11})\0([0-7]{11})\0([0-7]{6})\0 "
)
_NO_DEVICE_NUMBERS = frozenset({bytes(16), b"0000000\0" * 2})
_SIGNED_BYTES = struct.Struct("148b8x356b")
_OCTAL_DIGITS = b"01234567"
_PAX_LENGTH_DIGITS = 20  # a record's length field, at most
_PAX_SIZE = re.compile(rb"[0-9]{1,20}")
_PAX_TIME = re.compile(rb"-?[0-9]{1,20}(?:\.[0-9]{1,30})?")


@attrs.frozen
class Header:
    """One header block's fields, as the block holds them."""

    __repr__ = fields_repr

    name: str  # the prefix field joined in front, as ustar means it
    mode: int
    size: int
    mtime: int
    type: bytes
    linkname: str
    offset: int  # of the block in the tar stream, for messages


class TarMember:
    """A member as the archive rules see it: its header with the extended records that
    apply to it (GNU long name and link, PAX local and global records) already applied."""

    __slots__ = (
        "header_linkname",
        "header_name",
        "linkname",
        "mode",
        "mtime",
        "name",
        "size",
        "sparse",
        "type",
    )

    def __init__(
        self,
        *,
        name: str,
        linkname: str,
        type: bytes,  # the type flag, as tar and tarfile name it
        mode: int,
        mtime: float,
        size: int,
        sparse: bool,
        header_name: str,
        header_linkname: str,
    ) -> None:
        self.name = name
        self.linkname = linkname
        self.type = type
        self.mode = mode
        self.mtime = mtime
        self.size = size  # bytes of data; what the header or a PAX record says
        self.sparse = sparse  # a GNU sparse file, in any of its formats
        # The name and link name of the ustar header itself, before any record replaced them.
        self.header_name = header_name
        self.header_linkname = header_linkname

    def isreg(self) -> bool:
        return self.type in REGULAR_TYPES

    def isdir(self) -> bool:
        return self.type == DIRECTORY

    def issym(self) -> bool:
        return self.type == SYMLINK

    def islnk(self) -> bool:
        return self.type == HARD_LINK

    def has_data(self) -> bool:
        """Whether data blocks follow the header: every type but links, folders and
        devices, whatever the size field says (as GNU tar and tarfile read it)."""
        return self.type not in NO_DATA_TYPES


def damaged(offset: int, reason: str) -> ArchiveRuleError:
    return ArchiveRuleError(
        rules.UNREADABLE_ARCHIVE,
        "",
        f"a header block is damaged ({reason}, at byte {offset:,} of the tar stream); "
        "expected a valid tar header or the end-of-archive blocks",
    )


def parse_header(block: bytes, offset: int) -> Header:
    """The fields of the (non-zero, complete) header block at ``offset``."""
    raw_name, kind, raw_linkname, raw_prefix = _TEXT_FIELDS.unpack(block)
    common = _COMMON_NUMBERS.fullmatch(block, 100, 156)
    if common is not None and block[329:345] in _NO_DEVICE_NUMBERS:
        # Zero-padded octal, as tarfile and GNU tar write every field: the same values as
        # the general parse below, without its work.
        mode, size, mtime = int(common[1], 8), int(common[4], 8), int(common[5], 8)
        _check_checksum(block, int(common[6], 8), offset)
    else:
        mode, size, mtime = _general_numbers(block, offset)
    name = text(raw_name)
    if kind == OLD_REGULAR and name.endswith("/"):
        kind = DIRECTORY
    if kind == DIRECTORY:
        name = name.rstrip("/")
    if raw_prefix[0] and kind not in GNU_TYPES:
        if block[_MAGIC] != POSIX_MAGIC:
            # GNU tar joins the prefix only to a POSIX ustar header's name (the bytes hold
            # times in its own format); tarfile joins it to any: two places for one member.
            raise damaged(offset, "a name prefix in a header that is not POSIX ustar")
        name = f"{text(raw_prefix)}/{name}"
    return Header(
        name=name,
        mode=mode,
        size=size,
        mtime=mtime,
        type=kind,
        linkname=text(raw_linkname),
        offset=offset,
    )


def _general_numbers(block: bytes, offset: int) -> tuple[int, int, int]:
    """Mode, size and mtime, every numeric field checked (and the checksum)."""
    try:
        recorded = number(block[_CHECKSUM_FIELD], "checksum", offset)
    except ArchiveRuleError:
        raise damaged(offset, "bad checksum field") from None
    _check_checksum(block, recorded, offset)
    values = {what: number(block[start:end], what, offset) for what, start, end in _NUMBERS}
    mode, size, mtime = values["mode"], values["size"], values["mtime"]
    if mode < 0:
        raise damaged(offset, f"negative mode {mode}")
    if size < 0:
        raise damaged(offset, f"negative size {size}")
    check_mtime(mtime, offset)
    return mode, size, mtime


def _check_checksum(block: bytes, recorded: int, offset: int) -> None:
    """The sum of the block's bytes, the checksum field counted as blanks; some old tars
    summed signed bytes, which GNU tar and tarfile accept too."""
    unsigned = 256 + sum(block) - sum(block[_CHECKSUM_FIELD])
    if recorded != unsigned and recorded != 256 + sum(_SIGNED_BYTES.unpack(block)):
        raise damaged(offset, "bad checksum")


def number(field: bytes, what: str, offset: int) -> int:
    """A numeric header field: octal digits between blanks, ended by NUL or the field's
    end (blank: 0), or GNU's base-256 (a first byte of 0x80, or 0xff for negatives)."""
    first = field[0]
    if first == 0x80:
        return int.from_bytes(field[1:], "big")
    if first == 0xFF:
        return int.from_bytes(field[1:], "big") - (1 << (8 * (len(field) - 1)))
    end = field.find(0)
    digits = (field if end < 0 else field[:end]).strip()
    if digits.strip(_OCTAL_DIGITS):
        raise damaged(offset, f"the {what} field {field!r} is not an octal number")
    return int(digits, 8) if digits else 0


def check_mtime(mtime: float, offset: int) -> None:
    if not -MAX_MTIME <= mtime <= MAX_MTIME:
        raise damaged(offset, f"mtime {mtime} is out of range")


def text(field: bytes) -> str:
    """A string field: up to its first NUL."""
    end = field.find(0)
    return (field if end < 0 else field[:end]).decode(ENCODING, ERRORS)


def parse_pax(data: bytes, offset: int) -> dict[str, str]:
    """The records ``<length> <keyword>=<value>\\n`` of a PAX extended header, every byte
    of ``data`` in one (a record whose length does not end on its newline is damage).
    A keyword given twice in one header is refused: readers disagree on which one wins."""
    records: dict[str, str] = {}
    position = 0
    while position < len(data):
        space = data.find(b" ", position, position + _PAX_LENGTH_DIGITS + 1)
        length_field = data[position:space] if space > position else b""
        if not length_field.isdigit():
            raise damaged(offset, f"a PAX record at {position} has no length")
        end = position + int(length_field)
        record = data[space + 1 : end - 1]
        if end > len(data) or end <= space + 1 or data[end - 1] != 0x0A:
            raise damaged(offset, f"a PAX record at {position} has a bad length")
        equals = record.find(b"=")
        if equals <= 0:
            raise damaged(offset, f"a PAX record at {position} has no keyword")
        keyword = record[:equals].decode(ENCODING, ERRORS)
        if keyword in records:
            raise damaged(offset, f"the PAX keyword {keyword!r} is given twice")
        records[keyword] = record[equals + 1 :].decode(ENCODING, ERRORS)
        position = end
    return records


def pax_size(value: str, offset: int) -> int:
    raw = value.encode(ENCODING, ERRORS)
    if not _PAX_SIZE.fullmatch(raw):
        raise damaged(offset, f"the PAX size {value!r} is not a size")
    return int(raw)


def pax_mtime(value: str, offset: int) -> float:
    raw = value.encode(ENCODING, ERRORS)
    if not _PAX_TIME.fullmatch(raw):
        raise damaged(offset, f"the PAX mtime {value!r} is not a time")
    mtime = float(raw)
    check_mtime(mtime, offset)
    return mtime


def padded(size: int) -> int:
    """``size`` rounded up to whole blocks."""
    return -(-size // BLOCK) * BLOCK
