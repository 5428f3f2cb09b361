"""sha256 of files and streams, read in fixed-size chunks: the one way reconcile hashes data."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

import attrs

from reconcile.reprs import fields_repr

CHUNK = 1 << 20


@attrs.frozen(kw_only=True)
class Digest:
    __repr__ = fields_repr

    sha256: str  # hex
    size: int  # bytes hashed


def digest_stream(stream: IO[bytes], *, sink: Callable[[bytes], object] | None = None) -> Digest:
    """sha256 and size of everything left in ``stream``; each chunk also goes to ``sink``
    (a writer's ``write``), so that a copy and its checksum come from the same bytes."""
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink(chunk)
    return Digest(sha256=digest.hexdigest(), size=size)


def digest_file(path: Path) -> Digest:
    """sha256 and size of the file at ``path``."""
    with path.open("rb") as stream:
        return digest_stream(stream)


def sha256_of_stream(stream: IO[bytes]) -> str:
    """Hex sha256 of everything left in ``stream``."""
    return digest_stream(stream).sha256


def sha256_of(path: Path) -> str:
    """Hex sha256 of the file at ``path``."""
    return digest_file(path).sha256


def sha256_of_fd(fd: int, buffer: bytearray) -> Digest:
    """sha256 and size of what is left to read from the descriptor ``fd``, read into the
    caller's ``buffer``: no object per chunk, and no file object per file, which is most of
    the cost of hashing many small files. hashlib releases the interpreter lock while it
    hashes a large chunk, so threads hashing different files run in parallel."""
    digest, size = hashlib.sha256(), 0
    view = memoryview(buffer)
    while count := os.readv(fd, (buffer,)):
        digest.update(view[:count])
        size += count
    return Digest(sha256=digest.hexdigest(), size=size)
