"""``reconcile cache list`` and ``reconcile cache gc``: what the cache roots hold, and
removing what the manifest no longer needs."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

from reconcile.cache.gc import GcReport, gc
from reconcile.cache.partials import PartialDownload, scan_partials
from reconcile.cache.roots import cache_roots_of
from reconcile.cache.scan import CacheEntry, RootScan, scan_root
from reconcile.cache.store import BlobCache
from reconcile.cache.units import parse_age, parse_size
from reconcile.cli.render import human_bytes
from reconcile.errors import ReconcileError
from reconcile.manifest.load import load_manifest
from reconcile.manifest.model import ManifestFile
from reconcile.redact import mask_credentials
from reconcile.transport.registry import TransportPool, endpoints_of

EXIT_OK, EXIT_ERROR = 0, 1
SHORT_SHA = 12


def run_cache(args: argparse.Namespace, manifest: Path) -> int:
    loaded = load_manifest(manifest)
    if args.cache_command == "list":
        return _list(loaded, as_json=args.json)
    if args.cache_command == "gc":
        return _gc(loaded, args)
    raise AssertionError(args.cache_command)


# --- list ---------------------------------------------------------------------------------


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _for_urls(scan: RootScan) -> str:
    if scan.root.matches_every_url:
        return "for every URL"
    return "for URLs under " + ", ".join(mask_credentials(p) for p in scan.root.prefixes)


_WRITERS = {
    "running": "a running apply holds it",
    "ended": "its run has ended",
    "other-host": "written on another host",
}


def _partials_summary(partials: tuple[PartialDownload, ...]) -> str:
    if not partials:
        return ""
    count = len(partials)
    held = sum(1 for p in partials if p.writer != "ended")
    return (
        f"; {count} partial download{'s' if count != 1 else ''} kept for resuming, "
        f"{human_bytes(sum(p.size for p in partials))}"
        + (f" ({held} held by a running apply or another host)" if held else "")
    )


def _render_root(scan: RootScan, partials: tuple[PartialDownload, ...] = ()) -> list[str]:
    lines = [f"{scan.root.path} ({_for_urls(scan)})"]
    if not scan.exists:
        lines.append("  (the folder does not exist yet)")
    for entry in scan.entries:
        specs = ", ".join(entry.specs) if entry.specs else "(no record)"
        lines.append(
            f"  {entry.sha256[:SHORT_SHA]}  {human_bytes(entry.size):>10}  "
            f"used {_when(entry.last_used)}  {specs}"
        )
        # masked again: records written by older versions kept query strings as they were
        lines.extend(f"      from {mask_credentials(url)}" for url in entry.urls)
    size = sum(entry.size for entry in scan.entries)
    count = len(scan.entries)
    summary = f"  {count} blob{'s' if count != 1 else ''}, {human_bytes(size)}"
    if scan.index_copies:
        copies = len(scan.index_copies)
        index_bytes = sum(copy.size for copy in scan.index_copies)
        summary += (
            f"; {copies} mirror ind{'ices' if copies != 1 else 'ex'} kept for revalidation, "
            f"{human_bytes(index_bytes)}"
        )
    lines.extend(
        f"  partial {p.sha256[:SHORT_SHA]}  {human_bytes(p.size):>10}  "
        f"written {_when(p.modified)}  {_WRITERS[p.writer]}"
        for p in partials
    )
    lines.append(summary + _partials_summary(partials))
    return lines


def _entry_dict(entry: CacheEntry) -> dict[str, Any]:
    return {
        "sha256": entry.sha256,
        "path": str(entry.path),
        "size": entry.size,
        "urls": [mask_credentials(url) for url in entry.urls],
        "specs": list(entry.specs),
        "stored_at": entry.stored_at.isoformat(),
        "last_used": entry.last_used.isoformat(),
        "recorded": entry.recorded,
    }


def _partial_dict(partial: PartialDownload) -> dict[str, Any]:
    return {
        "path": str(partial.path),
        "sha256": partial.sha256,
        "size": partial.size,
        "modified": partial.modified.isoformat(),
        "writer": partial.writer,
    }


def _scan_dict(scan: RootScan, partials: tuple[PartialDownload, ...] = ()) -> dict[str, Any]:
    return {
        "path": str(scan.root.path),
        "prefixes": [mask_credentials(p) for p in scan.root.prefixes],
        "exists": scan.exists,
        "blobs": [_entry_dict(entry) for entry in scan.entries],
        "bytes": sum(entry.size for entry in scan.entries),
        "index_copies": [
            {
                "url": mask_credentials(copy.url) if copy.url else copy.url,
                "path": str(copy.path),
                "size": copy.size,
            }
            for copy in scan.index_copies
        ],
        "partial_downloads": [_partial_dict(partial) for partial in partials],
        "partial_bytes": sum(partial.size for partial in partials),
    }


def _list(loaded: ManifestFile, *, as_json: bool) -> int:
    scans = [scan_root(root) for root in cache_roots_of(loaded)]
    partials = [scan_partials(scan.root.path) for scan in scans]
    blobs = sum(len(scan.entries) for scan in scans)
    size = sum(entry.size for scan in scans for entry in scan.entries)
    if as_json:
        document = {
            "roots": [_scan_dict(scan, found) for scan, found in zip(scans, partials, strict=True)],
            "total_blobs": blobs,
            "total_bytes": size,
        }
        print(json.dumps(document, indent=1))
        return EXIT_OK
    if not scans:
        print(f"{loaded.path}: no [[cache]] roots are declared, so nothing is cached.")
        return EXIT_OK
    for scan, found in zip(scans, partials, strict=True):
        print("\n".join(_render_root(scan, found)))
    roots = len(scans)
    print(
        f"Total: {blobs} blob{'s' if blobs != 1 else ''}, {human_bytes(size)} in {roots} "
        f"cache root{'s' if roots != 1 else ''}."
    )
    return EXIT_OK


# --- gc -----------------------------------------------------------------------------------

NeededBlobs = Callable[[ManifestFile, TransportPool], set[str]]


def _needed_blobs_function() -> NeededBlobs:
    """``reconcile.engine.needed_blobs``, looked up when gc runs."""
    module = importlib.import_module("reconcile.engine")
    function = getattr(module, "needed_blobs", None)
    if function is None:
        raise ReconcileError(
            "cache gc cannot tell which tarballs the manifest still needs "
            "(this build of reconcile has no reconcile.engine.needed_blobs)",
            hint="use a reconcile release where 'cache gc' is complete",
            reference="cache-gc-unavailable",
        )
    return cast(NeededBlobs, function)


def needed_by(loaded: ManifestFile) -> set[str]:
    """The sha256s of the tarballs the manifest needs: its plan's and its installed specs'."""
    if loaded.manifest.install is None:
        return set()
    needed_blobs = _needed_blobs_function()
    with TransportPool(endpoints_of(loaded), limits=loaded.manifest.limits) as pool:
        return needed_blobs(loaded, pool)


def _age(delta: timedelta) -> str:
    days, seconds = delta.days, delta.seconds
    if days >= 1:
        return f"{days} day{'s' if days != 1 else ''}"
    if seconds >= 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def _render_gc(report: GcReport, now: datetime) -> list[str]:
    lines = []
    for removal in report.removed:
        entry = removal.entry
        why = (
            f"unused for {_age(now - entry.last_used)}"
            if removal.reason == "older-than"
            else "least recently used, over --max-size"
        )
        specs = ", ".join(entry.specs) if entry.specs else "no record"
        lines.append(
            f"- remove {entry.sha256[:SHORT_SHA]} ({human_bytes(entry.size)}, {specs}) "
            f"from {entry.root}: {why}"
        )
    lines.extend(f"- remove {leftover.path}: {leftover.why}" for leftover in report.leftovers)
    lines.extend(
        f"- remove {p.path} ({human_bytes(p.size)}): partial download of "
        f"{p.sha256[:SHORT_SHA]}, its run has ended, untouched for {_age(now - p.modified)}"
        for p in report.partials
    )
    verb = "Would free" if report.dry_run else "Freed"
    count = len(report.removed)
    needed = len(report.needed)
    lines.append(
        f"{verb} {human_bytes(report.freed_bytes)}: {count} blob{'s' if count != 1 else ''} "
        f"removed, {len(report.kept)} kept ({human_bytes(report.remaining_bytes)}, "
        f"{needed} needed by the manifest)."
    )
    if report.over_budget and report.max_size is not None:
        lines.append(
            f"note: the blobs the manifest needs take {human_bytes(report.remaining_bytes)}, "
            f"more than --max-size {human_bytes(report.max_size)}; they were kept."
        )
    return lines


def _report_dict(report: GcReport) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "removed": [
            {
                **_entry_dict(removal.entry),
                "root": str(removal.entry.root),
                "reason": removal.reason,
            }
            for removal in report.removed
        ],
        "leftovers_removed": [
            {"path": str(leftover.path), "size": leftover.size, "why": leftover.why}
            for leftover in report.leftovers
        ],
        "partials_removed": [_partial_dict(partial) for partial in report.partials],
        "freed_bytes": report.freed_bytes,
        "kept_blobs": len(report.kept),
        "remaining_bytes": report.remaining_bytes,
        "needed_blobs": len(report.needed),
        "over_budget": report.over_budget,
        "failures": list(report.failures),
    }


def _gc(loaded: ManifestFile, args: argparse.Namespace) -> int:
    if args.max_size is None and args.older_than is None:
        raise ReconcileError(
            "cache gc needs a limit: --max-size, --older-than or both",
            hint="for example: reconcile cache gc --older-than 7d --max-size 10GiB",
            reference="usage",
        )
    max_size = parse_size(args.max_size) if args.max_size is not None else None
    older_than = parse_age(args.older_than) if args.older_than is not None else None
    roots = cache_roots_of(loaded)
    if not roots:
        print(f"{loaded.path}: no [[cache]] roots are declared, so there is nothing to remove.")
        return EXIT_OK
    keep = needed_by(loaded)
    now = datetime.now().astimezone()
    report = gc(
        BlobCache(roots),
        max_size=max_size,
        older_than=older_than,
        keep=keep,
        dry_run=args.dry_run,
        now=now,
    )
    if args.json:
        print(json.dumps(_report_dict(report), indent=1))
    else:
        print("\n".join(_render_gc(report, now)))
    for failure in report.failures:
        print(f"error: {failure}", file=sys.stderr)
    return EXIT_ERROR if report.failures else EXIT_OK
