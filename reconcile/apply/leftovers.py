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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from reconcile.apply.swap import finish_swaps, trash_dir
from reconcile.cache.layout import blob_folders
from reconcile.errors import ReconcileError
from reconcile.manifest.model import ManifestFile
from reconcile.safe_fs import folder_at
from reconcile.state.leftovers import (
    TEMP_SUFFIX,
    is_dead_temp,
    is_resumable,
    owner_is_gone,
    owner_of,
)
from reconcile.state.lock import install_root_lock, state_dir
from reconcile.state.records import records_dir

if TYPE_CHECKING:
    from reconcile.cache.store import BlobCache


def _ended(name: str, *, untagged_ended: bool) -> bool:
    if is_resumable(name):
        return False
    owner = owner_of(name)
    if owner is None:
        return untagged_ended
    return owner_is_gone(owner)


def _sweep(root: Path, folder: Path, keep: Callable[[str], bool], removed: list[Path]) -> None:
    """Remove the entries of ``folder`` (below ``root``) that ``keep`` does not want;
    no link below ``root`` is followed (``LinkInRootError``)."""
    try:
        with folder_at(root, folder, create=False) as opened:
            for name in opened.listdir():
                if keep(name):
                    continue
                try:
                    opened.remove_tree(name)
                except OSError:
                    continue  # kept for the next run; it never stops this one
                removed.append(folder / name)
    except (FileNotFoundError, NotADirectoryError):
        return  # nothing of ours to clear


def remove_run_folder(root: Path, run_dir: Path) -> None:
    """Remove a run's staging folder at its end (a failure leaves it to the next run)."""
    with contextlib.suppress(OSError):
        _sweep(root, run_dir.parent, lambda name: name != run_dir.name, [])


def clear_state_leftovers(root: Path) -> list[Path]:
    """Under the lock: swaps a crash interrupted are finished or undone first (their
    replacement may wait in a staging folder), then staging folders, old prefixes in the
    trash and temporary records of ended runs are removed."""
    removed = finish_swaps(root)
    staging = state_dir(root) / "staging"
    _sweep(root, staging, lambda n: not _ended(n, untagged_ended=True), removed)
    _sweep(root, trash_dir(root), lambda n: not _ended(n, untagged_ended=True), removed)
    _sweep(
        root,
        records_dir(root),
        lambda n: (
            not (n.startswith(".") and n.endswith(TEMP_SUFFIX) and _ended(n, untagged_ended=True))
        ),
        removed,
    )
    return removed


def clear_cache_leftovers(cache: BlobCache | None) -> list[Path]:
    """Temporary blobs and records in the cache roots whose writer has ended."""
    removed: list[Path] = []
    for root in cache.roots if cache is not None else ():
        for folder in blob_folders(root.path):
            _sweep(root.path, folder, lambda n: not is_dead_temp(n), removed)
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
