"""Reading a gzip tar once, front to back, remembering the names its ustar headers carried.

Python's ``tarfile`` takes a damaged header after the first member for the end of the
archive and drops every member after it; GNU tar refuses such an archive (exit 2). Here a
header block that is neither valid nor all zeros is an error, and after the end-of-archive
blocks only zero padding may follow, up to the end of the gzip stream.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, cast

from reconcile.archive import gunzip
from reconcile.archive import violation as rules
from reconcile.archive.gunzip import GunzipStream
from reconcile.archive.violation import ArchiveRuleError

# What tarfile reads of the decompressed stream at a time. Small on purpose: tarfile copies
# what is left of the chunk on every 512-byte header it reads, so a large chunk costs more
# than it saves.
DECOMPRESS_CHUNK = 16 << 10

# PAX keywords that rename a member; in a *global* header they would rename every later one.
NAME_KEYWORDS = frozenset({"path", "linkpath", "GNU.sparse.name"})

# What a damaged or truncated gzip tar raises while it is read.
READ_ERRORS: tuple[type[Exception], ...] = (tarfile.TarError, EOFError, *gunzip.ERRORS)
# What the trailer after the end-of-archive blocks is read in.
TRAILER_CHUNK = 64 << 10
# tarfile's header errors (not in typeshed): an all-zero block, a damaged or cut one.
_END_BLOCK: type[Exception] = vars(tarfile)["EOFHeaderError"]
_BAD_HEADER: tuple[type[Exception], ...] = (
    vars(tarfile)["InvalidHeaderError"],
    vars(tarfile)["TruncatedHeaderError"],
)


class HeaderRecordingTarInfo(tarfile.TarInfo):
    """A ``TarInfo`` that also keeps the name and link name of its own ustar header block,
    before any PAX or GNU long-name record replaced them, so the two can be compared."""

    header_name: str
    header_linkname: str

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> HeaderRecordingTarInfo:
        try:
            info = super().frombuf(buf, encoding, errors)
        except _END_BLOCK:
            raise  # an all-zero block: the end of the archive
        except _BAD_HEADER as exc:
            # tarfile would end the archive here, silently dropping what follows.
            raise ArchiveRuleError(
                rules.UNREADABLE_ARCHIVE,
                "",
                f"a header block is damaged ({exc}); expected a valid tar header or "
                "the end-of-archive blocks",
            ) from None
        info.header_name = info.name
        info.header_linkname = info.linkname
        return info


@contextmanager
def open_stream(tarball: Path | bytes) -> Iterator[tarfile.TarFile]:
    """The gzip tarball (a file, or its bytes already read) as a forward-only ``TarFile``
    (no seeking back, no member cache reads)."""
    with ExitStack() as stack:
        if isinstance(tarball, bytes):
            raw: IO[bytes] = io.BytesIO(tarball)
        else:
            raw = stack.enter_context(Path(tarball).open("rb", buffering=0))
        try:
            # Closed by the ``with`` below; only the opening is guarded here.
            archive = tarfile.open(  # noqa: SIM115
                fileobj=cast(IO[bytes], GunzipStream(raw)),  # read() is all it uses
                mode="r|",
                bufsize=DECOMPRESS_CHUNK,
                tarinfo=HeaderRecordingTarInfo,
            )
        except READ_ERRORS as exc:
            raise ArchiveRuleError(
                rules.UNREADABLE_ARCHIVE, "", f"not a gzip-compressed tar ({exc})"
            ) from None
        with archive:
            yield archive


def iter_members(archive: tarfile.TarFile) -> Iterator[HeaderRecordingTarInfo]:
    """Every member in archive order; refuses a global PAX header that renames members."""
    while True:
        try:
            info = archive.next()
        except READ_ERRORS as exc:
            raise ArchiveRuleError(
                rules.UNREADABLE_ARCHIVE, "", f"the tar stream is damaged ({exc})"
            ) from None
        if info is None:
            return
        # tarfile keeps every member it read; the rules keep what they need.
        vars(archive)["members"].clear()
        overriding = NAME_KEYWORDS.intersection(archive.pax_headers)
        if overriding:
            raise ArchiveRuleError(
                rules.PAX_NAME_OVERRIDE,
                info.name,
                f"a global PAX header sets {sorted(overriding)}, which renames every later member",
            )
        assert isinstance(info, HeaderRecordingTarInfo)
        yield info


def member_data(archive: tarfile.TarFile, info: tarfile.TarInfo) -> IO[bytes]:
    """The data of the current regular-file member, read straight from the stream."""
    data = archive.extractfile(info)
    assert data is not None  # only called for regular files
    return data


def check_trailer(archive: tarfile.TarFile, charge: Callable[[int], None]) -> None:
    """After the last member: only zero bytes may follow, and nothing after the gzip stream.

    ``charge`` is told how many bytes were read, so that a flood of zeros stays bounded.
    """
    stream = archive.fileobj
    assert stream is not None
    try:
        while chunk := stream.read(TRAILER_CHUNK):
            charge(len(chunk))
            if chunk.count(0) != len(chunk):
                raise ArchiveRuleError(
                    rules.DATA_AFTER_END,
                    "",
                    "non-zero data follows the end-of-archive blocks; expected only zero "
                    "padding (GNU tar refuses this archive too)",
                )
    except READ_ERRORS as exc:
        raise ArchiveRuleError(
            rules.UNREADABLE_ARCHIVE, "", f"the data after the last member is damaged ({exc})"
        ) from None
    _check_gzip_end(stream)


def _check_gzip_end(stream: object) -> None:
    """The gzip stream must end, its trailer checked, and the file with it."""
    source = getattr(stream, "fileobj", None)
    if isinstance(source, GunzipStream):
        source.check_end()
