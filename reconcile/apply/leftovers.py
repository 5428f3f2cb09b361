"""Clearing what crashed runs left behind, at the start of every run that holds the install
root's lock: staging folders (``.reconcile/staging/run-*``), temporary install records
(``.reconcile/records/.*.tmp``) and temporary blobs in the cache roots.

Only what belongs to a process that has ended is removed (``state/leftovers.py`` says how
that is told from the name). In the state folder an untagged name from an older reconcile
counts as ended too: it could only have been written under the lock we now hold. Cache roots
are shared with runs that do not take this lock, so there only tagged names whose writer has
ended are removed; the rest is left to ``cache gc``. Resumable partial downloads are never
leftovers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from reconcile.cache.layout import blob_folders
from reconcile.cache.store import BlobCache
from reconcile.errors import ReconcileError
from reconcile.manifest.model import ManifestFile
from reconcile.safe_fs import remove_tree_at
from reconcile.state.leftovers import (
    TEMP_SUFFIX,
    is_dead_temp,
    is_resumable,
    owner_is_gone,
    owner_of,
)
from reconcile.state.lock import install_root_lock, state_dir
from reconcile.state.records import records_dir

_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _ended(name: str, *, untagged_ended: bool) -> bool:
    if is_resumable(name):
        return False
    owner = owner_of(name)
    if owner is None:
        return untagged_ended
    return owner_is_gone(owner)


def _sweep(folder: Path, wanted: Iterable[str], removed: list[Path]) -> None:
    """Remove the entries ``wanted`` of ``folder`` (never following a link to it)."""
    try:
        fd = os.open(folder, _FOLDER_FLAGS)
    except OSError:
        return  # missing, or not a folder: nothing of ours to clear
    try:
        for name in wanted:
            try:
                remove_tree_at(fd, name)
            except OSError:
                continue  # kept for the next run; it never stops this one
            removed.append(folder / name)
    finally:
        os.close(fd)


def _names(folder: Path) -> list[str]:
    try:
        return sorted(entry.name for entry in folder.iterdir())
    except OSError:
        return []


def clear_state_leftovers(root: Path) -> list[Path]:
    """Under the lock: staging folders and temporary records of ended runs."""
    removed: list[Path] = []
    staging = state_dir(root) / "staging"
    _sweep(
        staging,
        (n for n in _names(staging) if _ended(n, untagged_ended=True)),
        removed,
    )
    records = records_dir(root)
    _sweep(
        records,
        (
            n
            for n in _names(records)
            if n.startswith(".") and n.endswith(TEMP_SUFFIX) and _ended(n, untagged_ended=True)
        ),
        removed,
    )
    return removed


def clear_cache_leftovers(cache: BlobCache | None) -> list[Path]:
    """Temporary blobs and records in the cache roots whose writer has ended."""
    removed: list[Path] = []
    for root in cache.roots if cache is not None else ():
        for folder in blob_folders(root.path):
            _sweep(folder, [n for n in _names(folder) if is_dead_temp(n)], removed)
    return removed


def clear_leftovers(root: Path, cache: BlobCache | None) -> list[Path]:
    """Everything above; call it holding the install root's lock."""
    return clear_state_leftovers(root) + clear_cache_leftovers(cache)


def clear_leftovers_when_idle(manifest_file: ManifestFile, cache: BlobCache | None) -> list[Path]:
    """For a run with nothing to install: take the lock only when the state folder exists
    (never create it) and nobody holds it, then clear; else clear only the cache roots."""
    root = manifest_file.install_root() if manifest_file.manifest.install else None
    if root is None or not state_dir(root).is_dir():
        return clear_cache_leftovers(cache)
    with contextlib.suppress(ReconcileError), install_root_lock(root):
        return clear_leftovers(root, cache)
    return clear_cache_leftovers(cache)
