"""The journal of prefix swaps: written (and fsynced) before a repaired prefix replaces a
drifted one, removed once the swap is finished, so that the next run that holds the install
root's lock can finish or undo a swap a crash interrupted.

An entry lives at ``<root>/.reconcile/journal/<dag hash>.json`` and names the final prefix,
the staged replacement, where the old prefix goes aside, the identity (device, inode) of
the replacement, and the install record to write once it is in place.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import attrs

from reconcile.reprs import fields_repr
from reconcile.state.leftovers import temp_name
from reconcile.state.records import (
    InstallRecord,
    record_from_dict,
    record_path,
    record_to_dict,
)

JOURNAL_FOLDER = (".reconcile", "journal")


@attrs.frozen(kw_only=True)
class SwapEntry:
    __repr__ = fields_repr

    prefix: str  # the final prefix
    staged: str  # the replacement, before the swap (after an exchange: the old prefix)
    aside: str  # where the old prefix is renamed when the filesystem cannot exchange
    replacement: tuple[int, int]  # (st_dev, st_ino) of the replacement folder
    record: InstallRecord  # written once the replacement is in place

    def to_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "staged": self.staged,
            "aside": self.aside,
            "replacement": list(self.replacement),
            "record": record_to_dict(self.record),
        }

    @classmethod
    def from_dict(cls, data: Any) -> SwapEntry:
        device, inode = data["replacement"]
        return cls(
            prefix=str(data["prefix"]),
            staged=str(data["staged"]),
            aside=str(data["aside"]),
            replacement=(int(device), int(inode)),
            record=record_from_dict(data["record"]),
        )


def journal_dir(root: Path) -> Path:
    return root.joinpath(*JOURNAL_FOLDER)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_entry(root: Path, dag_hash: str, entry: SwapEntry) -> Path:
    """Write ``entry`` durably (temp file, fsync, rename, fsync folder) before the swap."""
    folder = journal_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    destination = folder / record_path(root, dag_hash).name  # checks the hash, too
    temporary = folder / temp_name(dag_hash)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as stream:
            json.dump(entry.to_dict(), stream, sort_keys=True)
            stream.flush()
            os.fsync(stream.fileno())
        temporary.replace(destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(folder)
    return destination


def read_entries(root: Path) -> list[tuple[Path, SwapEntry | None]]:
    """Every journal entry (None for one that cannot be read), oldest name first."""
    folder = journal_dir(root)
    try:
        paths = sorted(p for p in folder.iterdir() if p.suffix == ".json")
    except OSError:
        return []
    entries: list[tuple[Path, SwapEntry | None]] = []
    for path in paths:
        try:
            entries.append((path, SwapEntry.from_dict(json.loads(path.read_bytes()))))
        except (OSError, ValueError, KeyError, TypeError):
            entries.append((path, None))
    return entries


def remove_entry(path: Path) -> None:
    path.unlink(missing_ok=True)
    _fsync_folder(path.parent)
