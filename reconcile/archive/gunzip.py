"""The gzip layer of a ``.spack`` tarball, decompressed for the tar reader.

ISA-L's igzip (the ``isal`` package) inflates several times faster than zlib; without it,
zlib does the same job. Either library checks the gzip header, the CRC-32 and the length
(``wbits=31``); a stream that fails them raises one of ``ERRORS``. The stream must end where
the file ends: ``check_end`` refuses a stream cut short and any byte after it (tar -xzf would
read a second gzip member there; nothing here may be installed that the rules did not see).
"""

from __future__ import annotations

import zlib
from types import ModuleType
from typing import IO

from reconcile.archive import violation as rules
from reconcile.archive.violation import ArchiveRuleError

_igzip: ModuleType | None
try:
    from isal import isal_zlib as _igzip
except ImportError:  # optional: zlib gives the same bytes, more slowly
    _igzip = None

GZIP_WBITS = 31  # a gzip header and trailer around the deflate data
READ_SIZE = 1 << 20  # compressed bytes read at a time: a handful of system calls per tarball
# Compressed bytes given to the inflater at a time, and the most it may return for them. The
# input is small because the library copies what it did not consume on every call; the
# output is bounded whatever the compression ratio (a bomb comes out a piece at a time).
INPUT_PIECE = 64 << 10
OUTPUT_PIECE = 1 << 20

ERRORS: tuple[type[Exception], ...] = (zlib.error,) + (
    (_igzip.error,) if _igzip is not None else ()
)


def engine_name() -> str:
    return "igzip (isal)" if _igzip is not None else "zlib"


class GunzipStream:
    """A read-only stream of the decompressed data of the gzip file ``source``."""

    def __init__(self, source: IO[bytes]) -> None:
        self._inflate = (_igzip or zlib).decompressobj(GZIP_WBITS)
        self._source = source
        self._raw = memoryview(b"")  # compressed bytes read from the source
        self._raw_used = 0  # of which given to the inflater
        self._tail = b""  # given to the inflater but not consumed (its output was full)
        self._out = b""  # inflated, not yet read
        self._out_used = 0
        self.position = 0  # decompressed bytes handed out

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` decompressed bytes (``size`` must be given: the output is
        bounded, whatever the input's compression ratio); b"" at the end of the stream."""
        if size < 0:
            raise ValueError("read the decompressed stream in bounded pieces")
        if self._out_used >= len(self._out):
            self._out, self._out_used = self._inflate_more(), 0
        start = self._out_used
        piece = self._out[start : start + size]
        self._out_used = start + len(piece)
        self.position += len(piece)
        return piece

    def next_piece(self) -> bytes:
        """What is left of the current inflated piece (at most ``OUTPUT_PIECE`` bytes),
        whole and without a copy when nothing of it was read yet; b"" at the end."""
        if self._out_used >= len(self._out):
            self._out, self._out_used = self._inflate_more(), 0
        piece = self._out[self._out_used :] if self._out_used else self._out
        self._out_used = len(self._out)
        self.position += len(piece)
        return piece

    def _inflate_more(self) -> bytes:
        while not self._inflate.eof:
            data: bytes | memoryview = self._tail
            if not data:
                if self._raw_used >= len(self._raw):
                    self._raw, self._raw_used = memoryview(self._source.read(READ_SIZE)), 0
                    if not self._raw:
                        return b""  # cut short: check_end says so
                data = self._raw[self._raw_used : self._raw_used + INPUT_PIECE]
                self._raw_used += len(data)
            out: bytes = self._inflate.decompress(data, OUTPUT_PIECE)
            self._tail = self._inflate.unconsumed_tail
            if out:
                return out
        return b""

    def check_end(self) -> None:
        """After the tar reader is done: the gzip stream ended (its trailer checked), and
        the file ends with it."""
        if not self._inflate.eof:
            raise ArchiveRuleError(
                rules.UNREADABLE_ARCHIVE, "", "the gzip stream is cut short before its end"
            )
        after = (
            len(self._inflate.unused_data)
            + len(self._tail)
            + len(self._raw)
            - self._raw_used
            + len(self._source.read(1))
        )
        if after:
            raise ArchiveRuleError(
                rules.DATA_AFTER_END,
                "",
                "data follows the end of the gzip stream; expected the file to end there",
            )
