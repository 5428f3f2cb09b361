"""Reading what a cache root holds: its blobs with their records, its index copies, and the
leftovers that ``gc`` may remove (temporary files of writers that died, records whose blob
is gone, files under a blob's name that are not regular files)."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import attrs

from reconcile.cache.files import open_regular
from reconcile.cache.layout import (
    INDEX_FILE,
    INDEXES,
    RECORD_SUFFIX,
    blob_folders,
    is_temp_name,
    record_path,
    root_of_blob,
    sha256_of_name,
)
from reconcile.cache.record import BlobRecord, parse_record
from reconcile.cache.roots import CacheRootConfig
from reconcile.reprs import fields_repr
from reconcile.safe_fs import folder_at

# A record is a few hundred bytes; anything much larger is not one.
MAX_RECORD_BYTES = 1 << 20


@attrs.frozen(kw_only=True)
class CacheEntry:
    """One blob in one root."""

    __repr__ = fields_repr

    root: Path
    sha256: str
    path: Path
    size: int  # of the file on disk
    urls: tuple[str, ...]
    specs: tuple[str, ...]
    stored_at: datetime
    last_used: datetime
    recorded: bool  # False: no readable record; both times are the blob's modification time


@attrs.frozen(kw_only=True)
class IndexCopy:
    """A mirror's index kept between runs for conditional requests."""

    __repr__ = fields_repr

    root: Path
    path: Path
    url: str | None  # from the transport's record beside it, when readable
    size: int
    modified: datetime


@attrs.frozen(kw_only=True)
class Leftover:
    __repr__ = fields_repr

    path: Path
    size: int
    modified: datetime
    why: str  # "unfinished write", "record without a blob", "not a regular file"


@attrs.frozen(kw_only=True)
class RootScan:
    __repr__ = fields_repr

    root: CacheRootConfig
    exists: bool
    entries: tuple[CacheEntry, ...]
    index_copies: tuple[IndexCopy, ...]
    leftovers: tuple[Leftover, ...]


def _mtime(status: os.stat_result) -> datetime:
    return datetime.fromtimestamp(status.st_mtime, UTC)


def read_record(blob: Path, sha256: str) -> BlobRecord | None:
    try:
        with open_regular(record_path(blob), root=root_of_blob(blob)) as stream:
            data = stream.read(MAX_RECORD_BYTES + 1)
    except OSError:
        return None
    return parse_record(data, sha256) if len(data) <= MAX_RECORD_BYTES else None


def _entry(root: Path, blob: Path, sha256: str, size: int, modified: datetime) -> CacheEntry:
    record = read_record(blob, sha256)
    if record is None:
        return CacheEntry(
            root=root,
            sha256=sha256,
            path=blob,
            size=size,
            urls=(),
            specs=(),
            stored_at=modified,
            last_used=modified,
            recorded=False,
        )
    return CacheEntry(
        root=root,
        sha256=sha256,
        path=blob,
        size=size,
        urls=record.urls,
        specs=record.specs,
        stored_at=record.stored_at,
        last_used=record.last_used,
        recorded=True,
    )


def _scan_folder(root: Path, folder: Path) -> tuple[list[CacheEntry], list[Leftover]]:
    entries: list[CacheEntry] = []
    leftovers: list[Leftover] = []
    try:
        with folder_at(root, folder, create=False) as opened:
            names = opened.listdir()
            statuses = {}
            for name in names:
                with contextlib.suppress(FileNotFoundError):  # removed meanwhile by another job
                    statuses[name] = opened.lstat(name)
    except OSError:
        return entries, leftovers
    for name, status in statuses.items():
        child = folder / name
        modified = _mtime(status)
        sha256 = sha256_of_name(child)
        if is_temp_name(child.name):
            leftovers.append(
                Leftover(path=child, size=status.st_size, modified=modified, why="unfinished write")
            )
        elif sha256 is not None and sha256.startswith(folder.name):
            if stat.S_ISREG(status.st_mode):
                entries.append(_entry(root, child, sha256, status.st_size, modified))
            else:
                leftovers.append(
                    Leftover(path=child, size=0, modified=modified, why="not a regular file")
                )
        elif child.name.endswith(RECORD_SUFFIX):
            blob_name = child.name.removesuffix(RECORD_SUFFIX)
            if sha256_of_name(Path(blob_name)) is not None and blob_name not in names:
                leftovers.append(
                    Leftover(
                        path=child,
                        size=status.st_size,
                        modified=modified,
                        why="record without a blob",
                    )
                )
    return entries, leftovers


def _index_url(copy: Path) -> str | None:
    try:
        meta = copy.with_name(copy.name + ".meta.json")
        with open_regular(meta, root=copy.parents[2]) as stream:
            url = json.loads(stream.read(MAX_RECORD_BYTES)).get("url")
    except (OSError, ValueError, AttributeError):
        return None
    return url if isinstance(url, str) else None


def _index_copies(root: Path) -> list[IndexCopy]:
    copies = []
    try:
        folders = sorted((root / INDEXES).iterdir())
    except OSError:
        return []
    for folder in folders:
        copy = folder / INDEX_FILE
        try:
            status = copy.lstat()
        except OSError:
            continue
        if stat.S_ISREG(status.st_mode):
            copies.append(
                IndexCopy(
                    root=root,
                    path=copy,
                    url=_index_url(copy),
                    size=status.st_size,
                    modified=_mtime(status),
                )
            )
    return copies


def scan_root(root: CacheRootConfig) -> RootScan:
    entries: list[CacheEntry] = []
    leftovers: list[Leftover] = []
    for folder in blob_folders(root.path):
        found, left = _scan_folder(root.path, folder)
        entries.extend(found)
        leftovers.extend(left)
    return RootScan(
        root=root,
        exists=root.path.is_dir(),
        entries=tuple(entries),
        index_copies=tuple(_index_copies(root.path)),
        leftovers=tuple(leftovers),
    )
