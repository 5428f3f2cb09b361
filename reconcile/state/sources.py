"""What reconcile last verified in a source mirror, so that a plan need not hash every archive.

``<mirror>/_source-cache/.reconcile-verified.json`` maps each archive's path (relative to
the mirror root) to its size, mtime, sha256 and when it was hashed. An archive whose size and
mtime still match its record is taken as good without reading it. The file is a cache, not a
trust anchor: whoever can write the mirror can write it too, and ``check_contents`` hashes
every archive whatever it says. A missing or unreadable state file only means more hashing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from reconcile.atomic_write import atomic_write_bytes
from reconcile.reprs import fields_repr

# The folder Spack keeps source archives in (sources/layout.py reuses this name).
SOURCE_CACHE = "_source-cache"
STATE_FILE = f"{SOURCE_CACHE}/.reconcile-verified.json"
LOCK_FILE = f"{SOURCE_CACHE}/.reconcile-verified.lock"
# Interrupted downloads of archives, kept for the next run to resume (cache/partial.py).
PARTIAL_FOLDER = f"{SOURCE_CACHE}/.reconcile-partial"
STATE_FORMAT = 1


@attrs.frozen(kw_only=True)
class VerificationRecord:
    __repr__ = fields_repr

    size: int
    mtime_ns: int
    sha256: str
    verified_at: str  # UTC, ISO 8601: 2026-01-02T03:04:05Z

    def matches(self, *, size: int, mtime_ns: int, sha256: str) -> bool:
        return (self.size, self.mtime_ns, self.sha256) == (size, mtime_ns, sha256)


VerificationState = Mapping[str, VerificationRecord]


def _record(value: Any) -> VerificationRecord | None:
    if not isinstance(value, dict):
        return None
    size, mtime_ns = value.get("size"), value.get("mtime_ns")
    sha256, verified_at = value.get("sha256"), value.get("verified_at")
    if not (isinstance(size, int) and isinstance(mtime_ns, int)):
        return None
    if not (isinstance(sha256, str) and isinstance(verified_at, str)):
        return None
    return VerificationRecord(size=size, mtime_ns=mtime_ns, sha256=sha256, verified_at=verified_at)


def load_state(mirror_root: Path) -> dict[str, VerificationRecord]:
    """The records kept in the mirror; entries that cannot be read are left out."""
    try:
        data = json.loads((mirror_root / STATE_FILE).read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
        return {}
    archives = data.get("archives")
    if not isinstance(archives, dict):
        return {}
    records = {path: _record(value) for path, value in archives.items()}
    return {path: record for path, record in records.items() if record is not None}


def _dump(records: Mapping[str, VerificationRecord]) -> bytes:
    archives = {path: attrs.asdict(records[path]) for path in sorted(records)}
    text = json.dumps({"format": STATE_FORMAT, "archives": archives}, indent=1, sort_keys=True)
    return (text + "\n").encode()


@contextlib.contextmanager
def _locked(mirror_root: Path) -> Iterator[None]:
    """Serialise writers of the state: each merges into what the last one wrote."""
    lock = mirror_root / LOCK_FILE
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def record_verified(mirror_root: Path, records: Mapping[str, VerificationRecord]) -> None:
    """Add or replace ``records`` in the mirror's state, atomically."""
    if not records:
        return
    with _locked(mirror_root):
        merged = {**load_state(mirror_root), **records}
        atomic_write_bytes(mirror_root / STATE_FILE, _dump(merged))
