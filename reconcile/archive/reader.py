"""Reading a gzip tar once, front to back, remembering the names its ustar headers carried."""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from reconcile.archive import violation as rules
from reconcile.archive.violation import ArchiveRuleError

# Reads of the compressed file: large, so a 10 MB tarball costs a handful of system calls.
READ_BUFFER = 1 << 20
# What tarfile decompresses at a time. Small on purpose: tarfile copies what is left of the
# decompressed chunk on every 512-byte header it reads, so a large chunk costs more than it saves.
DECOMPRESS_CHUNK = 16 << 10

# PAX keywords that rename a member; in a *global* header they would rename every later one.
NAME_KEYWORDS = frozenset({"path", "linkpath", "GNU.sparse.name"})

# What a damaged or truncated gzip tar raises while it is read.
READ_ERRORS = (tarfile.TarError, EOFError, zlib.error)


class HeaderRecordingTarInfo(tarfile.TarInfo):
    """A ``TarInfo`` that also keeps the name and link name of its own ustar header block,
    before any PAX or GNU long-name record replaced them, so the two can be compared."""

    header_name: str
    header_linkname: str

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> HeaderRecordingTarInfo:
        info = super().frombuf(buf, encoding, errors)
        info.header_name = info.name
        info.header_linkname = info.linkname
        return info


@contextmanager
def open_stream(tarball: Path) -> Iterator[tarfile.TarFile]:
    """The tarball as a forward-only ``TarFile`` (no seeking back, no member cache reads)."""
    with Path(tarball).open("rb", buffering=READ_BUFFER) as raw:
        try:
            # Closed by the ``with`` below; only the opening is guarded here.
            archive = tarfile.open(  # noqa: SIM115
                fileobj=raw, mode="r|gz", bufsize=DECOMPRESS_CHUNK, tarinfo=HeaderRecordingTarInfo
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
