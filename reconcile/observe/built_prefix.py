"""The prefix a package was built in, read at plan time from a tarball a cache root holds.

Neither layout's signed metadata records where a package was built: Spack keeps that
(``buildpath``, ``hash_to_prefix``) in ``.spack/binary_distribution`` inside the tarball. So
plan can compare the new prefix with the old one only for a tarball it already has: a copy in
a cache root, read here without unpacking anything, when the blob's record does not say it
already (``observe.mirrors``; apply keeps it there once it has unpacked the tarball). The copy
is hashed on the way and used only when its sha256 is the one the verified metadata names;
anything else (a damaged copy, an archive that does not read, a member too large) means "not
known", never an error: apply unpacks and checks the real tarball anyway.
"""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path
from typing import IO, BinaryIO, cast

from reconcile.archive.gunzip import ERRORS as GZIP_ERRORS
from reconcile.archive.gunzip import GunzipStream
from reconcile.buildcache.build_info import built_prefixes_of, parse_build_info
from reconcile.limits import Limits

BUILD_INFO_SUFFIX = "/.spack/binary_distribution"
CHUNK = 1 << 20
TAR_CHUNK = 16 << 10  # what tarfile reads at a time (see archive/reader.py)
_UNREADABLE: tuple[type[Exception], ...] = (
    OSError,
    EOFError,
    tarfile.TarError,
    ValueError,
    UnicodeDecodeError,
    *GZIP_ERRORS,
)


class _Hashing:
    """A read-only stream that hashes what is read through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        return data

    def drain(self) -> str:
        while self.read(CHUNK):
            pass
        return self.digest.hexdigest()


def built_prefix(tarball: Path, *, sha256: str, dag_hash: str, limits: Limits) -> str | None:
    """The old prefix of ``dag_hash`` recorded in ``tarball``, or None when it cannot be told."""
    found = built_prefixes(tarball, sha256=sha256, dag_hash=dag_hash, limits=limits)
    return None if found is None else found.get(dag_hash)


def built_prefixes(
    tarball: Path, *, sha256: str, dag_hash: str, limits: Limits
) -> dict[str, str] | None:
    """Every old prefix ``tarball`` records, by DAG hash: the package's own (``dag_hash``)
    and its dependencies' (``hash_to_prefix``: where they were when it was built). None when
    the tarball cannot tell."""
    try:
        with tarball.open("rb") as raw:
            stream = _Hashing(raw)
            text = _build_info_text(stream, limits, tarball.stat().st_size)
            if stream.drain() != sha256 or text is None:
                return None
        info = parse_build_info(text, dag_hash=dag_hash)
    except _UNREADABLE:
        return None
    return built_prefixes_of(info, dag_hash)


def _build_info_text(stream: _Hashing, limits: Limits, size: int) -> str | None:
    budget = max(size, 1) * limits.max_unpack_ratio  # the unpack's own bound on expansion
    expanded = 0
    # igzip when installed, as the unpack: this reads every cached tarball on a warm apply
    gunzipped = cast(IO[bytes], GunzipStream(cast(IO[bytes], stream)))
    with tarfile.open(fileobj=gunzipped, mode="r|", bufsize=TAR_CHUNK) as archive:
        for member in archive:
            expanded += member.size
            if expanded > budget:
                return None
            if member.isreg() and ("/" + member.name).endswith(BUILD_INFO_SUFFIX):
                if member.size > limits.max_metadata_bytes:
                    return None
                reader = archive.extractfile(member)
                return None if reader is None else str(reader.read().decode("utf-8"))
    return None
