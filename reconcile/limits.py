"""Bounds on the work a mirror or a tarball can make reconcile do: the ``[limits]`` table.

Everything a mirror chooses (how many bytes it sends, how slowly, how deep an archive nests,
how much a small tarball unpacks to) is bounded, so that a hostile or broken mirror costs a
clear error instead of memory, disk or hours. The defaults are far above what real Spack
caches need; a manifest lowers or raises them in ``[limits]``.
"""

from __future__ import annotations

import attrs

from reconcile.reprs import fields_repr

MIB = 1 << 20
GIB = 1 << 30

# Bytes/s are averaged over this many seconds before a slow transfer is refused, so that a
# pause or a slow start is not mistaken for a stalled mirror.
RATE_WINDOW_SECONDS = 30.0


@attrs.frozen(kw_only=True)
class Limits:
    # Spec files, signatures, manifests, build info: anything that is not a tarball or index.
    __repr__ = fields_repr

    max_metadata_bytes: int = 64 * MIB
    # A mirror's index (index.json and its hash).
    max_index_bytes: int = 1 * GIB
    # Unpacked bytes of a tarball (regular files' sizes), over its signed size.
    max_unpack_ratio: int = 50
    # Members in one tarball.
    max_members: int = 1_000_000
    # Bytes/s averaged over RATE_WINDOW_SECONDS; a slower transfer is refused.
    min_transfer_rate: int = 1024
    # A source archive whose [[source]] gives no size (its sha256 is only known at the end):
    # above the largest real ones (CUDA's installers are about 4 GiB).
    max_source_bytes: int = 16 * GIB


DEFAULT_LIMITS = Limits()

# The keys of ``[limits]`` in a manifest, with what each one bounds (docs and errors quote it).
SETTINGS: dict[str, str] = {
    "max_metadata_bytes": "bytes of one spec file, signature or other metadata file",
    "max_index_bytes": "bytes of one mirror index",
    "max_unpack_ratio": "unpacked bytes of a tarball per byte of its signed size",
    "max_members": "members of one tarball",
    "min_transfer_rate": "bytes per second, averaged over 30 s, below which a transfer stops",
    "max_source_bytes": "bytes of one source archive whose [[source]] gives no size",
}


def describe_bytes(count: int) -> str:
    """``count`` bytes as people read them (64 MiB, 1 GiB, 512 bytes)."""
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", 1 << 10)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"
