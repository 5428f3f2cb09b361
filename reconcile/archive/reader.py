"""Reading a gzip tar once, front to back: its members, their data, and what follows the end.

The headers are parsed here (``tar_headers``), not by Python's ``tarfile``, whose per-header
work (a ``TarInfo`` per extended header, a copy of the buffer per block) was a fifth of an
unpack. The reader understands ustar, GNU long names and links, and PAX local and global
headers (every ``.spack`` tarball holds one per member); anything else that is not a member
is damage, refused by name, never skipped.

Stricter than ``tarfile`` where it guesses: a damaged header block after the first member
is an error (``tarfile`` takes it for the end and drops the rest; GNU tar refuses such an
archive), after the end-of-archive blocks only zero padding may follow up to the end of the
gzip stream, and records that readers resolve differently are refused: a PAX record or GNU
long name that renames a member away from its header's name (``rules``), two PAX headers or
long names for one member, a global header renaming or resizing every later member, a
folder, link or device that declares data.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from reconcile.archive import gunzip
from reconcile.archive import violation as rules
from reconcile.archive.gunzip import GunzipStream
from reconcile.archive.tar_headers import (
    BLOCK,
    DIRECTORY,
    GNU_LONG_LINK,
    GNU_LONG_NAME,
    GNU_SPARSE,
    MAX_EXTENDED_BYTES,
    PAX_GLOBAL,
    PAX_LOCAL,
    PAX_LOCAL_SOLARIS,
    ZERO_BLOCK,
    Header,
    TarMember,
    damaged,
    padded,
    parse_header,
    parse_pax,
    pax_mtime,
    pax_size,
    text,
)
from reconcile.archive.violation import ArchiveRuleError

# What a damaged or truncated gzip stream raises while it is read (the reader turns them
# into refusals; the unpacker catches them too, in case).
READ_ERRORS: tuple[type[Exception], ...] = gunzip.ERRORS

# PAX keywords that rename a member (GNU.sparse.name: GNU's name for a sparse file).
NAME_KEYWORDS = ("path", "GNU.sparse.name")
# Global records that would rename or resize every later member: refused.
GLOBAL_REFUSED = frozenset({"path", "linkpath", "GNU.sparse.name"})
GLOBAL_DAMAGE = frozenset({"size", "GNU.sparse.size", "GNU.sparse.realsize"})
SPARSE_KEYWORD = "GNU.sparse."


@contextmanager
def open_tar(
    tarball: Path | bytes, *, charge: Callable[[int], None] | None = None
) -> Iterator[TarReader]:
    """The gzip tarball (a file, or its bytes already read and verified) as a reader;
    ``charge`` is told the size of each extended header before it is read."""
    if isinstance(tarball, bytes):
        yield TarReader(GunzipStream(io.BytesIO(tarball)), charge)
        return
    with Path(tarball).open("rb", buffering=0) as raw:
        yield TarReader(GunzipStream(raw), charge)


def _free(size: int) -> None:
    """Charges nothing."""


class TarReader:
    """The members of one tar stream, in archive order, each with its data read (or
    skipped) before the next header is."""

    def __init__(self, stream: GunzipStream, charge: Callable[[int], None] | None = None) -> None:
        self._stream = stream
        # Extended headers are parsed, never written: a flood of them (a megabyte of PAX
        # records compresses to a kilobyte) is bounded like the data, through ``charge``.
        self._charge = charge or _free
        self._chunk = b""  # the inflated piece being read
        self._at = 0  # how much of it is read
        self.offset = 0  # bytes of the tar stream read so far
        self._data_left = 0  # of the current member's data
        self._padding = 0  # after it
        self._member = ""  # the current member's name, for messages
        # The one global PAX record that applies to later members (the others that would
        # are refused, the rest ignored): only it is kept, so that thousands of global
        # headers cost neither memory nor a merge per member.
        self._global_mtime: str | None = None

    # -- members --------------------------------------------------------------------------

    def members(self) -> Iterator[TarMember]:
        """Every member in archive order, up to the end-of-archive blocks (or the end of a
        stream that has none, as GNU tar and ``tarfile`` read it)."""
        while True:
            self._skip(self._data_left + self._padding, "the member's data")
            self._data_left = self._padding = 0
            self._member = ""
            member = self._next_member()
            if member is None:
                return
            self._member = member.name
            if member.has_data():
                self._data_left, self._padding = member.size, padded(member.size) - member.size
            yield member

    def data(self) -> Iterator[memoryview]:
        """The current member's data, in pieces (views of the inflated stream)."""
        while self._data_left:
            if self._at >= len(self._chunk) and not self._fill():
                raise self._cut_short("inside the member's data")
            start = self._at
            take = min(self._data_left, len(self._chunk) - start)
            self._at = start + take
            self._data_left -= take
            self.offset += take
            yield memoryview(self._chunk)[start : start + take]

    def _next_member(self) -> TarMember | None:
        """The next member's header with its extended headers applied; None at the end."""
        pax: dict[str, str] | None = None
        long_name: str | None = None
        long_link: str | None = None
        while True:
            offset = self.offset
            block = self._read(BLOCK)
            pending = pax is not None or long_name is not None or long_link is not None
            if len(block) < BLOCK:
                if block:
                    raise damaged(offset, "the tar stream ends inside a header block")
                if pending:
                    raise damaged(offset, "the tar stream ends after an extended header")
                if offset == 0:
                    raise ArchiveRuleError(rules.UNREADABLE_ARCHIVE, "", "the tar stream is empty")
                return None  # no end-of-archive blocks: the end of the data ends the archive
            if block == ZERO_BLOCK:
                if pending:
                    raise damaged(offset, "the end-of-archive block follows an extended header")
                return None
            header = parse_header(block, offset)
            kind = header.type
            if kind in (PAX_LOCAL, PAX_LOCAL_SOLARIS):
                if pax is not None:
                    raise damaged(offset, "a second PAX header for one member")
                pax = parse_pax(self._extended(header), offset)
            elif kind == PAX_GLOBAL:
                if pending:
                    raise damaged(offset, "a global PAX header inside a member's headers")
                self._add_globals(parse_pax(self._extended(header), offset), offset)
            elif kind == GNU_LONG_NAME:
                if long_name is not None:
                    raise damaged(offset, "a second GNU long name for one member")
                long_name = text(self._extended(header))
            elif kind == GNU_LONG_LINK:
                if long_link is not None:
                    raise damaged(offset, "a second GNU long link for one member")
                long_link = text(self._extended(header))
            else:
                return self._apply(header, pax or {}, long_name, long_link)

    def _apply(
        self, header: Header, pax: dict[str, str], long_name: str | None, long_link: str | None
    ) -> TarMember:
        """The member ``header`` describes, renamed and resized by its extended headers
        (global PAX records first, then the member's own, as ``tarfile`` applies them)."""
        records = pax
        if self._global_mtime is not None and "mtime" not in pax:
            records = {**pax, "mtime": self._global_mtime}
        offset = header.offset
        name = _one_name(
            header.name, [long_name, *(records.get(key) for key in NAME_KEYWORDS)], "name"
        )
        if "path" in records:
            name = name.rstrip("/")
        elif long_name is not None and header.type == DIRECTORY:
            name = name.removesuffix("/")
        linkname = _one_name(header.linkname, [long_link, records.get("linkpath")], "link")
        size = pax_size(records["size"], offset) if "size" in records else header.size
        mtime = pax_mtime(records["mtime"], offset) if "mtime" in records else header.mtime
        member = TarMember(
            name=name,
            linkname=linkname,
            type=header.type,
            mode=header.mode,
            mtime=mtime,
            size=size,
            sparse=header.type == GNU_SPARSE or any(k.startswith(SPARSE_KEYWORD) for k in records),
            header_name=header.name,
            header_linkname=header.linkname,
        )
        if size and not member.has_data():
            raise damaged(
                offset,
                f"{name!r} is not a regular file but declares {size:,} bytes of data; "
                "readers disagree on whether they follow",
            )
        return member

    def _extended(self, header: Header) -> bytes:
        """The data of an extended header (PAX records, a GNU long name), bounded."""
        if header.size > MAX_EXTENDED_BYTES:
            raise damaged(
                header.offset,
                f"an extended header of {header.size:,} bytes; expected at most "
                f"{MAX_EXTENDED_BYTES:,}",
            )
        self._charge(header.size)
        data = self._read(header.size)
        if len(data) < header.size:
            raise damaged(header.offset, "the tar stream ends inside an extended header")
        self._skip(padded(header.size) - header.size, "an extended header's padding")
        return data

    def _add_globals(self, records: dict[str, str], offset: int) -> None:
        renaming = GLOBAL_REFUSED.intersection(records)
        if renaming:
            raise ArchiveRuleError(
                rules.PAX_NAME_OVERRIDE,
                "",
                f"a global PAX header sets {sorted(renaming)}, which renames every later member",
            )
        resizing = GLOBAL_DAMAGE.intersection(records) or {
            key for key in records if key.startswith(SPARSE_KEYWORD)
        }
        if resizing:
            raise damaged(
                offset, f"a global PAX header sets {sorted(resizing)} for every later member"
            )
        if "mtime" in records:
            pax_mtime(records["mtime"], offset)
            self._global_mtime = records["mtime"]

    # -- after the last member ------------------------------------------------------------

    def check_end(self, charge: Callable[[int], None]) -> None:
        """After the last member: only zero bytes may follow, up to the end of the gzip
        stream, and nothing after it. ``charge`` is told how many bytes were read, so that
        a flood of zeros stays bounded."""
        rest = self._chunk[self._at :]
        self._at = len(self._chunk)
        while True:
            if rest:
                charge(len(rest))
                if rest.count(0) != len(rest):
                    raise ArchiveRuleError(
                        rules.DATA_AFTER_END,
                        "",
                        "non-zero data follows the end-of-archive blocks; expected only zero "
                        "padding (GNU tar refuses this archive too)",
                    )
            if not self._fill():
                break
            rest, self._at = self._chunk, len(self._chunk)
        self._stream.check_end()

    # -- the inflated stream --------------------------------------------------------------

    def _fill(self) -> bool:
        """The next inflated piece; False at the end of the stream."""
        try:
            piece = self._stream.next_piece()
        except READ_ERRORS as exc:
            what = "not a gzip-compressed tar" if self.offset == 0 else "the gzip stream is damaged"
            raise ArchiveRuleError(
                rules.UNREADABLE_ARCHIVE, self._member, f"{what} ({exc})"
            ) from None
        self._chunk, self._at = piece, 0
        return bool(piece)

    def _read(self, size: int) -> bytes:
        """``size`` bytes, or fewer at the end of the stream."""
        end = self._at + size
        if end <= len(self._chunk):
            piece = self._chunk[self._at : end]
            self._at = end
            self.offset += size
            return piece
        pieces = [self._chunk[self._at :]]
        self._at = len(self._chunk)
        wanted = size - len(pieces[0])
        while wanted and self._fill():
            taken = self._chunk[:wanted]
            self._at = len(taken)
            pieces.append(taken)
            wanted -= len(taken)
        self.offset += size - wanted
        return b"".join(pieces)

    def _skip(self, size: int, what: str) -> None:
        while size:
            if self._at >= len(self._chunk) and not self._fill():
                raise self._cut_short(f"inside {what}")
            step = min(size, len(self._chunk) - self._at)
            self._at += step
            self.offset += step
            size -= step

    def _cut_short(self, where: str) -> ArchiveRuleError:
        return ArchiveRuleError(
            rules.UNREADABLE_ARCHIVE,
            self._member,
            f"the tar stream ends {where}, at byte {self.offset:,}; the archive is cut short",
        )


def _one_name(header: str, records: list[str | None], what: str) -> str:
    """The name or link target the records give (the header's when none does); records
    that disagree with each other are refused (readers pick different ones)."""
    given = {
        record.rstrip("/") if what == "name" else record for record in records if record is not None
    }
    if len(given) > 1:
        raise ArchiveRuleError(
            rules.PAX_NAME_OVERRIDE,
            header,
            f"the member's extended headers give it different {what}s {sorted(given)}; "
            "expected one",
        )
    for record in records:
        if record is not None:
            return record
    return header
