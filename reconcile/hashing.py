"""sha256 of files and streams, read in fixed-size chunks: the one way reconcile hashes data."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


def sha256_of_stream(stream: BinaryIO) -> str:
    """Hex sha256 of everything left in ``stream``."""
    digest = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    """Hex sha256 of the file at ``path``."""
    with path.open("rb") as stream:
        return sha256_of_stream(stream)
