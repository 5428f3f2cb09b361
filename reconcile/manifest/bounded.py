"""Reading a file the user names (the manifest, a key file) without trusting what it is:
only a regular file is read, and only up to a size limit, decided before reading it.

The file is opened non-blocking (a FIFO would otherwise block ``open`` itself) and checked
with ``fstat`` on that descriptor, so what is checked is what is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # a hand-kept manifest is kilobytes; this is generous
MAX_KEY_FILE_BYTES = 1024 * 1024  # an armored public key, a few subkeys and signatures


class NotReadableError(Exception):
    """``path`` is not a regular file of at most ``limit`` bytes; ``message`` says what."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of ``path``; ``NotReadableError`` when it is not a regular file or holds
    more than ``limit`` bytes (``OSError`` when it cannot be opened at all)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotReadableError(f"{path} is not a regular file")
        if info.st_size > limit:
            raise NotReadableError(
                f"{path} is {info.st_size} bytes (expected at most {limit} bytes)"
            )
        chunks = []
        remaining = limit + 1  # the file may grow after fstat: never read past the limit
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1024 * 1024))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise NotReadableError(f"{path} grew past {limit} bytes while it was read")
        return data
    finally:
        os.close(fd)
