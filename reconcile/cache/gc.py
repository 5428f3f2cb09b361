"""Removing blobs from the cache roots: least recently used first, never one in ``keep``.

``keep`` holds the sha256s the current manifest still needs (the tarballs its plan would
install and those its installed specs came from), so that a gc between CI jobs never costs
the next job a download. Every copy of a kept blob stays, in whichever root it is.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Literal

import attrs

from reconcile.cache.files import remove_file
from reconcile.cache.layout import root_of_blob
from reconcile.cache.partials import PartialDownload, abandoned, remove_partials, scan_partials
from reconcile.cache.record import utc_now
from reconcile.cache.scan import CacheEntry, Leftover, read_record, scan_root
from reconcile.cache.store import BlobCache
from reconcile.reprs import fields_repr
from reconcile.state.leftovers import is_dead_temp

# A temporary file this old belongs to a writer that died: downloads do not take a day.
# Sooner when its name tells that its writer has ended (state/leftovers.py).
STALE_TEMP_AGE = timedelta(days=1)
# A partial download whose run has ended is kept this long for a run to resume it (or as
# long as --older-than says, when given).
STALE_PARTIAL_AGE = timedelta(days=1)

Reason = Literal["older-than", "max-size"]


@attrs.frozen(kw_only=True)
class Removal:
    __repr__ = fields_repr

    entry: CacheEntry
    reason: Reason


@attrs.frozen(kw_only=True)
class GcReport:
    __repr__ = fields_repr

    removed: tuple[Removal, ...]  # least recently used first
    kept: tuple[CacheEntry, ...]
    needed: tuple[CacheEntry, ...]  # the kept entries that ``keep`` protected
    leftovers: tuple[Leftover, ...]  # stale temporary files, records without a blob, ...
    partials: tuple[PartialDownload, ...] = ()  # abandoned partial downloads removed
    failures: tuple[str, ...]  # what could not be removed (then counted as kept)
    dry_run: bool
    max_size: int | None
    older_than: timedelta | None

    @property
    def freed_bytes(self) -> int:
        removed = sum(removal.entry.size for removal in self.removed)
        removed += sum(partial.size for partial in self.partials)
        return removed + sum(leftover.size for leftover in self.leftovers)

    @property
    def remaining_bytes(self) -> int:
        return sum(entry.size for entry in self.kept)

    @property
    def over_budget(self) -> bool:
        """The needed blobs alone take more than ``max_size``."""
        return self.max_size is not None and self.remaining_bytes > self.max_size


def _lru_key(entry: CacheEntry) -> tuple[datetime, datetime, str]:
    return (entry.last_used, entry.stored_at, str(entry.path))


def _choose(
    entries: list[CacheEntry],
    keep: Collection[str],
    max_size: int | None,
    older_than: timedelta | None,
    now: datetime,
) -> list[Removal]:
    candidates = [entry for entry in entries if entry.sha256 not in keep]
    chosen: dict[CacheEntry, Reason] = {}
    if older_than is not None:
        cutoff = now - older_than
        chosen.update((entry, "older-than") for entry in candidates if entry.last_used < cutoff)
    if max_size is not None:
        total = sum(entry.size for entry in entries if entry not in chosen)
        for entry in candidates:
            if total <= max_size:
                break
            if entry not in chosen:
                chosen[entry] = "max-size"
                total -= entry.size
    return [Removal(entry=entry, reason=reason) for entry, reason in chosen.items()]


def _used_since_scan(entry: CacheEntry) -> bool:
    """Another job used the blob after the scan: leave it to the next gc."""
    record = read_record(entry.path, entry.sha256)
    return record is not None and record.last_used > entry.last_used


def _remove_leftovers(leftovers: Iterable[Leftover], failures: list[str]) -> list[Leftover]:
    removed = []
    for leftover in leftovers:
        try:
            remove_file(leftover.path, root=root_of_blob(leftover.path))
        except OSError as exc:
            failures.append(f"cannot remove {leftover.path}: {exc.strerror or exc}")
        else:
            removed.append(leftover)
    return removed


def gc(
    cache: BlobCache,
    *,
    max_size: int | None,
    older_than: timedelta | None,
    keep: Collection[str] = frozenset(),
    dry_run: bool = False,
    now: datetime | None = None,
) -> GcReport:
    """Remove blobs unused for longer than ``older_than``, then the least recently used ones
    until all roots together hold at most ``max_size`` bytes; never a blob in ``keep``.
    Also removes leftovers: temporary files older than a day, records without a blob, and
    partial downloads whose run has ended, untouched for ``older_than`` (else a day)."""
    now = now if now is not None else utc_now()
    scans = [scan_root(root) for root in cache.roots]
    entries = sorted((entry for scan in scans for entry in scan.entries), key=_lru_key)
    leftovers = [
        leftover
        for scan in scans
        for leftover in scan.leftovers
        if leftover.why != "unfinished write"
        or now - leftover.modified > STALE_TEMP_AGE
        or is_dead_temp(leftover.path.name)
    ]
    chosen = _choose(entries, keep, max_size, older_than, now)
    partial_age = older_than if older_than is not None else STALE_PARTIAL_AGE
    partials = {
        root.path: [
            p for p in scan_partials(root.path) if abandoned(p, now=now, max_age=partial_age)
        ]
        for root in cache.roots
    }
    failures: list[str] = []
    removed: list[Removal] = []
    if dry_run:
        removed = chosen
    else:
        partials = {
            root: remove_partials(root, found, failures) for root, found in partials.items()
        }
        for removal in chosen:
            if _used_since_scan(removal.entry):
                continue
            problem = cache.remove(removal.entry.path)
            if problem is None:
                removed.append(removal)
            else:
                failures.append(problem)
        leftovers = _remove_leftovers(leftovers, failures)
    gone = {removal.entry for removal in removed}
    kept = tuple(entry for entry in entries if entry not in gone)
    return GcReport(
        removed=tuple(removed),
        kept=kept,
        needed=tuple(entry for entry in kept if entry.sha256 in keep),
        leftovers=tuple(leftovers),
        partials=tuple(p for found in partials.values() for p in found),
        failures=tuple(failures),
        dry_run=dry_run,
        max_size=max_size,
        older_than=older_than,
    )
